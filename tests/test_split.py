"""Split builds: each platform on its own engine (the lab's second dockerd), merged by digest into one tag.

The second engine shares this machine's CPUs and kernel: it stands in for another machine, and the tests check
what a split build must guarantee whatever the machines (the tag is written once, whole, only after every
platform succeeded; failures name the node; --resume builds only what is missing).
"""

import hashlib
import json
import signal
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import ROOT, free_port, kit_cli, one_line_error, require

from multiarch_kit import buildx, engine, verify
from multiarch_kit.core import commands
from multiarch_kit.core.errors import KitError
from multiarch_kit.engine import emulation
from multiarch_kit.lab import extra_engines as engines
from multiarch_kit.oci import manifests, registry
from multiarch_kit.oci.platforms import AMD64, ARM64, ARMV7
from multiarch_kit.oci.references import parse_reference
from multiarch_kit.scale import split

ARTICLE = ROOT / "notebooks" / "article"


def test_nodes_are_parsed_once_each_and_among_the_platforms():
    assert split.parse_nodes(["linux/aarch64=m2"], [AMD64, ARM64]) == {ARM64: "m2"}
    for items, message in [(["linux/arm64"], "is not PLATFORM=CONTEXT"), (["=m2"], "is not PLATFORM=CONTEXT"),
                           (["linux/arm64=a", "linux/arm64/v8=b"], "names linux/arm64 twice"),
                           (["linux/arm/v7=pi"], "linux/arm/v7 is not among the platforms to build")]:
        with pytest.raises(KitError) as err:
            split.parse_nodes(items, [AMD64, ARM64])
        assert message in err.value.message


@pytest.fixture(scope="module")
def node2(lab_status):
    """The lab's second engine, started as `lab up --nodes 2` starts it; stopped after the module when it was
    started here (one that already ran, for a notebook or another run, is left running)."""
    ok, why = engines.can_start()
    require(ok, why)
    n = engines.node(lab_status.config.lab_dir, 2)
    started = engines.start(n, echo=False)
    yield n.name
    if started:
        engines.stop(n, echo=False)


def _head(text: str) -> str | None:
    ref = parse_reference(text)
    found = registry.Registry(*registry.split_name(ref.name)).head_manifest(ref.tag)
    return found.digest if found else None


def test_the_second_engine_is_a_real_engine_with_its_own_store(node2, lab_status):
    facts = engine.facts(node2)
    assert facts.containerd_store and facts.engine_id != lab_status.engine.engine_id
    assert facts.platform == lab_status.engine.platform  # the same machine: it stands in for another one
    assert Path("/sys/class/net/mkit-br2").exists()  # its own bridge: the first engine's docker0 stays
    assert Path("/sys/class/net/docker0").exists()


def test_split_build_merges_the_platforms_by_digest(node2, lab_status, lab_config):
    tag = f"{lab_config.registry_host}/kit-split/app:{uuid.uuid4().hex[:8]}"
    result = split.build(ARTICLE, tag, [AMD64, ARM64], {ARM64: node2}, here=lab_status,
                         base=lab_status.base, echo=False)
    assert result.index == _head(tag)
    by = {b.platform: b for b in result.builds}
    assert (by[AMD64].node, by[ARM64].node) == ("", node2)
    # The node is this machine's architecture: it built arm64 under emulation, and the result says so.
    assert by[ARM64].emulator == ("native" if lab_status.engine.platform == ARM64 else "qemu")
    inspection = manifests.inspect(tag)
    assert [str(e.platform) for e in inspection.images()] == ["linux/amd64", "linux/arm64"]
    attested = {e.descriptor.attests for e in inspection.entries if e.kind == "attestation"}
    assert attested == {e.digest for e in inspection.images()}  # each attestation still names its image
    for e in inspection.images():  # the image each node pushed is the one in the index
        pushed = manifests.inspect(parse_reference(tag).at(by[e.platform].digest))
        assert e.digest in {x.digest for x in pushed.images()}
    report = verify.verify(tag, run=True, echo=False)
    assert report.ok and {str(e.platform): e.machine for e in report.entries} == {"linux/amd64": "x86_64",
                                                                                  "linux/arm64": "aarch64"}
    data = result.as_json()
    assert data["index"] == result.index and [p["node"] for p in data["platforms"]] == ["(default)", node2]


def test_the_cli_builds_the_named_stage_and_without_cache_every_time(node2, lab_status, lab_config, tmp_path):
    (tmp_path / "Dockerfile").write_text(
        "FROM alpine:3.18 AS first\n"
        "RUN cat /proc/sys/kernel/random/uuid > /stamp\n"
        "FROM first AS second\n"
        "RUN echo second > /which\n")
    tag = f"{lab_config.registry_host}/kit-split/stages:{uuid.uuid4().hex[:8]}"
    argv = ["build", str(tmp_path), "--tag", tag, "--platform", "linux/amd64,linux/arm64",
            "--node", f"linux/arm64={node2}", "--target", "first", "--format", "json"]

    def images_of(extra):
        done = kit_cli(*argv, *extra)
        assert done.returncode == 0, done.stderr
        data = json.loads(done.stdout)
        assert data["index"] == _head(tag)
        return {str(e.platform): e for e in manifests.inspect(tag).images()}

    cached = [images_of([]), images_of([])]
    fresh = [images_of(["--no-cache"]), images_of(["--no-cache"])]
    for platform in ("linux/amd64", "linux/arm64"):
        # With the cache each engine answers the RUN step from its first run; without it the step runs again.
        assert cached[0][platform].digest == cached[1][platform].digest
        assert fresh[0][platform].digest != fresh[1][platform].digest
        history = json.loads(fresh[1][platform].config.raw)["history"]
        assert any("/stamp" in h.get("created_by", "") for h in history)
        assert not any("/which" in h.get("created_by", "") for h in history)  # the stage after --target


def test_a_tag_less_split_build_verifies_what_it_merged(node2, lab_status, lab_config):
    """The tag defaults to latest; the merged index is verified in its repository, not on Docker Hub (the reference
    was once cut at its last ':', which left 'localhost' of 'localhost:5000/app')."""
    repository = f"{lab_config.registry_host}/kit-split/tagless-{uuid.uuid4().hex[:8]}"
    done = kit_cli("build", str(ARTICLE), "--tag", repository, "--platform", "linux/amd64,linux/arm64",
                   "--node", "linux/amd64=default", "--node", f"linux/arm64={node2}", "--verify", "--format", "json",
                   timeout=900)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["verified"] is True and data["reference"] == f"{repository}:latest"
    raw = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{repository}:latest"],
                         capture_output=True, check=True).stdout
    assert data["index"] == "sha256:" + hashlib.sha256(raw).hexdigest()  # what the registry serves as latest
    assert [p["platform"] for p in data["platforms"]] == ["linux/amd64", "linux/arm64"]


def test_twenty_split_builds_in_a_row(node2, lab_status, lab_config):
    started = time.monotonic()
    for i in range(20):
        tag = f"{lab_config.registry_host}/kit-split/row:{uuid.uuid4().hex[:8]}"
        result = split.build(ARTICLE, tag, [AMD64, ARM64], {ARM64: node2}, here=lab_status,
                             base=lab_status.base, build_args={"KIT_RUN": str(i)}, echo=False)
        assert _head(tag) == result.index
        assert sorted(str(e.platform) for e in manifests.inspect(tag).images()) == ["linux/amd64", "linux/arm64"]
    assert time.monotonic() - started < 900


def test_two_engines_push_one_tag_at_once(node2, lab_status, lab_config):
    """The registry side of two CI jobs racing on a tag: each index lands whole, the tag holds one of them."""
    tag = f"{lab_config.registry_host}/kit-stress/two-engines:{uuid.uuid4().hex[:8]}"

    def push(context):
        return buildx.build(ARTICLE, platforms=[AMD64, ARM64], tags=[tag], push=True, base=lab_status.base,
                            labels={"kit-stress": uuid.uuid4().hex}, context_name=context, echo=False)

    for _ in range(3):
        with ThreadPoolExecutor(max_workers=2) as pool:
            results = list(pool.map(push, [None, node2]))
        assert _head(tag) in {r.digest for r in results}
        for r in results:
            inspection = manifests.inspect(parse_reference(tag).at(r.digest))
            assert sorted(str(e.platform) for e in inspection.images()) == ["linux/amd64", "linux/arm64"]
            assert len([e for e in inspection.entries if e.kind == "attestation"]) == 2


FLAKY_DOCKERFILE = "FROM alpine:3.18\nARG TARGETARCH\nCOPY . /ctx\nRUN test ! -e /ctx/fail-$TARGETARCH\n"


def test_a_failing_node_leaves_the_tag_and_resume_builds_only_the_rest(node2, lab_status, lab_config, tmp_path,
                                                                      capsys):
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(FLAKY_DOCKERFILE)
    (context / "fail-arm64").write_text("this node's build fails\n")
    tag = f"{lab_config.registry_host}/kit-split/resume:{uuid.uuid4().hex[:8]}"
    split.build(context, tag, [AMD64], None, here=lab_status, base=lab_status.base, echo=False)
    before = _head(tag)
    with pytest.raises(KitError) as err:
        split.build(context, tag, [AMD64, ARM64], {ARM64: node2}, here=lab_status, base=lab_status.base,
                    echo=False)
    assert f"node {node2} failed to build linux/arm64" in err.value.message and "untouched" in err.value.message
    assert "--resume" in err.value.fix and "\n" not in str(err.value)
    assert _head(tag) == before  # the previous index stays
    (context / "fail-arm64").unlink()
    capsys.readouterr()
    result = split.build(context, tag, [AMD64, ARM64], {ARM64: node2}, here=lab_status,
                         base=lab_status.base, resume=True, echo=True)
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("$ docker")]
    builds = [line for line in printed if " buildx build " in line]
    assert len(builds) == 1 and "--platform linux/arm64" in builds[0] and f"--context {node2}" in builds[0]
    assert _head(tag) == result.index != before
    with pytest.raises(KitError, match="nothing to resume"):
        split.build(context, tag, [AMD64, ARM64], {ARM64: node2}, here=lab_status, base=lab_status.base,
                    resume=True, echo=False)


def test_bad_nodes_are_one_line_and_leave_the_tag(node2, lab_status, lab_config, tmp_path):
    tag = f"{lab_config.registry_host}/kit-split/bad:{uuid.uuid4().hex[:8]}"
    base = ["build", str(ARTICLE), "--tag", tag, "--platform", "linux/amd64,linux/arm64"]
    assert "is not a Docker context here" in one_line_error(kit_cli(*base, "--node", "linux/arm64=no-such-context"))
    dead = f"kit-dead-{uuid.uuid4().hex[:6]}"
    commands.run(engine.docker("context", "create", dead, "--docker", f"host=unix://{tmp_path}/none.sock"),
                 echo=False)
    try:
        line = one_line_error(kit_cli(*base, "--node", f"linux/arm64={dead}"))
        assert f"node {dead} for linux/arm64 does not answer" in line
    finally:
        commands.run(engine.docker("context", "rm", "--force", dead), echo=False)
    assert "given twice" in one_line_error(kit_cli("build", str(ARTICLE), "--tag", tag, "--platform",
                                                   "linux/arm64,linux/aarch64"))
    assert "not among the platforms" in one_line_error(kit_cli(*base, "--node", f"linux/arm/v7={node2}"))
    unreachable = f"localhost:{free_port()}/kit-split/bad:x"
    line = one_line_error(kit_cli("build", str(ARTICLE), "--tag", unreachable, "--platform", "linux/amd64,linux/arm64",
                                  "--node", f"linux/arm64={node2}"))
    assert "failed to build" in line and "untouched" in line
    assert _head(tag) is None  # nothing was ever merged under the tag


def test_ctrl_c_leaves_the_tag_and_records_what_was_pushed(node2, lab_status, lab_config, tmp_path):
    context = tmp_path / "slow"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM alpine:3.18\nARG TARGETARCH\nRUN if [ $TARGETARCH = arm64 ]; then "
                                        "sleep 60; fi\n")
    tag = f"{lab_config.registry_host}/kit-split/interrupted:{uuid.uuid4().hex[:8]}"
    proc = subprocess.Popen([str(Path(sys.executable).with_name("multiarch-kit")), "build", str(context), "--tag", tag,
                             "--platform", "linux/amd64,linux/arm64", "--node", f"linux/arm64={node2}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(15)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    lines = err.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "untouched" in lines[0] and "--resume" in lines[0], err
    assert _head(tag) is None
    records = list((lab_config.lab_dir / "splits").glob("*.json"))
    assert any(json.loads(p.read_text()).get("reference") == tag for p in records)


def test_bench_rows_of_a_split_run_name_the_node(node2, lab_status, lab_config, tmp_path):
    from multiarch_kit import bench
    from multiarch_kit.bench import plans

    plan = plans.Plan.matrix(["cpu"], [ARM64], lab_status.engine.platform, sizes={"cpu": 1}, repeats=1, warmup=0,
                             nodes={ARM64: node2})
    df = bench.run(plan, tmp_path, lab_status, progress=False)
    by = {r.platform: r for r in df.itertuples()}
    assert by[str(lab_status.engine.platform)].node == "default" and by["linux/arm64"].node == node2
    assert by["linux/arm64"].emulator == ("native" if lab_status.engine.platform == ARM64 else "qemu")
    assert plans.Plan.load(tmp_path / "runs" / f"{plan.run_id}.json").nodes == {ARM64: node2}


def test_each_engine_is_asked_once_whatever_the_number_of_platforms_it_builds(monkeypatch):
    # Pure bookkeeping, no engine: the node is a value as read, its handlers counted as they are asked for.
    asked = []
    arm = emulation.BinfmtHandler("qemu-arm", True, "/usr/libexec/qemu-binfmt/arm-binfmt-P", "PF")
    monkeypatch.setattr(emulation, "read_handlers", lambda on, image, echo=True: asked.append(on.name) or [arm])
    lab_engine = _engine(AMD64, "lab-engine")
    here = SimpleNamespace(engine=lab_engine, base=SimpleNamespace(pinned="base@sha256:x"),
                           describe=lambda ps, echo=True: {p: "native" if p == AMD64 else "qemu" for p in ps})
    n2 = _engine(ARM64, "node-engine", "n2")
    described = split._describe(here, {ARM64: n2, ARMV7: n2}, [AMD64, ARM64, ARMV7], echo=False)
    assert described == {AMD64: (AMD64, "native"), ARM64: (ARM64, "native"), ARMV7: (ARM64, "qemu")}
    assert asked == ["n2"]

    # A context that reaches the lab's own engine (every platform on "default", as notebook 10 does without a
    # second engine) is described by the Lab, with no probe for its handlers.
    asked.clear()
    default = _engine(AMD64, "lab-engine", "default")
    described = split._describe(here, {AMD64: default, ARM64: default}, [AMD64, ARM64], echo=False)
    assert described == {AMD64: (AMD64, "native"), ARM64: (AMD64, "qemu")}
    assert asked == []


def _engine(platform, engine_id: str, context: str | None = None) -> engine.Engine:
    facts = engine.facts_from({"ServerVersion": "26.1.5", "Architecture": platform.arch.uname, "ID": engine_id},
                              {}, "ssh://elsewhere")
    return engine.Engine(**vars(facts), context=context, named=context is not None)


# A Go service as a reader writes one: cross-compiled on the build platform, copied into Debian.
GO_SERVICE = {
    "Dockerfile": "FROM --platform=$BUILDPLATFORM golang:1.19-bookworm AS build\nARG TARGETARCH\nARG TARGETVARIANT\n"
                  "COPY main.go /src/main.go\n"
                  'RUN CGO_ENABLED=0 GOARCH="$TARGETARCH" GOARM="${TARGETVARIANT#v}" go build -o /out/svc /src/main.go\n'
                  "FROM debian:bookworm\nCOPY --from=build /out/svc /usr/local/bin/svc\n"
                  'CMD ["/usr/local/bin/svc"]\n',
    "main.go": 'package main\n\nimport (\n\t"fmt"\n\t"runtime"\n)\n\nfunc main() { fmt.Println(runtime.GOARCH) }\n',
}


def test_build_resolves_the_stand_ins_profile_does_for_a_go_service_and_verifies_it(lab_status, lab_config,
                                                                                     tmp_path):
    """build (and so build --node) and profile map a Dockerfile's names through one function: a Go service that
    starts FROM golang:1.19-bookworm and ends FROM debian:bookworm builds offline for three platforms and verifies."""
    for name, text in GO_SERVICE.items():
        (tmp_path / name).write_text(text)
    named = lab_status.contexts_for(tmp_path, echo=False)
    if lab_status.base.source == "stand-in":  # offline, as here: both names map to the lab's build base
        assert set(named) == {"golang:1.19-bookworm", "debian:bookworm"}
    tag = f"{lab_config.registry_host}/kit-test/go-service:{uuid.uuid4().hex[:8]}"
    proc = kit_cli("build", str(tmp_path), "--tag", tag, "--platform", "linux/amd64,linux/arm64,linux/arm/v7",
                   "--verify", "--format", "json", timeout=1800)
    data = json.loads(proc.stdout)
    # Read back from the registry: the tag holds an index of the three platforms, as the build said.
    index = manifests.inspect(parse_reference(tag))
    assert index.digest == data["index"]
    assert sorted(str(e.platform) for e in index.images()) == ["linux/amd64", "linux/arm/v7", "linux/arm64"]
    # The service's binary fits each platform. The one finding is Debian armhf's own libgcrypt, whose ARM build
    # attributes say ARMv8 (it checks the CPU before using those instructions; notebook 07 shows it): verify says
    # what the attributes say, so the build is not verified, exit 1, and nothing else is found.
    report = verify.verify(parse_reference(tag), echo=False)
    assert [(f.platform, f.path) for f in report.entries[0].findings + report.entries[1].findings
            + report.entries[2].findings] == [("linux/arm/v7", "usr/lib/arm-linux-gnueabihf/libgcrypt.so.20.4.1")]
    assert (proc.returncode, data["verified"]) == (1, False), proc.stderr


def test_a_named_builder_routes_each_platform_to_the_node_pinned_to_it():
    from multiarch_kit import buildx
    from multiarch_kit.oci.platforms import Platform

    # As `docker buildx inspect multiarch-kit-multinode` lists the lab's: each node pinned (*) to its own platform.
    both = buildx.parse_inspect("""Name:          multiarch-kit-multinode
Driver:        docker-container

Nodes:
Name:      multiarch-kit-multinode-amd64
Endpoint:  default
Status:    running
Platforms: linux/amd64*, linux/amd64/v2, linux/arm64, linux/arm/v7

Name:      multiarch-kit-multinode-arm64
Endpoint:  multiarch-kit-arm64
Status:    running
Platforms: linux/arm64*, linux/arm/v7, linux/arm/v6
""")
    amd, arm, v7, ppc = (Platform.parse(t) for t in ("linux/amd64", "linux/arm64", "linux/arm/v7", "linux/ppc64le"))
    chosen = split.routed(both, [amd, arm, v7])
    assert {p: (n.name, n.endpoint) for p, n in chosen.items()} == {
        amd: ("multiarch-kit-multinode-amd64", "default"), arm: ("multiarch-kit-multinode-arm64", "multiarch-kit-arm64"),
        v7: ("multiarch-kit-multinode-amd64", "default")}  # pinned nowhere: the first node that lists it
    with pytest.raises(KitError, match="builder multiarch-kit-multinode has no node that builds linux/ppc64le"):
        split.routed(both, [ppc])


def test_builder_and_node_together_is_one_line():
    proc = kit_cli("build", "notebooks/article", "--tag", "localhost:5000/x:1", "--platform", "linux/amd64",
                   "--builder", "multiarch-kit-container", "--node", "linux/amd64=default")
    assert "--builder and --node both say where to build" in one_line_error(proc)


@pytest.mark.engine
def test_build_builder_pushes_every_platform_from_one_builder_and_names_its_node(lab_status, lab_config):
    """``build --builder``: one command through the lab's docker-container builder; the index is the registry's."""
    made = lab_status.container_builder(echo=False)
    repository = f"{lab_config.registry_host}/kit-split/builder-{uuid.uuid4().hex[:8]}"
    done = kit_cli("build", str(ARTICLE), "--tag", f"{repository}:1", "--platform", "linux/amd64,linux/arm64",
                   "--builder", made.name, "--format", "json", timeout=900)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    raw = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{repository}:1"],
                         capture_output=True, check=True).stdout
    assert data["index"] == "sha256:" + hashlib.sha256(raw).hexdigest()
    node = made.builder.nodes[0].name
    assert [(p["platform"], p["node"]) for p in data["platforms"]] == [("linux/amd64", node), ("linux/arm64", node)]
    index = manifests.inspect(parse_reference(f"{repository}:1"))
    assert [p["digest"] for p in data["platforms"]] == [index.select(AMD64).digest, index.select(ARM64).digest]
