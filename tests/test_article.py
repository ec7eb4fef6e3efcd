"""The article end to end against the real engine and registry (what notebooks 02-04 show)."""

import os
import re
import time
import uuid
from pathlib import Path

import pytest
from conftest import ROOT, require

from multiarch_kit import buildx
from multiarch_kit.core import commands
from multiarch_kit.core.errors import CommandError
from multiarch_kit.engine import images
from multiarch_kit.lab import article
from multiarch_kit.oci import manifests
from multiarch_kit.oci.platforms import AMD64, ARM64, ARMV7
from multiarch_kit.oci.references import parse_reference

CONTEXT = ROOT / "notebooks" / article.CONTEXT


@pytest.fixture(scope="session")
def build_platform(lab_status):
    return lab_status.engine.platform


@pytest.fixture(scope="session")
def flow03(lab_status, lab_config, tmp_path_factory):
    """Article part 1: a build per platform to a tar, docker load, push, docker manifest create and push."""
    out = tmp_path_factory.mktemp("flow03")
    name = f"{lab_config.registry_host}/kit-test/article"
    tags = []
    for p in article.PLATFORMS:
        tag = f"{name}:{article.platform_tag(p)}"
        tar = out / f"{p.tag_suffix}.tar"
        result = buildx.build(CONTEXT, platforms=[p], tags=[tag], output=f"type=docker,dest={tar}", base=lab_status.base)
        assert result.digest.startswith("sha256:")
        loaded = images.load(tar)
        assert loaded.names == [tag] and loaded.said == [f"Loaded image: {tag}"]
        pushed = images.push(tag)
        assert pushed.digest == result.digest  # what was built is what the registry got
        assert pushed.said == f"{article.platform_tag(p)}: digest: {pushed.digest} size: {pushed.size}"
        tags.append(tag)
    list_ref = f"{name}:latest"
    images.manifest_rm(list_ref)
    images.manifest_create(list_ref, tags)
    digest = images.manifest_push(list_ref)
    return list_ref, digest


@pytest.fixture(scope="session")
def flow04(lab_status, lab_config):
    """Article part 2: one multi-platform build that pushes."""
    ref = f"{lab_config.registry_host}/kit-test/article-one:latest"
    result = buildx.build(CONTEXT, platforms=article.PLATFORMS, tags=[ref], push=True, base=lab_status.base)
    return ref, result


def _logs(ref: str) -> dict[str, str]:
    inspection = manifests.inspect(ref)
    name = ref.rsplit(":", 1)[0]
    out = {}
    for p in article.PLATFORMS:
        entry = inspection.select(p)
        done = images.run(p, f"{name}@{entry.digest}", "cat", "/log", echo=False)
        out[p] = done.stdout.strip()
    return out


def test_manifest_list_resolves_to_each_platforms_image(flow03, build_platform):
    list_ref, digest = flow03
    inspection = manifests.inspect(list_ref)
    assert inspection.media_type == manifests.DOCKER_LIST and inspection.digest == digest
    assert [e.platform for e in inspection.images()] == article.PLATFORMS
    assert _logs(list_ref) == {p: article.expected_log(build_platform, p) for p in article.PLATFORMS}


def test_one_command_index_resolves_to_each_platforms_image(flow04, build_platform):
    ref, result = flow04
    inspection = manifests.inspect(ref)
    assert result.digest == inspection.digest  # --metadata-file names what landed in the registry
    assert inspection.media_type == manifests.OCI_INDEX
    assert [e.kind for e in inspection.entries].count("attestation") == 2
    assert _logs(ref) == {p: article.expected_log(build_platform, p) for p in article.PLATFORMS}


def test_both_routes_give_the_same_images(flow03, flow04):
    """The per-platform images are byte-identical configs and layers; only the wrappers differ."""
    a = {e.platform: e for e in manifests.inspect(flow03[0]).images()}
    b = {e.platform: e for e in manifests.inspect(flow04[0]).images()}
    for p in article.PLATFORMS:
        assert a[p].config.diff_ids == b[p].config.diff_ids


def test_rawjson_steps_time_the_run_step(lab_status, tmp_path):
    result = buildx.build(CONTEXT, platforms=[ARM64], output="type=cacheonly", no_cache=True,
                          base=lab_status.base, echo=False)
    (run,) = [s for s in result.progress.steps if s.is_run]
    assert run.instruction.startswith('RUN echo "Building on') and run.position.endswith("/2")
    assert not run.cached and run.seconds > 0
    assert result.run_seconds == pytest.approx(run.seconds)
    assert result.digest is None  # cacheonly exports nothing


def test_steps_of_a_multi_platform_build_name_their_platform(lab_status):
    result = buildx.build(CONTEXT, platforms=[AMD64, ARMV7], output="type=cacheonly", no_cache=True,
                          base=lab_status.base, echo=False)
    runs = sorted((str(s.platform), s.instruction.split()[0]) for s in result.progress.steps if s.is_run)
    assert runs == [("linux/amd64", "RUN"), ("linux/arm/v7", "RUN")]


def test_reproducible_rebuild_gives_the_same_digest(lab_status, tmp_path):
    digests = []
    for i in range(2):
        r = buildx.build(CONTEXT, platforms=[ARM64], output=f"type=docker,dest={tmp_path / f'r{i}.tar'}",
                         base=lab_status.base, reproducible=True, no_cache=True, echo=False)
        assert "SOURCE_DATE_EPOCH=" in r.command and "rewrite-timestamp=true" in r.command
        digests.append(r.digest)
    assert digests[0] == digests[1]
    plain = buildx.build(CONTEXT, platforms=[ARM64], output=f"type=docker,dest={tmp_path / 'p.tar'}",
                         base=lab_status.base, no_cache=True, echo=False)
    time.sleep(1.1)  # a second later, a non-reproducible build differs (its files carry the build time)
    plain2 = buildx.build(CONTEXT, platforms=[ARM64], output=f"type=docker,dest={tmp_path / 'p2.tar'}",
                          base=lab_status.base, no_cache=True, echo=False)
    assert plain.digest != plain2.digest


def test_platform_without_emulator_fails_with_the_handler_and_fix(lab_status):
    handler = Path("/proc/sys/fs/binfmt_misc/qemu-aarch64")
    require(os.geteuid() == 0 and handler.exists() and lab_status.engine.platform != ARM64,
            "needs root and the qemu-aarch64 handler on a non-arm64 engine")
    handler.write_text("0")  # disable, for this test only
    try:
        with pytest.raises(CommandError) as err:
            buildx.build(CONTEXT, platforms=[ARM64], output="type=cacheonly", no_cache=True,
                         base=lab_status.base, echo=False)
    finally:
        handler.write_text("1")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("the engine cannot run linux/arm64: binfmt handler qemu-aarch64 is missing or disabled")
    assert "update-binfmts --enable" in message
    assert err.value.argv[:3] == ["docker", "buildx", "build"] and err.value.returncode != 0


def test_push_failure_carries_the_command_that_ran(lab_status, private_registry, capsys):
    """Push to a registry that wants credentials: the error names the very command printed and run."""
    target = f"{private_registry}/private/x:{uuid.uuid4().hex[:8]}"
    images.tag(lab_status.base.pinned, target)
    with pytest.raises(CommandError) as err:
        images.push(target)
    assert err.value.argv == ["docker", "push", target] and err.value.returncode != 0
    assert "no basic auth credentials" in err.value.stderr  # the engine's own words
    assert f"$ docker push {target}\n" in capsys.readouterr().out


def test_article_names():
    assert article.platform_tag(AMD64) == "latest-amd64"
    assert article.platform_tag(ARMV7) == "latest-armv7"
    assert article.archive(ARM64) == "build/latest-arm64.tar"
    assert (CONTEXT / "Dockerfile").read_text() == (
        "FROM alpine:3.18\nARG TARGETPLATFORM\nARG BUILDPLATFORM\n"
        'RUN echo "Building on $BUILDPLATFORM for $TARGETPLATFORM" > /log\n')


def test_parse_rawjson_keeps_text_apart():
    progress = buildx.parse_rawjson('{\n  "vertexes": [{"digest": "d", "name": "[linux/arm/v7 build 2/3] RUN make", '
                                    '"started": "2026-01-01T00:00:00.5Z", "completed": "2026-01-01T00:00:02Z"}]\n}\n'
                                    '{"logs": [{"vertex": "d", "data": "aGk="}]}\nERROR: boom\n')
    assert progress.messages == ["ERROR: boom"]
    (step,) = progress.steps
    assert step.seconds == 1.5 and step.log == "hi"
    assert (str(step.platform), step.stage, step.position, step.instruction) == ("linux/arm/v7", "build", "2/3",
                                                                                 "RUN make")


# (text, the lines kept as messages, each step as (digest, name, started, log)): what could not be read is
# dropped or kept as text, and what could is still read.
MANGLED = [
    ('{"vertexes": "no"}', [], []),
    ('{"vertexes": [{"digest": 3}]}', [], []),
    ('[1, 2]', ["[1, 2]"], []),
    (('{"vertexes": [{"digest": "d", "name": "RUN x"}]}\n{"logs": [{"vertex": "d", "data": 5}, '
      '{"vertex": "d", "data": "aGk="}]}'), [], [("d", "RUN x", None, "hi")]),
    ('{"vertexes": [{"digest": "d", "started": "yesterday"}]}', [], [("d", "", None, "")]),
    ('{broken', ["{broken"], []),
    ('', [], []),
]


@pytest.mark.parametrize(("text", "messages", "steps"), MANGLED)
def test_parse_rawjson_tolerates_what_it_cannot_read(text, messages, steps):
    progress = buildx.parse_rawjson(text)
    assert progress.messages == messages
    assert [(s.digest, s.name, s.started, s.log) for s in progress.steps] == steps
    assert [s.seconds != s.seconds for s in progress.steps] == [True] * len(steps)  # no time read: NaN, not 0


def test_the_line_by_hand_builds_the_same_platforms_as_the_kits_own(lab_status, lab_config, capsys):
    """The by-hand line the kit prints, pasted into a shell in the folder it names, pushes an index with the same
    platforms as the kit's exact build (one fresh tag, pushed by the kit first, then by hand)."""
    ref = f"{lab_config.registry_host}/kit-test/by-hand:{uuid.uuid4().hex[:8]}"
    platforms = [AMD64, ARM64, ARMV7]
    capsys.readouterr()
    kit = buildx.build(CONTEXT, platforms=platforms, tags=[ref], push=True, base=lab_status.base)
    printed = re.findall(r"^# by hand, in (.+?): (.+)$", capsys.readouterr().out, re.MULTILINE)
    assert len(printed) == 1 and printed[0][0] == "notebooks/article"
    folder, line = printed[0]
    assert line.endswith(" .") and "--metadata-file" not in line and "--progress" not in line
    assert "docker-image://" not in line and str(lab_config.lab_dir) not in line and f"--tag {ref}" in line
    # Docker Hub is out of reach here, so only this test maps alpine:3.18 to the lab's stand-in, after the line
    # exactly as printed (on a machine that reaches Docker Hub there is nothing to add).
    mapping = [f"--build-context {name}={value}" for name, value in lab_status.base.build_contexts.items()]
    done = commands.run(["sh", "-c", " ".join([line, *mapping])], cwd=ROOT / folder, echo=False, timeout=1800)
    pushed = manifests.inspect(ref)
    assert f"pushing manifest for {ref}@{pushed.digest}" in done.stderr  # the tag now holds what the line pushed
    by_hand = [e.platform for e in pushed.images()]
    assert sorted(map(str, by_hand)) == ["linux/amd64", "linux/arm/v7", "linux/arm64"]
    assert by_hand == [e.platform for e in manifests.inspect(parse_reference(ref).at(kit.digest)).images()]
