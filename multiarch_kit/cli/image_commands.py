"""The commands about images: ``inspect``, ``build``, ``verify`` and ``diff``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..core.errors import KitError
from ..oci.platforms import Platform, parse_list
from .tables import print_frame


def _platform(text: str | None) -> Platform | None:
    return Platform.parse(text) if text else None


def run_inspect(args) -> int:
    from ..oci import manifests

    platform = _platform(args.platform)  # a bad platform fails before any request
    if args.raw:
        sys.stdout.buffer.write(manifests.raw(args.reference, platform))
        sys.stdout.buffer.flush()
        return 0
    result = manifests.inspect(args.reference)
    if platform:
        entry = result.select(platform)
        result = manifests.Inspection(result.reference, result.top, [entry], result.media_type, result.rate_limit)
    if args.format == "json":
        print(json.dumps(result.as_json(), indent=2))
        return 0
    kind = manifests.SHORT_NAMES.get(result.media_type, result.media_type)
    print(f"{result.reference}: {kind} {result.digest}")
    print_frame(result.table().drop(columns=["config size", "attests"]))
    if result.rate_limit:
        print("rate limit: " + ", ".join(f"{k}={v}" for k, v in result.rate_limit.items()))
    return 0


def run_build(args) -> int:
    from .. import lab, verify
    from ..scale import split

    platforms = parse_list(args.platform)
    nodes = split.parse_nodes(args.node or [], platforms)
    if nodes and args.builder:
        raise KitError("--builder and --node both say where to build",
                       "use --builder for one builder's nodes, or --node for one build per engine merged by digest")
    ref = split.check_request(Path(args.context), args.tag, platforms)  # parsed once, passed on as a value
    build_args, named = pairs(args.build_arg, "--build-arg"), pairs(args.build_context, "--build-context")
    here = lab.read()  # the engine's facts and the base: not the builder or the extra engines, which split asks itself
    echo = args.format != "json"
    named = {**here.contexts_for(Path(args.context), echo=echo), **named}  # the stand-ins profile resolves too
    result = split.build(Path(args.context), ref, platforms, nodes, here=here, build_args=build_args,
                         build_contexts=named, resume=args.resume, no_cache=args.no_cache, target=args.target,
                         builder=args.builder,
                         echo=echo)
    report = verify.verify(result.inspection, echo=False) if args.verify else None  # what the merge check read
    if args.format == "json":
        data = result.as_json()
        if report is not None:
            data["verified"] = report.ok
        print(json.dumps(data, indent=2))
    else:
        print(f"\n{result.reference.docker}: index {result.index}")
        print_frame(result.table())
        if nodes:
            print(f"merge and checks after the slowest platform: {result.merge_seconds:.1f} s")
        if report is not None:
            print("verified: every image matches its platform" if report.ok else "NOT verified")
    return 0 if report is None or report.ok else 1


def pairs(items: list[str] | None, flag: str) -> dict[str, str]:
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise KitError(f"{flag} {item!r} is not NAME=VALUE", f"e.g. {flag} NAME=VALUE")
        out[key] = value
    return out


def run_verify(args) -> int:
    from .. import verify

    report = verify.verify(args.reference, run=args.run)
    table = report.table()
    table["digest"] = table.digest.str.slice(0, 19)
    print_frame(table)
    findings = report.findings()
    if len(findings):
        print(f"\n{len(findings)} file(s) do not match their image's platform:")
        print_frame(findings.drop(columns=["layer_digest", "explained"]))
    notes = report.findings(expected=True)
    if len(notes):
        print(f"\n{len(notes)} file(s) for other machines where they are expected (not counted as mismatches):")
        for why, group in notes.groupby("explained"):
            print(f"- {len(group)} x {why}, e.g. {group.path.iloc[0]}")
    for e in report.entries:
        if not e.config_ok:
            print(f"the {e.platform} entry's config says {e.config_platform}")
    print("verified: every image matches its platform" if report.ok else "NOT verified")
    return 0 if report.ok else 1


def run_diff(args) -> int:
    from .. import verify

    print_frame(verify.diff(args.a, args.b))
    return 0
