"""The bench runner against real builds (Ctrl-C and resume, the host's fingerprint on each row), and the
two-node builder parser it relies on."""

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from conftest import DATA

from multiarch_kit import bench, buildx, engine
from multiarch_kit.core import commands
from multiarch_kit.bench import plans, profiling, runner, store
from multiarch_kit.oci.platforms import AMD64, ARM64, ARMV7


def test_two_node_builder_parse():
    b = buildx.parse_inspect((DATA / "buildx-inspect-two-nodes.txt").read_text())
    assert (b.name, b.driver) == ("kit-two", "remote")
    assert [(n.name, n.endpoint, n.status) for n in b.nodes] == [
        ("intel-node", "tcp://127.0.0.1:1234", "inactive"), ("m2-node", "tcp://127.0.0.1:1235", "inactive")]
    assert b.nodes[1].platforms == [ARM64, ARMV7]
    assert b.platforms == [AMD64, ARM64, ARMV7]


def _contexts():
    from types import SimpleNamespace

    base = SimpleNamespace(build_contexts={"debian:bookworm": "docker-image://r/debian", "golang:1.19-bookworm":
                                           "docker-image://r/golang"})
    return bench.Contexts(SimpleNamespace(base=SimpleNamespace(build_contexts={})), base, {"c": Path("/src/brotli")})


def test_the_commands_are_printed_once_in_full_per_workload_then_by_what_changes():
    plan = plans.default_plan(AMD64, repeats=5)
    lines = bench.command_lines(plan, _contexts())
    assert len(plan.cells) == 6 and len(lines) == 6 + 2  # each workload's full line has its by-hand line under it
    assert lines[0] == "$ " + " ".join(bench.command(plan.cells[0], _contexts()))
    assert lines[1] == f"# {bench.by_hand(plan.cells[0], _contexts())}" and "metadata" not in lines[1]
    assert lines[2] == "  the same for c emulated, with --platform linux/arm64 --target in-target"
    assert lines[3] == "  the same for c cross, with --platform linux/arm64 --target cross"
    assert lines[4].startswith("$ docker buildx build --platform linux/amd64 ") and lines[4].endswith("/go")
    assert lines[5].startswith("# by hand, in multiarch_kit/workloads/go: docker buildx build ")


def test_progress_prints_one_line_per_round(capsys):
    bar = runner._Lines(7, True, every=3)
    for _ in range(7):
        bar.update()
    printed = capsys.readouterr().out.splitlines()
    assert [line.split(" (")[0] for line in printed] == ["bench 3/7 builds", "bench 6/7 builds", "bench 7/7 builds"]


def test_progress_says_how_long_is_left_at_the_pace_so_far():
    bar = runner._Lines(36, True, every=6)
    bar.done = 6
    assert bar.line(76.0) == "bench 6/36 builds (76 s, about 380 s left)"  # 30 builds at 76/6 s each
    bar.done = 36
    assert bar.line(399.0) == "bench 36/36 builds (399 s)"


def test_last_words_are_the_longest_run_steps_last_line():
    steps = [buildx.Step("a", "[linux/arm64 in-target 1/2] RUN apt-get update", log="fetched\n"),
             buildx.Step("b", "[linux/arm64 in-target 2/2] RUN sh /build.sh gcc 8 /out",
                         log="warning: x\ncompiled 8 files with gcc on aarch64\n")]
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    steps[0].started, steps[0].completed = t0, t0 + timedelta(seconds=1)
    steps[1].started, steps[1].completed = t0, t0 + timedelta(seconds=9)
    assert profiling.last_words(buildx.Progress(steps, [])) == "compiled 8 files with gcc on aarch64"
    assert profiling.last_words(buildx.Progress([], ["#1 done"])) == ""


def test_a_dockerfile_printed_short_keeps_every_instruction():
    from multiarch_kit.buildx import dockerfile
    from multiarch_kit.lab import workloads

    path = workloads.workload("c").context() / "Dockerfile"
    short = dockerfile.instructions(path)
    assert "#" not in "".join(line[:1] for line in short.splitlines()) and "\n\n\n" not in short
    kept = [line for line in path.read_text().splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert [line for line in short.splitlines() if line.strip()] == kept


# --- real builds ------------------------------------------------------------------------------------------

def _kit(*args, **kw):
    return subprocess.Popen([str(Path(sys.executable).with_name("multiarch-kit")), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def test_ctrl_c_keeps_rows_and_resume_completes(lab_status, tmp_path):
    args = ["bench", "--workloads", "cpu", "--strategies", "native", "--sizes", "cpu=1", "--repeats", "6",
            "--warmup", "0", "--results", str(tmp_path), "--no-progress"]
    # As at a terminal: a job started in the background (make test &) inherits SIGINT ignored, and Python then
    # never raises KeyboardInterrupt; the reader's Ctrl-C is what this test is about.
    proc = _kit(*args, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    csv = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = list(tmp_path.glob("*.csv"))
        if found and len(found[0].read_text().splitlines()) >= 3:  # header + two measured rows
            csv = found[0]
            break
        time.sleep(0.05)
    assert csv is not None, proc.communicate()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert "interrupted after" in err and "multiarch-kit bench --resume" in err and len(err.strip().splitlines()) == 1
    kept = store.read_rows(csv)
    assert 2 <= len(kept) < 6
    done = _kit("bench", "--resume", "--results", str(tmp_path), "--no-progress")
    out, err = done.communicate(timeout=300)
    assert done.returncode == 0, err
    rows = store.read_rows(csv)
    assert sorted(rows.repeat.astype(int)) == [0, 1, 2, 3, 4, 5]  # every repeat once, none twice
    assert rows.run_id.nunique() == 1 and (rows.wall_s.astype(float) > 0).all()
    assert set(rows.strategy) == {"native"} and set(rows.emulator) == {"native"}
    again = _kit("bench", "--resume", "--results", str(tmp_path))
    _, err = again.communicate(timeout=60)
    assert again.returncode == 2 and "nothing to resume" in err


def test_rows_carry_the_host_fingerprint(lab_status, lab_config, tmp_path):
    other = AMD64 if lab_status.engine.platform == ARM64 else ARM64
    plan = plans.Plan.matrix(["cpu"], [other], lab_status.engine.platform, sizes={"cpu": 1}, repeats=1, warmup=0)
    df = bench.run(plan, tmp_path, lab_status, progress=False)
    assert list(df.strategy) == ["native", "emulated"] and list(df.platform) == [str(lab_status.engine.platform),
                                                                                  str(other)]
    row = df.iloc[1]
    assert row.engine_platform == str(lab_status.engine.platform)
    assert row.docker_version == lab_status.engine.server_version
    # The engine's containerd and the CLI's own version, as `docker version` reports them (two generations differ).
    reported = json.loads(commands.run(engine.docker("version", "--format", "{{json .}}"), echo=False).stdout)
    assert row.containerd_version == next(c["Version"] for c in reported["Server"]["Components"]
                                          if c["Name"] == "containerd")
    assert row.docker_cli_version == reported["Client"]["Version"]
    assert row.builder == "default" and row.driver == "docker" and row.node == "default"
    assert row.cpu_model and row.host_os and row.kit_version and row.timestamp.endswith("Z")
    assert row.cpus == os.cpu_count() and row.emulator == "qemu" and df.iloc[0].emulator == "native"
    assert (tmp_path / "runs" / f"{plan.run_id}.json").exists() and (tmp_path / "schema.json").exists()


def test_an_interrupted_run_names_the_command_that_finishes_it(tmp_path, monkeypatch):
    """A reference run lives in results/reference/: its resume needs --reference, or it would look elsewhere."""
    from types import SimpleNamespace

    from multiarch_kit.bench import runner, store

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MULTIARCH_KIT_RESULTS", str(tmp_path / "mine"))
    plan = SimpleNamespace(run_id="20261202T134100-4391b3")
    assert runner._resume_hint(plan, Path(store.REFERENCE)) == \
        "run 'multiarch-kit bench --reference --resume' to finish run 20261202T134100-4391b3"
    assert "bench --resume' to finish" in runner._resume_hint(plan, tmp_path / "mine")
    assert f"bench --resume --results {tmp_path / 'x'}'" in runner._resume_hint(plan, tmp_path / "x")
