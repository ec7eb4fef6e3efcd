"""What a reference holds: followed from any source (registry, buildx tar, ``docker save`` tar, OCI layout) to each
entry's manifest and config, which entry a runtime takes, and the views of it the notebooks print.

:func:`inspect` returns an :class:`Inspection` with a table, a JSON view, the blobs shared between platforms and
a tree. The model it is read into is :mod:`multiarch_kit.oci.model`'s.
"""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Protocol

import pandas as pd

from ..core import commands
from ..core.errors import KitError
from .matching import only, only_strict
from .model import (
    IMAGE_TYPES,
    INDEX_TYPES,
    SHORT_NAMES,
    Descriptor,
    ImageConfig,
    ImageManifest,
    Index,
    _malformed,
    check_size,
    parse,
    parse_config,
)
from .platforms import Platform
from .references import Reference, open_source
from .registry import (
    DOCKER_CONFIG,
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_MANIFEST,
    hub_reachable,
)

__all__ = ["DOCKER_LIST", "DOCKER_MANIFEST", "IMAGE_TYPES", "INDEX_TYPES", "OCI_INDEX", "OCI_MANIFEST", "SHORT_NAMES", "Descriptor", "Entry", "Example", "ImageConfig",
           "ImageManifest", "Index", "Inspection", "Source", "article_example", "explain", "follow", "inspect",
           "parse", "parse_config", "raw", "select", "skopeo_raw", "who_gets"]


# --- choosing an entry: what a runtime pulls -------------------------------------------------------------

def select(descriptors: list[Descriptor], want: Platform, *, strict: bool = False) -> Descriptor:
    """The entry a runtime pulls from an index for ``want`` (containerd's choice).

    Keeps the entries whose platform matches, orders them by rank (stable, so the index's order breaks
    ties) and takes the first. Attestation entries are never chosen. Raises :class:`KitError` listing the
    platforms present when nothing matches.
    """
    matcher = only_strict(want) if strict else only(want)
    candidates = []
    for i, d in enumerate(descriptors):
        if d.platform is None or d.is_attestation:
            continue
        rank = matcher.rank(d.platform)
        if rank is not None:
            candidates.append((rank, i, d))
    if not candidates:
        present = sorted({str(d.platform) for d in descriptors if d.platform is not None and not d.is_attestation})
        raise KitError(f"no image for {want} in this index (it has: {', '.join(present) or 'no platforms'})",
                       "build for that platform too, or pick one of those with --platform")
    return min(candidates, key=lambda c: (c[0], c[1]))[2]


def explain(descriptors: list[Descriptor], want: Platform) -> pd.DataFrame:
    """One row per index entry: its platform, whether containerd accepts it for ``want``, its rank and why."""
    matcher = only(want)
    rows = []
    for i, d in enumerate(descriptors):
        rank = None if d.platform is None or d.is_attestation else matcher.rank(d.platform)
        if d.is_attestation:
            reason = "attestation (provenance/SBOM), never run"
        elif d.platform is None:
            reason = "entry has no platform"
        elif rank == 0:
            reason = f"exact match for {want}"
        elif rank is not None:
            reason = f"accepted for {want} (fallback #{rank})"
        else:
            reason = f"not for {want}"
        rows.append({"entry": i, "platform": str(d.platform) if d.platform else "", "digest": d.digest,
                     "match": rank is not None, "rank": rank, "reason": reason})
    df = pd.DataFrame(rows, columns=["entry", "platform", "digest", "match", "rank", "reason"])
    df["rank"] = df["rank"].astype("Int64")
    try:
        chosen = select(descriptors, want)
        df["chosen"] = [d is chosen for d in descriptors]
    except KitError:
        df["chosen"] = False
    return df


def who_gets(descriptors: list[Descriptor], devices: dict[str, Platform]) -> pd.DataFrame:
    """For each device (a name and the platform its engine asks for, e.g. ``article.DEVICES``): that platform,
    and the entry of the index its engine pulls (or none)."""
    rows = []
    for device, want in devices.items():
        try:
            chosen = select(descriptors, want)
        except KitError:
            rows.append({"device": device, "asks for": str(want), "gets": "nothing (no matching manifest)",
                         "digest": ""})
            continue
        rows.append({"device": device, "asks for": str(want), "gets": str(chosen.platform), "digest": chosen.digest})
    return pd.DataFrame(rows, columns=["device", "asks for", "gets", "digest"])


# --- following a reference -----------------------------------------------------------------------------


class Source(Protocol):
    """Where manifests and blobs come from (a registry, an archive, a layout)."""

    parallel: bool  # whether manifests and blobs may be fetched from several threads at once

    def top(self) -> tuple[bytes, str]:
        """The reference's top-level manifest bytes (what ``skopeo inspect --raw`` prints) and media type."""

    def manifest(self, digest: str) -> bytes:
        """A manifest by digest, digest-checked."""

    def blob(self, digest: str) -> bytes:
        """A small blob (a config) by digest, digest-checked."""


@dataclass
class Entry:
    """One image (or attestation) reached from the reference."""

    descriptor: Descriptor | None  # None when the reference is a single manifest
    manifest: ImageManifest | None  # None when the entry is itself an index
    config: ImageConfig | None

    @property
    def kind(self) -> str:
        if self.descriptor is not None and self.descriptor.is_attestation:
            return "attestation"
        return "index" if self.manifest is None else "image"

    @property
    def platform(self) -> Platform | None:
        if self.descriptor is not None and self.descriptor.platform is not None:
            return self.descriptor.platform
        return self.config.platform if self.config else None

    @property
    def digest(self) -> str:
        return self.descriptor.digest if self.descriptor else self.manifest.digest


@dataclass
class Inspection:
    """What a reference holds, followed down to each image's config."""

    reference: str
    top: Index | ImageManifest
    entries: list[Entry]
    media_type: str
    rate_limit: dict[str, str] = field(default_factory=dict)
    source: Source | None = field(default=None, repr=False, compare=False)  # where it was read: its layers are there

    @property
    def digest(self) -> str:
        return self.top.digest

    @property
    def raw(self) -> bytes:
        return self.top.raw

    @property
    def is_index(self) -> bool:
        return isinstance(self.top, Index)

    def images(self) -> list[Entry]:
        return [e for e in self.entries if e.kind == "image"]

    def select(self, platform: Platform) -> Entry:
        """The entry a runtime on ``platform`` pulls (containerd's choice; attestations never).

        A single manifest is the only choice, and only when its config's platform can run there.
        """
        if not self.is_index:
            entry = self.entries[0]
            if entry.platform is not None and not only(platform).match(entry.platform):
                raise KitError(f"the image is for {str(entry.platform)}, which cannot run on "
                               f"{platform}",
                               "build it for that platform too (docker buildx build --platform ...)")
            return entry
        chosen = select([e.descriptor for e in self.entries], platform)
        return next(e for e in self.entries if e.descriptor is chosen)

    def table(self) -> pd.DataFrame:
        """One row per entry: platform, kind, digest, manifest size, config size, layers and their total size."""
        rows = []
        for e in self.entries:
            m = e.manifest
            rows.append({
                "platform": str(e.platform) if e.platform else "",
                "kind": e.kind,
                "digest": e.digest,
                "size": e.descriptor.size if e.descriptor else len(m.raw),
                "config size": m.config.size if m else None,
                "layers": len(m.layers) if m else None,
                "layer bytes": m.layer_bytes if m else None,
                "attests": (e.descriptor.attests or "") if e.descriptor else "",
            })
        df = pd.DataFrame(rows, columns=["platform", "kind", "digest", "size", "config size", "layers",
                                         "layer bytes", "attests"])
        for col in ("config size", "layers", "layer bytes"):
            df[col] = df[col].astype("Int64")
        return df

    def as_json(self) -> dict:
        """The table's rows plus the top-level digest and media type."""
        table = self.table()
        rows = json.loads(table.to_json(orient="records"))
        return {"reference": self.reference, "digest": self.digest, "mediaType": self.media_type,
                "kind": SHORT_NAMES.get(self.media_type, self.media_type), "entries": rows}

    def attestations(self) -> pd.DataFrame:
        """One row per attestation entry: its digest, the image digest it names, and that image's platform."""
        by_digest = {e.digest: e for e in self.images()}
        rows = []
        for e in self.entries:
            if e.kind != "attestation":
                continue
            target = by_digest.get(e.descriptor.attests or "")
            rows.append({"digest": e.digest, "attests": e.descriptor.attests or "",
                         "describes": str(target.platform) if target and target.platform else "?"})
        return pd.DataFrame(rows, columns=["digest", "attests", "describes"])

    def shared_blobs(self) -> pd.DataFrame:
        """Configs and layers that more than one entry uses (stored once in the registry)."""
        users: dict[str, tuple[int, str, list[str]]] = {}
        for e in self.entries:
            if e.manifest is None:
                continue
            name = str(e.platform) if e.platform and e.kind == "image" else f"{e.kind} {e.digest[7:19]}"
            for role, d in [("config", e.manifest.config)] + [("layer", x) for x in e.manifest.layers]:
                users.setdefault(d.digest, (d.size, role, []))[2].append(name)
        rows = [{"digest": k, "role": role, "size": size, "used by": ", ".join(names)}
                for k, (size, role, names) in users.items() if len(names) > 1]
        return pd.DataFrame(rows, columns=["digest", "role", "size", "used by"])

    def tree(self) -> str:
        """A text tree: index -> manifest -> config and layers, with sizes."""
        lines = [f"{self.reference}  {SHORT_NAMES.get(self.media_type, self.media_type)}  {self.digest}"]
        for i, e in enumerate(self.entries):
            last = i == len(self.entries) - 1
            stem, pad = ("└── ", "    ") if last else ("├── ", "│   ")
            label = str(e.platform) if e.platform else "?"
            extra = f" (attests {e.descriptor.attests[:19]}…)" if e.kind == "attestation" and e.descriptor.attests else ""
            lines.append(f"{stem}{label}  {e.kind}  {e.digest}{extra}")
            if e.manifest is None:
                continue
            parts = [("config", e.manifest.config)] + [("layer", x) for x in e.manifest.layers]
            for j, (role, d) in enumerate(parts):
                branch = "└── " if j == len(parts) - 1 else "├── "
                lines.append(f"{pad}{branch}{role}  {d.digest}  {_human(d.size)}")
        return "\n".join(lines)


def _human(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"


def follow(source: Source, reference: str) -> Inspection:
    """Read the top-level manifest from ``source`` and follow it to every entry's manifest and config.

    ``reference`` is how the result names what it read (the text the reader gave, or a Reference printed).
    """
    raw, media_type = source.top()
    top = parse(raw, media_type)
    if not isinstance(top, Index):
        return Inspection(reference, top, [Entry(None, top, _config(source, top))], top.media_type,
                          getattr(source, "rate_limit", {}), source)

    def entry(d: Descriptor) -> Entry:
        if d.media_type in INDEX_TYPES:
            return Entry(d, None, None)
        child = parse(check_size(source.manifest(d.digest), d, f"entry {d.digest}"), d.media_type)
        if not isinstance(child, ImageManifest):
            raise _malformed(f"entry {d.digest} is not an image manifest")
        # An attestation's config is a placeholder (os and architecture "unknown"): nothing to read there.
        return Entry(d, child, None if d.is_attestation else _config(source, child))

    if source.parallel and len(top.manifests) > 1:
        # Each entry costs two round trips (manifest, then config); entries do not depend on each other.
        entries = list(_pool().map(entry, top.manifests))
    else:
        entries = [entry(d) for d in top.manifests]
    return Inspection(reference, top, entries, top.media_type, getattr(source, "rate_limit", {}), source)


_POOL: list[ThreadPoolExecutor] = []


def _pool() -> ThreadPoolExecutor:
    """One pool of threads for the whole process: starting threads for every inspect would cost more than it saves."""
    if not _POOL:
        _POOL.append(ThreadPoolExecutor(max_workers=8, thread_name_prefix="multiarch-kit-fetch"))
    return _POOL[0]


def _config(source: Source, manifest: ImageManifest) -> ImageConfig | None:
    if manifest.config.media_type not in (OCI_CONFIG, DOCKER_CONFIG, ""):
        return None  # artifact configs (e.g. in-toto) are not image configs
    return parse_config(check_size(source.blob(manifest.config.digest), manifest.config, "the image config"))


def raw(reference: str | Reference, platform: Platform | None = None) -> bytes:
    """The manifest bytes exactly as stored (``skopeo inspect --raw``); with ``platform``, those of the child a
    runtime on that platform pulls. Fetches only what that takes."""
    source = open_source(reference)
    top_raw, media_type = source.top()
    if platform is None:
        return top_raw
    top = parse(top_raw, media_type)
    if isinstance(top, Index):
        chosen = select(top.manifests, platform)
        return check_size(source.manifest(chosen.digest), chosen, f"entry {chosen.digest}")
    follow(source, str(reference)).select(platform)  # a single image: check it can run there
    return top_raw


def inspect(reference: str | Reference) -> Inspection:
    """What ``reference`` holds (skopeo's transports: ``docker://``, ``oci-archive:``, ``docker-archive:``, ``oci:``)."""
    return follow(open_source(reference), str(reference))


SKOPEO_ABSENT = ("skopeo is not installed here, so there is nothing to compare with (it is optional: "
                 "brew install skopeo, or apt-get install skopeo)")


def skopeo_raw(reference: str) -> bytes | None:
    """What ``skopeo inspect --raw docker://REFERENCE`` prints, to hold the kit's bytes against; None (and one
    line that says so) where skopeo is not installed, as on a Mac that did not add it."""
    if shutil.which("skopeo") is None:
        print(SKOPEO_ABSENT)
        return None
    return commands.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{reference}"]).stdout.encode()


# --- the article's example -------------------------------------------------------------------------------

ARTICLE_EXAMPLE = "goreleaser/goreleaser:v1.20.0"


@dataclass
class Example:
    """The article's ``goreleaser/goreleaser:v1.20.0`` manifest list, live or as recorded."""

    index: Index
    source: str  # "live from Docker Hub" or the recording's provenance
    recorded: dict


def article_example(live: bool | None = None) -> Example:
    """The goreleaser list: looked up live when Docker Hub answers (or ``live=True``), else the recording.

    The recording is the JSON the article printed (2023-09-10); its entries' digests are real, the
    list's own digest is not (the article re-indented the bytes).
    """
    data = files("multiarch_kit") / "data"
    recorded = json.loads((data / "goreleaser-v1.20.0.source.json").read_text())
    if live is None:
        live = hub_reachable()
    if live:
        result = inspect(f"docker://{ARTICLE_EXAMPLE}")
        return Example(result.top, "live from Docker Hub", recorded)
    raw = (data / "goreleaser-v1.20.0.json").read_bytes()
    return Example(parse(raw), f"recorded: {recorded['recorded_from']}", recorded)
