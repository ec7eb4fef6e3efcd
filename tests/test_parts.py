"""Direct tests of parts that were only reached through others: the plots, the run log, the lab's settings, the
Dockerfile reader, docker-archive reading and the doctor's rows one by one. Values only: no engine."""

import dataclasses
import io
import json
import tarfile
from pathlib import Path
from types import SimpleNamespace

import matplotlib
import pandas as pd
import pytest
from conftest import result_row

from multiarch_kit.buildx import dockerfile
from multiarch_kit.core import runlog, settings
from multiarch_kit.core.errors import KitError
from multiarch_kit.core.settings import Settings
from multiarch_kit.engine import features
from multiarch_kit.lab import doctor, generation
from multiarch_kit.lab.config import DEFAULT_PORT, LabConfig
from multiarch_kit.oci import manifests
from multiarch_kit.oci.platforms import AMD64, ARM64, ARMV7, Platform

matplotlib.use("Agg")


# --- plots -------------------------------------------------------------------------------------------------

def _rows() -> pd.DataFrame:
    rows = []
    for repeat in range(5):
        for strategy, platform, seconds in (("native", "linux/amd64", 10), ("emulated", "linux/arm64", 80),
                                            ("cross", "linux/arm64", 12)):
            rows.append(result_row(workload="c", strategy=strategy, platform=platform, size=4, size_unit="files",
                                   repeat=repeat, wall_s=seconds + repeat * 0.1, run_s=seconds - 1))
    return pd.DataFrame(rows)


def test_a_strategies_plot_carries_units_n_error_bars_and_one_colour_per_platform(tmp_path):
    from matplotlib import pyplot as plt

    from multiarch_kit.bench import plots

    written = plots.strategies(_rows(), "c", tmp_path / "c")
    assert [p.name for p in written] == ["c.png", "c.svg"] and all(p.stat().st_size > 1000 for p in written)
    ax = plt.gcf().axes[0]
    assert ax.get_ylabel() == "build time, median (s, whole build)"
    assert ax.get_title() == "c, 4 files: native, emulated and cross-compiled builds"
    legend = ax.get_legend()
    assert legend.get_title().get_text() == "bars: median; error bars: interquartile range"
    assert [t.get_text() for t in legend.get_texts()] == ["linux/amd64 (n = 5)", "linux/arm64 (n = 5)"]
    colours = {bar.get_facecolor() for bar in ax.patches}
    assert len(colours) == 2  # one colour per platform, whatever the strategy
    plt.close("all")


# --- the run log ------------------------------------------------------------------------------------------

def test_the_run_log_records_only_when_make_run_names_a_file(tmp_path, monkeypatch):
    log = tmp_path / "runlog.jsonl"
    monkeypatch.delenv(settings.ENV_RUNLOG, raising=False)
    runlog.record("push", target="x", digest="sha256:1")
    assert not log.exists() and runlog.read(log) == []
    monkeypatch.setenv(settings.ENV_RUNLOG, str(log))
    runlog.record("push", target="x", digest="sha256:1", seconds=1.5)
    runlog.record("build", target="y", platforms="linux/amd64", digest="", seconds=2)
    events = runlog.read(log)
    assert [(e["kind"], e["target"]) for e in events] == [("push", "x"), ("build", "y")]
    assert events[0]["seconds"] == 1.5 and len(events[0]["time"]) == 19


# --- the lab's settings -----------------------------------------------------------------------------------

def test_the_labs_port_is_the_readers_else_the_recorded_else_5000(tmp_path):
    assert LabConfig.of(Settings(lab_dir=tmp_path)).registry_port == DEFAULT_PORT
    (tmp_path / "registry").mkdir()
    (tmp_path / "registry" / "port.json").write_text(json.dumps({"port": 5003}))
    recorded = LabConfig.of(Settings(lab_dir=tmp_path))
    assert (recorded.registry_port, recorded.port_from_env) == (5003, False)
    chosen = LabConfig.of(Settings(lab_dir=tmp_path, registry_port=5050))
    assert (chosen.registry_port, chosen.port_from_env, chosen.registry_host) == (5050, True, "localhost:5050")
    assert chosen.registry_address == "127.0.0.1:5050" and chosen.env.registry_port == 5050
    (tmp_path / "registry" / "port.json").write_text("not json")
    assert LabConfig.of(Settings(lab_dir=tmp_path)).registry_port == DEFAULT_PORT  # a damaged record is ignored


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("MULTIARCH_KIT_REGISTRY_PORT", "50000000", "MULTIARCH_KIT_REGISTRY_PORT='50000000' is not a port number"),
    ("MULTIARCH_KIT_REGISTRY_PORT", "five", "MULTIARCH_KIT_REGISTRY_PORT='five' is not a port number"),
    ("MULTIARCH_KIT_BASE", "alpine", "MULTIARCH_KIT_BASE='alpine' is not a base choice"),
])
def test_a_bad_setting_is_one_line_naming_the_variable(variable, value, message):
    with pytest.raises(KitError) as err:
        Settings.from_env({variable: value})
    assert err.value.message == message and variable in err.value.fix


def test_settings_read_every_variable_once(tmp_path):
    env = {"MULTIARCH_KIT_LAB": str(tmp_path), "DOCKER_HOST": "tcp://m2:2375", "DOCKER_CONTEXT": "ignored-by-host",
           "MULTIARCH_KIT_RESULTS": "scratch", "MULTIARCH_KIT_NODES": " linux/arm64=m2 ",
           "MULTIARCH_KIT_CLASSIC_CONTEXT": "old", "MULTIARCH_KIT_HOST_ID": "my-m2", "MULTIARCH_KIT_BASE": "stand-in"}
    read = Settings.from_env(env)
    assert read == Settings(lab_dir=tmp_path.resolve(), docker_host="tcp://m2:2375", docker_context="ignored-by-host",
                            base="stand-in", results_dir=Path("scratch"), nodes="linux/arm64=m2",
                            classic_context="old", host_id="my-m2")


# --- the Dockerfile reader ----------------------------------------------------------------------------------

def test_a_dockerfiles_stages_bases_and_platforms_are_read():
    stages = dockerfile.parse("# syntax=docker/dockerfile:1\nFROM --platform=$BUILDPLATFORM golang:1.19 AS build\n"
                              "RUN go build \\\n    -o /x .\n# a comment\nFROM alpine:3.18\nCOPY --from=build /x /x\n"
                              "FROM build AS again\n")
    assert [(s.name, s.base, s.on_build_platform) for s in stages] == [
        ("build", "golang:1.19", True), ("stage-1", "alpine:3.18", False), ("again", "build", False)]
    assert stages[0].instructions == ["RUN go build  -o /x ."]  # continued lines joined, their indent kept
    assert dockerfile.images(stages) == {"golang:1.19", "alpine:3.18"}  # not the stage named build
    with pytest.raises(KitError, match="no FROM line"):
        dockerfile.parse("RUN true\n")
    with pytest.raises(KitError, match="a FROM without an image"):
        dockerfile.parse("FROM --platform=linux/amd64\n")


# --- docker-archive ------------------------------------------------------------------------------------------

def _tar(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def test_a_docker_archive_is_read_as_skopeo_synthesises_its_manifest(tmp_path):
    import hashlib

    layer = _tar({"hello": b"hi\n"})
    config = json.dumps({"architecture": "arm", "variant": "v7", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]}})
    archive = _tar({"manifest.json": json.dumps([{"Config": "c.json", "RepoTags": ["x:y"], "Layers": ["l.tar"]}])
                    .encode(), "c.json": config.encode(), "l.tar": layer})
    (tmp_path / "image.tar").write_bytes(archive)
    found = manifests.inspect(f"docker-archive:{tmp_path / 'image.tar'}")
    (entry,) = found.images()
    assert entry.platform == ARMV7 and entry.manifest.layers[0].size == len(layer)
    assert found.raw.startswith(b'{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2')


# --- the doctor, row by row ----------------------------------------------------------------------------------

def test_the_builder_row_warns_only_for_a_platform_that_neither_is_listed_nor_runs(tmp_path):
    cfg = LabConfig.of(Settings(lab_dir=tmp_path))
    facts = SimpleNamespace(platform=AMD64)
    listed = SimpleNamespace(platforms=[AMD64, ARM64, ARMV7])
    assert doctor._builder_platforms(cfg, listed, facts, {}).status == doctor.PASS
    partial = SimpleNamespace(platforms=[AMD64, ARM64])
    ran = doctor._builder_platforms(cfg, partial, facts, {ARMV7: True})
    assert ran.status == doctor.PASS and "not listed at engine start but runs now: linux/arm/v7" in ran.detail
    failing = doctor._builder_platforms(cfg, partial, facts, {ARMV7: False})
    assert failing.status == doctor.WARN and failing.fix.startswith("linux/arm/v7 missing: enable its binfmt handler")


def test_the_disk_row_says_how_much_is_free_and_where(tmp_path):
    row = doctor._disk(LabConfig.of(Settings(lab_dir=tmp_path / "not" / "yet")))
    assert row.check == "free disk" and row.status in (doctor.PASS, doctor.WARN, doctor.FAIL)
    assert row.detail.endswith(f"GB free at {tmp_path}")


def test_the_build_base_row_names_docker_hubs_images_or_the_stand_in(tmp_path):
    cfg = LabConfig.of(Settings(lab_dir=tmp_path))
    hub = doctor._build_base(cfg, SimpleNamespace(platform=AMD64), SimpleNamespace(source="docker-hub"))
    assert (hub.status, hub.detail) == (doctor.PASS, "the real debian:bookworm and golang:1.19-bookworm from Docker Hub")
    missing = doctor._build_base(cfg, SimpleNamespace(platform=AMD64), SimpleNamespace(source="stand-in"))
    assert missing.status == doctor.WARN and "lab up --build-base" in missing.fix


def test_the_doctor_table_has_one_row_per_check():
    rows = [doctor.Check("engine", doctor.PASS, "Debian, linux/amd64"), doctor.Check("registry", doctor.FAIL, "x", "y")]
    table = doctor.table(rows)
    assert list(table.columns) == ["check", "status", "detail", "fix"]
    assert table.values.tolist() == [["engine", "pass", "Debian, linux/amd64", ""], ["registry", "fail", "x", "y"]]
    assert Platform.parse("linux/arm/v7") == ARMV7


def test_the_lab_folders_layout_is_named_in_one_place(tmp_path):
    """Every place the lab keeps something is a LabPaths property: the modules ask it, they do not build paths."""
    import ast

    from multiarch_kit.lab.config import LabPaths

    paths = LabPaths(tmp_path)
    assert paths.port_record == tmp_path / "registry" / "port.json" and paths.arm64_vm == tmp_path / "arm64-vm"
    assert LabConfig.of(Settings(lab_dir=tmp_path)).paths == paths
    package = Path(__file__).resolve().parents[1] / "multiarch_kit"
    built = []
    for path in sorted(package.rglob("*.py")):
        if path.name == "config.py" and path.parent.name == "lab":
            continue
        for node in ast.walk(ast.parse(path.read_text())):  # `<something>.lab_dir / "..."`, or `lab_dir / "..."`
            if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
                left = node.left
                name = left.attr if isinstance(left, ast.Attribute) else getattr(left, "id", "")
                if name == "lab_dir":
                    built.append(f"{path.relative_to(package)}:{node.lineno}")
    assert built == []


# --- the Docker generation the doctor names -------------------------------------------------------------------

LAB_GENERATION = generation.Generation(engine="26.1.5+dfsg1", api="1.45", cli="26.1.5+dfsg1", buildx="0.13.1+ds1",
                                       buildkit="v0.13.2", containerd="1.7.24~ds1", containerd_store=True)


def _generation(**given) -> "generation.Generation":
    return dataclasses.replace(LAB_GENERATION, **given)


@pytest.mark.parametrize(("text", "number"), [
    ("28.5.2+dfsg4", (28, 5, 2)), ("v0.29.1", (0, 29, 1)), ("0.13.1+ds1", (0, 13, 1)), ("1.7.24~ds1", (1, 7, 24)),
    ("2.1.9+unknown", (2, 1, 9)), ("v0.0.0+unknown", (0, 0, 0)), ("", ()), ("?", ())])
def test_a_version_is_read_as_docker_prints_it(text, number):
    assert generation.number(text) == number


def test_the_lab_engines_generation_has_no_trap_and_names_all_five_versions():
    lab = _generation()
    assert lab.traps() == []
    assert lab.summary() == ("engine 26.1.5+dfsg1 (API 1.45), CLI 26.1.5+dfsg1, buildx 0.13.1+ds1, BuildKit v0.13.2, "
                             "containerd 1.7.24~ds1")


def test_each_trap_is_named_once_with_its_fix():
    old_buildx = _generation(buildx="0.9.1").traps()
    assert len(old_buildx) == 1 and "is a manifest list" in old_buildx[0].what
    assert "imagetools create" in old_buildx[0].fix and "--provenance=false" in old_buildx[0].fix
    classic = _generation(containerd_store=False).traps()
    assert len(classic) == 1 and "not supported for the docker driver" in classic[0].what
    assert "containerd-snapshotter" in classic[0].fix
    # This machine's shape: /usr/local/bin's CLI 28.2 before Debian 13's engine 26.1.
    newer = _generation(cli="28.2.2").traps()
    assert len(newer) == 1 and "(28.2.2) is newer than the engine (26.1.5+dfsg1)" in newer[0].what
    assert _generation(cli="24.0.7").traps()[0].what.startswith("the docker CLI (24.0.7) is older")
    assert _generation(cli="27.5.1").traps() == []  # one major apart: the API negotiation covers it
    assert _generation(cli="").traps() == []  # no CLI on PATH: nothing to compare


@pytest.mark.parametrize(("engine_api", "ran", "documented"), [
    ((1, 45), False, True),   # Debian 13's 26.1: refused, as documented
    ((1, 51), True, True),    # Debian's newest 28.5: ran
    ((1, 48), True, True),    # exactly the version that added it
    ((1, 47), True, False),   # ran where Docker says it cannot: the lesson would be wrong
    ((1, 52), False, False),  # refused where Docker says it runs
])
def test_a_newer_command_is_as_documented_exactly_when_it_ran_where_its_api_version_allows(engine_api, ran,
                                                                                         documented):
    tried = features.Tried(features.SAVE, engine_api, ran, "")
    assert tried.as_documented() is documented
    assert tried.row()["needs"] == "API 1.48 (Engine 28.0)"


def test_the_newer_commands_are_in_api_order_with_their_reference_pages():
    assert [f.api for f in features.FEATURES] == sorted(f.api for f in features.FEATURES)
    assert all(f.source.startswith("https://docs.docker.com/reference/cli/docker/image/") for f in features.FEATURES)
    assert {f.command.split()[2] for f in features.FEATURES} == {"push", "ls", "save", "load", "inspect"}


# --- the newest Docker's root filesystem ----------------------------------------------------------------------

def test_the_newest_dockers_root_is_made_from_sid_with_the_packages_and_the_mirror_given(tmp_path):
    from multiarch_kit.lab import newest

    argv = newest.mmdebstrap_argv(tmp_path / "root", "http://mirror.invalid/debian")
    assert argv[:2] == ["mmdebstrap", "--variant=apt"]
    assert argv[-3:] == ["sid", str(tmp_path / "root"), "http://mirror.invalid/debian"]
    assert f"--include={','.join(newest.PACKAGES)}" in argv
    # A frozen mirror's sid has an expired Release file; signatures are still checked.
    assert '--aptopt=Acquire::Check-Valid-Until "false"' in argv and not [a for a in argv if "AllowInsecure" in a]


def test_the_newest_dockers_versions_are_read_from_its_dpkg_database(tmp_path):
    from multiarch_kit.lab import newest

    status = tmp_path / "var/lib/dpkg/status"
    status.parent.mkdir(parents=True)
    status.write_text("Package: docker.io\nStatus: install ok installed\nVersion: 28.5.2+dfsg4-5\n"
                      "Description: Linux container runtime\n with: a colon in a continuation line\n\n"
                      "Package: containerd\nStatus: deinstall ok config-files\nVersion: 1.7.24~ds1-6\n\n"
                      "Package: docker-buildx\nStatus: install ok installed\nVersion: 0.29.1+ds1-4\n")
    assert newest.dpkg_versions(tmp_path) == {"docker.io": "28.5.2+dfsg4-5", "docker-buildx": "0.29.1+ds1-4"}
    made = newest.NewestDocker(tmp_path / "nowhere")
    assert made.versions() == {} and not made.current()


def test_a_mirror_mid_sync_is_tried_again_and_a_third_failure_is_one_line(tmp_path, monkeypatch, capsys):
    from multiarch_kit.core.errors import CommandError
    from multiarch_kit.lab import newest

    calls = []

    def mirror_mid_sync(argv, **kw):  # what a mirror mid-sync does to mmdebstrap: exit 25, then, later, success
        calls.append(argv)
        (tmp_path / "root.part").mkdir(exist_ok=True)
        if len(calls) < 3:
            raise CommandError(list(argv), 25, "E: File has unexpected size (1234 != 5678). Mirror sync in progress?")

    monkeypatch.setattr(newest.commands, "run", mirror_mid_sync)
    monkeypatch.setattr(newest.time, "sleep", lambda s: None)
    newest._bootstrap(tmp_path / "root.part", "http://mirror.invalid/debian", echo=False)
    assert len(calls) == 3 and capsys.readouterr().out.count("trying again in 30 s") == 2
    calls.clear()
    monkeypatch.setattr(newest.commands, "run", lambda argv, **kw: (_ for _ in ()).throw(
        CommandError(list(argv), 25, "E: File has unexpected size")))
    with pytest.raises(KitError, match="failed 3 times") as caught:
        newest._bootstrap(tmp_path / "root.part", "http://mirror.invalid/debian", echo=False)
    assert "\n" not in caught.value.message and not (tmp_path / "root.part").exists()
