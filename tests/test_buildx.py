"""Parsing `docker buildx inspect` (recorded from this lab's engine, and read live); the line to type by hand."""

import json
from pathlib import Path

import pytest
from conftest import DATA, ROOT

from multiarch_kit import bench, buildx
from multiarch_kit.bench import plans
from multiarch_kit.core import commands
from multiarch_kit.core.errors import KitError
from multiarch_kit.lab import article, buildbase, workloads
from multiarch_kit.lab import base as base_image
from multiarch_kit.oci.platforms import AMD64, ARM64, ARMV7


def test_parse_default_builder_recorded_on_debian():
    b = buildx.parse_inspect((DATA / "buildx-inspect-default.txt").read_text())
    assert (b.name, b.driver) == ("default", "docker")
    assert [n.name for n in b.nodes] == ["default"]
    node = b.nodes[0]
    assert node.status == "running"
    assert [str(p) for p in node.platforms[:2]] == ["linux/amd64", "linux/amd64/v2"]
    assert "linux/arm64" in map(str, b.platforms)


@pytest.mark.parametrize("text", ["Usage: docker buildx inspect [NAME]", "", "Nodes:\nName: x\n"])
def test_parse_rejects_other_text(text):
    with pytest.raises(KitError, match="not the output of `docker buildx inspect`"):
        buildx.parse_inspect(text)


def test_parse_names_an_unreadable_platform():
    with pytest.raises(KitError, match="listed a platform the kit cannot read"):
        buildx.parse_inspect("Name: b\nDriver: docker\n\nNodes:\nName: n\nPlatforms: linux/amd64, linux//x\n")


def test_live_builder_matches_engine(lab_status):
    b = buildx.inspect()
    assert b.driver == "docker"
    assert lab_status.engine.platform in b.platforms


def test_the_digest_is_what_the_build_exported_not_what_the_tag_held_afterwards():
    """Recorded in a race of two engines on one tag: buildx (docker driver) read the tag back after pushing and
    found another engine's arm64 manifest there; the descriptor names the index this build pushed."""
    raced = json.loads((DATA / "buildx-metadata-docker-driver-race.json").read_text())
    assert raced["containerimage.digest"].startswith("sha256:461ca328")
    assert buildx.built_digest(raced) == "sha256:b934641fd7742b6df4cc5441a5618bba728055d26b58f96d552442b22af0edc2"


def test_the_classic_store_digest_is_the_one_buildx_read_back():
    classic = json.loads((DATA / "buildx-metadata-classic-store.json").read_text())
    assert "containerimage.descriptor" not in classic
    assert buildx.built_digest(classic) == "sha256:f3a0a1736828878e0a15b096924d068538d093ebba1be825cff4c2f6f8f9fb01"
    config_only = {**classic, "containerimage.descriptor": {  # a config is not what was pushed
        "mediaType": "application/vnd.docker.container.image.v1+json", "digest": classic["containerimage.config.digest"]}}
    assert buildx.built_digest(config_only) == classic["containerimage.digest"]
    assert buildx.built_digest({}) is None


# --- the line to type by hand ---------------------------------------------------------------------------

STANDIN = "localhost:5000/multiarch-kit/alpine-standin:3.18"
SOURCES = Path("/root/.local/state/multiarch-kit/sources")  # where the lab keeps a fetched source


def _job(context, tmp_path, *, base=None, reproducible=False, progress="rawjson", **options):
    made = buildx.BuildOptions.of(**{"platforms": [AMD64, ARM64, ARMV7], **options})
    return buildx.job(context, tmp_path, made.with_contexts(base.build_contexts) if base else made,
                      reproducible=reproducible, progress=progress)


def test_by_hand_drops_exactly_the_kits_wiring_and_keeps_the_build(tmp_path):
    base = base_image.STANDIN.standin("localhost:5000", None)
    j = _job(article.context(), tmp_path, base=base, tags=["localhost:5001/multiarch-test:x"], push=True,
             output="type=image,push=true", build_args={"PACKAGES": "20"}, target="cross", labels={"k": "v"},
             provenance=False, no_cache_filter=["cross"], builder="two", context_name="m2", network="host",
             build_contexts={"source": SOURCES / "brotli-1.2.1", "extra": "docker-image://example.org/x:1",
                             "mine": "/home/me/src"})
    platforms = ["--platform", "linux/amd64", "--platform", "linux/arm64", "--platform", "linux/arm/v7"]
    theirs = ["--build-context", "extra=docker-image://example.org/x:1", "--build-context", "mine=/home/me/src"]
    rest = ["--build-arg", "PACKAGES=20", "--label", "k=v", "--target", "cross", "--tag",
            "localhost:5001/multiarch-test:x", "--output=type=image,push=true", "--push",
            "--no-cache-filter", "cross", "--provenance=false", "--network=host"]
    front = ["docker", "--context", "m2", "buildx", "build", "--builder", "two", *platforms]
    assert j.argv == [*front, "--build-context", f"alpine:3.18=docker-image://{STANDIN}",
                      "--build-context", f"source={SOURCES / 'brotli-1.2.1'}", *theirs, *rest,
                      "--metadata-file", str(j.metadata_file), "--progress=rawjson", str(article.context())]
    # By hand: no stand-in, the fetched source by its folder's name, no metadata file, buildx's own progress, and
    # the context folder is where one types it; the rest is the same build.
    assert j.by_hand.argv == [*front, "--build-context", "source=brotli-1.2.1", *theirs, *rest, "."]
    assert j.by_hand.folder == "multiarch_kit/workloads/article" and j.by_hand.env == {}
    assert str(j.by_hand) == "by hand, in multiarch_kit/workloads/article: " + j.by_hand.line


def test_by_hand_keeps_the_variables_and_the_output_of_a_reproducible_build(tmp_path):
    j = _job(article.context(), tmp_path, output=f"type=docker,dest={tmp_path}/a.tar", reproducible=True,
             progress="plain")
    assert j.by_hand.env == {"SOURCE_DATE_EPOCH": buildx.SOURCE_DATE_EPOCH} == j.env
    assert j.by_hand.line == (f"SOURCE_DATE_EPOCH={buildx.SOURCE_DATE_EPOCH} docker buildx build --platform "
                              f"linux/amd64 --platform linux/arm64 --platform linux/arm/v7 "
                              f"--output=type=docker,dest={tmp_path}/a.tar,rewrite-timestamp=true .")


def test_by_hand_names_the_folder_where_the_repository_has_it(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT / "notebooks")
    assert _job(article.CONTEXT, tmp_path).by_hand.folder == "notebooks/article"  # as the notebooks give it
    assert _job(workloads.workload("c").context(), tmp_path).by_hand.folder == "multiarch_kit/workloads/c"
    mine = tmp_path / "app"
    mine.mkdir()
    (mine / "Dockerfile").write_text("FROM alpine:3.18\n")
    assert _job(mine, tmp_path).by_hand.folder == str(mine)  # the reader's own folder, as they named it


def test_a_measurement_by_hand_has_neither_the_stand_ins_nor_the_lab_folder():
    c = workloads.workload("c")
    contexts = bench.Contexts(None, buildbase.STANDIN.standin("localhost:5000", None),
                              {"c": SOURCES / "brotli-1.2.1"})
    cell = plans.Cell("c", workloads.EMULATED, ARM64, 8)
    exact = bench.command(cell, contexts)
    assert "debian:bookworm=docker-image://localhost:5000/multiarch-kit/debian-build-standin:bookworm" in exact
    assert bench.by_hand(cell, contexts).line == (
        "docker buildx build --platform linux/arm64 --build-context source=brotli-1.2.1 --build-arg FILES=8 "
        f"--target {c.targets[workloads.EMULATED]} --output=type=cacheonly --no-cache-filter "
        f"{','.join(c.measured_stages)} .")


def test_the_exact_line_and_the_line_by_hand_are_printed_together(capsys):
    commands.run(["true"], note="by hand, in here: true")
    commands.run_all({1: ["true"], 2: ["sh", "-c", "exit 0"]}, notes={2: "by hand, in there: exit 0"})
    commands.run(["true"], echo=False, note="never shown")
    assert capsys.readouterr().out == ("$ true\n# by hand, in here: true\n$ true &\n$ sh -c 'exit 0' &\n"
                                       "# by hand, in there: exit 0\n$ wait\n")


def test_plain_steps_read_the_step_headers_of_plain_progress_as_steps():
    messages = ["#0 building with \"default\" instance using docker driver",
                "#5 [linux/arm64 1/2] FROM docker.io/library/alpine:3.18@sha256:0123",
                "#7 [linux/amd64 2/2] RUN echo \"Building on linux/amd64 for linux/amd64\" > /log",
                "#7 DONE 0.3s",
                "#8 [linux/arm64 2/2] RUN echo \"Building on linux/amd64 for linux/arm64\" > /log",
                "#9 exporting to image"]
    result = buildx.BuildResult("", [], 1.0, None, {}, buildx.Progress([], messages))
    steps = result.plain_steps()
    assert [(str(s.platform), s.position, s.is_run) for s in steps] == [
        ("linux/arm64", "1/2", False), ("linux/amd64", "2/2", True), ("linux/arm64", "2/2", True)]
    assert steps[1].instruction == 'RUN echo "Building on linux/amd64 for linux/amd64" > /log'


def test_what_a_short_command_said_is_printed_under_it_and_only_when_asked(capsys):
    commands.run(["echo", "Created manifest list x"], said=True)
    commands.run(["echo", "kept for the caller"])
    commands.run(["echo", "not echoed at all"], echo=False, said=True)
    assert capsys.readouterr().out == ("$ echo 'Created manifest list x'\nCreated manifest list x\n"
                                       "$ echo 'kept for the caller'\n")
