"""Real builds: the C and Go workloads natively, emulated and cross-compiled; the build base; `profile`.

The cross-built binaries are proven twice: their ELF headers name the target's machine, and run under
emulation they do real work (compress and decompress, format Go source) with the expected output.
"""

import json
import signal
import subprocess
import sys
import textwrap
import uuid

import pytest
from conftest import ROOT, kit_cli, one_line_error

from multiarch_kit import bench, buildx, verify
from multiarch_kit.bench import plans, profiling, store
from multiarch_kit.core.errors import KitError
from multiarch_kit.engine import images
from multiarch_kit.lab import buildbase, workloads
from multiarch_kit.oci import manifests, platforms
from multiarch_kit.oci.platforms import AMD64, ARM64, ARMV7, Platform
from multiarch_kit.oci.references import open_source

P = Platform.parse


# --- pure parts -------------------------------------------------------------------------------------------

DEB822 = """Types: deb
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
"""


def test_apt_mirror_from_deb822_and_one_line_sources(tmp_path):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(DEB822)
    assert buildbase.apt_mirror("bookworm", sources=tmp_path) == "http://mirror.example/debian"
    assert buildbase.apt_mirror("bookworm-security", sources=tmp_path) == "http://mirror.example/debian-security"
    (tmp_path / "sources.list.d" / "debian.sources").unlink()
    (tmp_path / "sources.list").write_text("deb [arch=amd64 signed-by=/k.gpg] http://one.example/debian bookworm main\n")
    assert buildbase.apt_mirror("bookworm", sources=tmp_path) == "http://one.example/debian"
    with pytest.raises(KitError, match="no apt source for Debian trixie"):
        buildbase.apt_mirror("trixie", sources=tmp_path)


def test_build_platform_gets_the_cross_compilers_from_the_architecture_table():
    lab3 = (AMD64, ARM64, ARMV7)
    assert buildbase.packages(ARM64, AMD64, lab3) == list(buildbase.PACKAGES)
    assert buildbase.packages(AMD64, AMD64, lab3) == [*buildbase.PACKAGES, "gcc-aarch64-linux-gnu",
                                                      "libc6-dev-arm64-cross", "gcc-arm-linux-gnueabihf",
                                                      "libc6-dev-armhf-cross"]
    # On an M2 the build platform is arm64, and amd64 needs its cross compiler instead.
    assert "gcc-x86-64-linux-gnu" in buildbase.packages(ARM64, ARM64, lab3)
    assert buildbase.recipe(AMD64, lab3) != buildbase.recipe(ARM64, lab3)


def test_plan_matrix_native_on_the_build_platform_emulated_and_cross_elsewhere():
    plan = plans.Plan.matrix(["c", "cpu"], [ARM64, ARMV7], AMD64, sizes={"c": 4}, repeats=2, warmup=0)
    cells = [(c.workload, c.strategy, str(c.platform), c.size) for c in plan.cells]
    assert cells == [("c", "native", "linux/amd64", 4), ("c", "emulated", "linux/arm64", 4),
                     ("c", "emulated", "linux/arm/v7", 4), ("c", "cross", "linux/arm64", 4),
                     ("c", "cross", "linux/arm/v7", 4), ("cpu", "native", "linux/amd64", 32),
                     ("cpu", "emulated", "linux/arm64", 32), ("cpu", "emulated", "linux/arm/v7", 32)]
    full = plans.Plan.matrix(["go"], [ARM64], AMD64, full=True, strategies=["cross"])
    assert [(c.strategy, c.size) for c in full.cells] == [("cross", 66)]


@pytest.mark.parametrize("kwargs, message", [
    ({"workload_names": ["rust"]}, "unknown workload 'rust'"),
    ({"strategies": ["teleport"]}, "unknown strategy 'teleport'"),
    ({"sizes": {"c": 99}}, "size 99 is out of range for the c workload (1 to 35 files)"),
    ({"sizes": {"go": 5}}, "--sizes names 'go', which is not among the workloads"),
    ({"strategies": ["cross"], "platforms": [AMD64]}, "the bench plan is empty"),
])
def test_plan_refuses_bad_input(kwargs, message):
    args = {"workload_names": ["c"], "platforms": [ARM64], "build_platform": AMD64, **kwargs}
    with pytest.raises(KitError) as err:
        plans.Plan.matrix(**args)
    assert message in err.value.message


def test_a_source_with_the_wrong_hash_or_damaged_is_refused_and_kept(tmp_path):
    fake = workloads.Source("brotli==1.2.1", "brotli-1.2.1.tar.gz", "0" * 64, "brotli-1.2.1")
    downloads = tmp_path / "sources" / "downloads"
    downloads.mkdir(parents=True)
    (downloads / fake.archive).write_bytes(b"not the archive")
    with pytest.raises(KitError) as err:
        workloads.fetch(fake, tmp_path, echo=False)
    assert "not the pinned 0000000000000000" in err.value.message and "delete" in err.value.fix
    assert (downloads / fake.archive).read_bytes() == b"not the archive"  # nothing deleted behind the reader's back
    damaged = workloads.Source("x==1", fake.archive, workloads._sha256(downloads / fake.archive), "x-1")
    with pytest.raises(KitError, match="cannot be unpacked"):
        workloads.fetch(damaged, tmp_path, echo=False)


_INTERRUPTED = textwrap.dedent("""
    import sys
    from pathlib import Path
    from multiarch_kit.lab import buildbase
    from multiarch_kit.oci.platforms import AMD64, ARM64
    # Stand-ins for mmdebstrap: amd64 finishes at once, arm64 writes half a tar and then hangs.
    buildbase.apt_mirror = lambda *a, **k: "file:///nowhere"
    buildbase._rootfs_argv = lambda p, pk, m, out: (
        ["sh", "-c", f"echo 'I: making'; printf whole > {out}"] if p == AMD64 else
        ["sh", "-c", f"echo 'I: making'; printf half > {out}; sleep 60"])
    buildbase.make_rootfs(Path(sys.argv[1]), {AMD64: [], ARM64: []})
""")


def test_an_interrupted_base_build_keeps_what_finished_and_leaves_no_half_file(tmp_path):
    # SIGINT at its default, as in a terminal: a backgrounded run (make test &) hands its children SIGINT ignored.
    proc = subprocess.Popen([sys.executable, "-c", _INTERRUPTED, str(tmp_path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    for line in proc.stdout:
        if "linux/amd64" in line and "root filesystem done" in line:
            break
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rootfs-amd64.tar"]
    assert (tmp_path / "rootfs-amd64.tar").read_text() == "whole"


def test_a_full_disk_is_one_line_before_anything_starts(tmp_path, monkeypatch):
    monkeypatch.setattr(buildbase, "MIN_FREE_GB", 1e9)
    with pytest.raises(KitError) as err:
        buildbase.make_rootfs(tmp_path, {ARM64: []})
    assert "the build base needs about" in err.value.message and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("instruction, expected", [
    ('RUN GOARCH="arm64" go build -o /x ./cmd', "cross-compile with Go"),
    ("RUN make -j4", "cross-compile C/C++"), ("RUN cargo build --release", "cross-compile with Rust"),
    ("RUN apt-get update && apt-get install -y curl", "installs the target's own packages"),
    ("RUN npm ci", "native addon"), ("RUN ./generate-docs.sh", "if its output does not depend on the platform"),
])
def test_profile_advice_fits_the_command(instruction, expected):
    assert expected in profiling.advice(instruction)


def test_profile_refuses_a_platform_without_emulator_before_building(tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    with pytest.raises(KitError, match="the engine cannot run linux/arm64: binfmt handler qemu-aarch64"):
        profiling.profile(profiling.subject(tmp_path), [ARM64], AMD64, emulators={ARM64: "none"}, echo=False)
    with pytest.raises(KitError, match="no stage named 'nope'"):
        profiling.subject(tmp_path, target="nope")
    with pytest.raises(KitError, match="nothing to compare"):
        profiling.profile(profiling.subject(tmp_path), [AMD64], AMD64, echo=False)
    with pytest.raises(KitError, match="no Dockerfile in"):
        profiling.subject(tmp_path / "empty" if (tmp_path / "empty").mkdir() is None else tmp_path)


# --- real builds ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def real(lab_status, lab_config):
    """Everything the real workloads need: the build base (made on first use) and the Brotli sources."""
    cells = [plans.Cell(w, "native", lab_status.engine.platform, 1) for w in ("c", "go")]
    return bench.prepare_contexts(cells, lab_status, echo=False)


def _other(lab_status) -> Platform:
    return AMD64 if lab_status.engine.platform == ARM64 else ARM64


def test_build_base_is_one_labelled_index_for_the_lab_platforms(real, lab_status):
    if real.build_base.source != "stand-in":
        pytest.skip("Docker Hub answers: the workloads use the real debian and golang images")
    inspection = manifests.inspect(real.build_base.ref)
    assert inspection.digest == real.build_base.digest
    assert sorted(str(e.platform) for e in inspection.images()) == ["linux/amd64", "linux/arm/v7", "linux/arm64"]
    for e in inspection.images():
        assert e.config.platform == e.platform
        assert e.config.labels["org.opencontainers.image.description"].startswith("STAND-IN for debian:bookworm")
    again = lab_status.build_base(echo=False)
    assert again.digest == real.build_base.digest  # made once: the second call finds it


def _steps_log(result) -> str:
    return "\n".join(s.log for s in result.progress.steps if s.is_run and not s.cached)


@pytest.mark.parametrize("workload", ["c", "go"])
def test_in_target_builds_run_where_the_strategy_says(real, lab_status, workload):
    native = lab_status.engine.platform
    other = _other(lab_status)
    runs = {}
    for strategy, platform in (("native", native), ("emulated", other), ("cross", other)):
        result = bench.measure(plans.Cell(workload, strategy, platform, 2), real)
        runs[strategy] = _steps_log(result)
    assert f"on {native.arch.uname}" in runs["native"]
    assert f"on {other.arch.uname}" in runs["emulated"]  # the compiler itself ran under emulation
    assert f"on {native.arch.uname}" in runs["cross"]  # the cross compiler ran natively...
    expected = other.arch.gnu + "-gcc" if workload == "c" else f"packages for {other.architecture}"
    assert expected in runs["cross"]  # ...for the target


ROUND_TRIP = ("head -c 300000 /dev/urandom > /tmp/a && /out/brotli -c /tmp/a > /tmp/a.br && "
              "/out/brotli -dc /tmp/a.br | cmp - /tmp/a && echo round trip ok && uname -m")
GO_SOURCE = "package main\nfunc main(){println( 1 )}\n"


@pytest.mark.parametrize("workload, platform", [("c", ARM64), ("c", ARMV7), ("go", ARM64), ("go", ARMV7)], ids=str)
def test_cross_compiled_binaries_are_for_the_target_and_work_there(real, lab_status, lab_config, workload, platform):
    if platform == lab_status.engine.platform:
        pytest.skip("the build platform's own: not cross-compiled")
    w = workloads.workload(workload)
    ref = f"{lab_config.registry_host}/kit-test/cross-{workload}:{platform.tag_suffix}-{uuid.uuid4().hex[:6]}"
    result = buildx.build(w.context(), platforms=[platform], target="cross", tags=[ref], push=True, provenance=False,
                          build_args={w.size_arg: str(w.full_size)}, build_contexts=real.for_workload(w), echo=False)
    report = verify.verify(ref)
    (entry,) = report.entries
    binary = "brotli" if workload == "c" else "gofmt"
    layer = entry.layers[-1]  # the COPY of /out: the binary alone
    assert entry.platform == platform and entry.config_ok and (layer.files, layer.elf) == (1, 1)
    assert layer.findings == []
    source = open_source(ref)
    found = verify.elf_files(source.open_blob(manifests.inspect(ref).images()[0].manifest.layers[-1].digest))
    (path, info), = found.items()
    assert path == f"out/{binary}" and info.architecture == platform.architecture
    if platform == ARMV7 and workload == "c":
        assert info.arm_version == 7  # gcc writes the ARM build attributes: ARMv7
    name = ref.rsplit(":", 1)[0]
    if workload == "c":
        out = images.run(platform, f"{name}@{result.digest}", "sh", "-c", ROUND_TRIP, echo=False).stdout.split()
        assert out == ["round", "trip", "ok", platform.arch.uname]
    else:
        done = images.run(platform, f"{name}@{result.digest}", "sh", "-c", f"printf '{GO_SOURCE}' | /out/gofmt",
                          echo=False)
        assert done.stdout == "package main\n\nfunc main() { println(1) }\n"


def test_profile_of_the_c_workload_names_the_compile_step(real, lab_status):
    other = _other(lab_status)
    w = workloads.workload("c")
    what = profiling.Subject(w.context(), {"FILES": "3"}, "in-target")  # the whole build afresh
    result = profiling.profile(what, [other], lab_status.engine.platform, build_contexts=real.for_workload(w),
                               echo=False)
    table = result.table()
    compile_step = table[table.instruction.str.startswith("RUN sh /build.sh gcc")]
    assert len(compile_step) == 1 and bool(compile_step.runs_emulated.iloc[0])
    assert compile_step.emulated_s.iloc[0] > 0 and compile_step.native_s.iloc[0] > 0
    assert set(result.totals) == {lab_status.engine.platform, other}  # keyed by the platforms themselves
    data = json.loads(json.dumps(result.as_json()))
    assert data["native"] == str(lab_status.engine.platform) and data["steps"]
    assert set(data["totals"]) == {str(lab_status.engine.platform), str(other)}  # spelled out in JSON
    assert data["said"][str(other)] == result.said[other]
    # The build's own word per platform, from its compile step's log: proof of where the compiler ran.
    for p in (other, lab_status.engine.platform):
        assert result.said[p] == f"compiled 3 files with gcc on {platforms.arch_of(p).uname}"


def test_profile_of_a_workload_rebuilds_only_the_stages_the_bench_measures(real, lab_status):
    other = _other(lab_status)
    # 4 files: at 2, the emulated compile took 1.1 s on an Intel Xeon VM, too close to profiling.MIN_SECONDS (1 s)
    # for the hint to be certain under load.
    result = profiling.profile_in_lab(lab_status, "c", [other], build_args={"FILES": "4"}, echo=False)
    assert len(result.commands) == 2
    for line in result.commands:  # the compiler's own stage comes from the cache; the compile is built afresh
        assert "--no-cache-filter in-target,cross-compile" in line and "--no-cache " not in line
    assert result.hints and result.hints[0]["stage"] == "in-target"
    assert result.said[other] == f"compiled 4 files with gcc on {platforms.arch_of(other).uname}"


def test_profile_cli_bad_input_is_one_line(tmp_path, lab_status):
    assert "no Dockerfile in" in one_line_error(kit_cli("profile", str(tmp_path)))
    (tmp_path / "Dockerfile").write_text("FROM scratch\nRUN false\n")
    assert "exited with" in one_line_error(kit_cli("profile", str(tmp_path), "--platform", "linux/arm64"))
    assert "is not NAME=VALUE" in one_line_error(kit_cli("profile", "c", "--build-arg", "FILES"))


def test_bench_rows_of_real_builds(real, lab_status, lab_config, tmp_path):
    other = _other(lab_status)
    plan = plans.Plan.matrix(["c"], [other], lab_status.engine.platform, sizes={"c": 2}, repeats=1, warmup=0)
    df = bench.run(plan, tmp_path, lab_status, progress=False)
    assert list(df.strategy) == ["native", "emulated", "cross"]
    assert list(df.emulator) == ["native", "qemu", "native"]
    assert set(df.size_unit) == {"files"} and set(df["size"]) == {2} and (df.run_s > 0).all()
    assert (tmp_path / f"{plan.host_id}.csv").exists()
    again = store.read_rows(tmp_path / f"{plan.host_id}.csv")
    assert list(again.wall_s) == list(df.wall_s)


@pytest.mark.parametrize("filters", [True, False], ids=["with-filters", "python-3.11.2"])
def test_unpack_keeps_a_source_archive_inside_its_folder_with_or_without_extraction_filters(tmp_path, monkeypatch,
                                                                                         filters):
    import io
    import tarfile

    from multiarch_kit.lab import workloads

    if not filters:  # Debian 12's Python 3.11.2 has no tarfile.data_filter
        monkeypatch.delattr(tarfile, "data_filter")

    def archive(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarFile:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            good = tarfile.TarInfo("pkg/c/ok.c")
            good.size = 3
            tar.addfile(good, io.BytesIO(b"int"))
            bad = tarfile.TarInfo(name)
            bad.type, bad.linkname = kind, link
            tar.addfile(bad, io.BytesIO(b"") if kind == tarfile.REGTYPE else None)
        buf.seek(0)
        return tarfile.open(fileobj=buf)

    workloads.unpack(archive("pkg/c/also.c"), tmp_path / "fine")
    assert sorted(p.name for p in (tmp_path / "fine" / "pkg" / "c").iterdir()) == ["also.c", "ok.c"]
    for name, kind, link in [("../escaped", tarfile.REGTYPE, ""), ("pkg/out", tarfile.SYMTYPE, "/etc/passwd")]:
        with pytest.raises(tarfile.TarError):
            workloads.unpack(archive(name, kind, link), tmp_path / "bad")
    assert not (tmp_path / "escaped").exists()
    try:  # an absolute name: the filter makes it relative, the 3.11.2 check refuses it; either way it stays inside
        workloads.unpack(archive("/abs"), tmp_path / "abs")
        assert (tmp_path / "abs" / "abs").is_file()
    except tarfile.TarError:
        assert not filters


def test_a_go_cross_build_compiles_the_targets_standard_library_first(lab_status):
    """Notebook 11's Go service: built in the target's image, Go uses the standard library it ships; cross-
    compiled, it compiles the target's first (go build -v names each package it compiles)."""
    from multiarch_kit.bench import ways

    folder = ROOT / "notebooks" / "choose" / "go-service"
    here = lab_status.engine.platform
    other = AMD64 if here == ARM64 else ARM64
    go = ways.go_stdlib(folder, here, other, lab_status.contexts_for(folder, echo=False), echo=False)
    packages = {how: n for how, _, _, n in go.rows()}
    assert packages["native"] == packages["emulated"] == 1  # the service alone: its standard library shipped
    assert packages["cross-compiled"] > 20  # the target's standard library, package by package


def test_a_cache_mount_keeps_the_targets_standard_library_for_the_next_cross_build(lab_status):
    """Notebook 11's cache mount: the first cross build (mount emptied) compiles the target's standard library;
    run again with the mount kept, the same step compiles far fewer packages. (With --no-cache BuildKit would
    have emptied the mount: the kit forces the step with a new build argument instead.)"""
    from multiarch_kit.bench import ways

    folder = ROOT / "notebooks" / "choose" / "go-service"
    other = AMD64 if lab_status.engine.platform == ARM64 else ARM64
    cached = ways.go_cache_mount(folder, other, lab_status.contexts_for(folder, echo=False), echo=False)
    (_, _, first), (_, _, second) = cached.rows()
    assert first > 20 and second < first / 4, cached.rows()
    logs = [next(s for s in r.progress.steps if s.is_run).log for r in (cached.first, cached.second)]
    assert [log.splitlines()[0].split("-")[-1] for log in logs] == ["1", "2"]  # the step ran twice, not cached
