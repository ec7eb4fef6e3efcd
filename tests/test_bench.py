"""The experiment harness: files, statistics, resume (real builds), and the two-node builder parser."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import DATA, require
from multiarch_kit import bench, buildx
from multiarch_kit.errors import KitError
from multiarch_kit.platforms import AMD64, ARM64, ARMV7


def _row(**over):
    row = {c: "" for c in bench.COLUMNS}
    row.update(run_id="r1", host_id="h1", workload="cpu", strategy="native", platform="linux/amd64", size=8,
               size_unit="MB", repeat=0, wall_s=1.0, run_s=0.5, cpus=2)
    row.update(over)
    return row


def test_schema_file_lists_every_column(tmp_path):
    bench.prepare(tmp_path)
    schema = json.loads((tmp_path / "schema.json").read_text())
    assert [c["name"] for c in schema["columns"]] == bench.COLUMNS
    assert schema["version"] == bench.SCHEMA_VERSION
    assert {"wall_s", "run_s", "emulator", "node", "cpu_model", "cpus", "engine_platform", "size",
            "size_unit"} <= set(bench.COLUMNS)


def test_append_keeps_header_once_and_rows_in_order(tmp_path):
    path = tmp_path / "h1.csv"
    bench.append_rows(path, [_row(repeat=0)])
    bench.append_rows(path, [_row(repeat=1), _row(repeat=2)])
    lines = path.read_text().splitlines()
    assert lines[0] == ",".join(bench.COLUMNS) and len(lines) == 4
    assert list(bench.read_rows(path).repeat) == [0, 1, 2]


def test_append_refuses_a_file_with_other_columns(tmp_path):
    path = tmp_path / "h1.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(KitError, match="other columns"):
        bench.append_rows(path, [_row()])
    assert path.read_text() == "a,b\n1,2\n"


_WRITER = """
import sys
from multiarch_kit import bench
row = {c: "x" * 200 for c in bench.COLUMNS}
while True:
    bench.append_rows(sys.argv[1], [row] * 2000)
"""


def test_a_killed_writer_leaves_a_whole_file(tmp_path):
    path = tmp_path / "h1.csv"
    bench.append_rows(path, [_row()])
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)])
    # Kill it in the middle of an append: after at least two whole batches have landed.
    deadline = time.monotonic() + 60
    while path.stat().st_size < 1 + 2 * 2000 * 200 * len(bench.COLUMNS) and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    text = path.read_text()
    lines = text.splitlines()
    assert text.endswith("\n") and lines[0] == ",".join(bench.COLUMNS)
    assert all(line.count(",") == len(bench.COLUMNS) - 1 for line in lines)  # no half-written row
    batches, rest = divmod(len(lines) - 2, 2000)
    assert batches >= 2 and rest == 0  # the first row, then whole batches only
    assert lines[1] == ",".join(str(v) for v in _row().values())


def test_disk_full_keeps_the_previous_file(tmp_path):
    require(os.geteuid() == 0, "needs root to mount a small tmpfs")
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(small)], check=True)
    try:
        path = small / "h1.csv"
        bench.append_rows(path, [_row()])
        before = path.read_bytes()
        with pytest.raises(KitError) as err:
            bench.append_rows(path, [_row(workload="x" * 100_000)])
        assert "No space left on device" in err.value.message and "previous file is intact" in err.value.message
        assert path.read_bytes() == before
        assert [p.name for p in small.iterdir()] == ["h1.csv"]  # no temporary file left behind
    finally:
        subprocess.run(["umount", str(small)], check=True)


def test_load_results_merges_hosts_and_skips_strangers(tmp_path, capsys):
    bench.append_rows(tmp_path / "m2.csv", [_row(host_id="m2", platform="linux/arm64")])
    bench.append_rows(tmp_path / "intel.csv", [_row(host_id="intel"), _row(host_id="intel", repeat=1)])
    (tmp_path / "notes.csv").write_text("something,else\n")
    df = bench.load_results(tmp_path)
    assert sorted(df.host_id.unique()) == ["intel", "m2"] and len(df) == 3
    assert df.wall_s.dtype == float and df["size"].dtype == int
    assert "skipped notes.csv" in capsys.readouterr().out


def _known():
    rows = []
    for size in (0, 10, 20):
        for rep in range(5):
            jitter = (rep - 2) * 0.01
            rows.append(_row(size=size, repeat=rep, wall_s=1 + 0.1 * size + jitter))
            rows.append(_row(size=size, repeat=rep, platform="linux/arm64", strategy="emulated",
                             wall_s=1 + 0.3 * size + jitter))
    df = pd.DataFrame(rows)
    df["size"], df["wall_s"] = df["size"].astype(int), df.wall_s.astype(float)
    return df


def test_summarize_median_and_iqr():
    s = bench.summarize(_known())
    cell = s[(s.platform == "linux/amd64") & (s["size"] == 10)].iloc[0]
    assert cell["median"] == pytest.approx(2.0) and cell.n == 5
    assert cell.q1 == pytest.approx(1.99) and cell.q3 == pytest.approx(2.01) and cell.iqr == pytest.approx(0.02)


def test_slowdown_with_bootstrap_interval():
    s = bench.slowdown(_known())
    at20 = s[(s.platform == "linux/arm64") & (s["size"] == 20)].iloc[0]
    assert at20.slowdown == pytest.approx(7.0 / 3.0)
    assert at20.ci_low <= at20.slowdown <= at20.ci_high
    assert at20.ci_high - at20.ci_low < 0.05
    assert s[(s.platform == "linux/amd64")].slowdown.tolist() == [1.0, 1.0, 1.0]


def test_bootstrap_interval_covers_a_known_ratio():
    rng = np.random.default_rng(1)
    a, b = rng.normal(30, 1, 40), rng.normal(10, 0.5, 40)
    ratio, lo, hi = bench.bootstrap_ratio(a, b)
    assert lo < 3.0 < hi and lo < ratio < hi


def test_fit_lines_recover_overhead_and_slope():
    f = bench.fit_lines(_known()).set_index("platform")
    assert f.loc["linux/amd64", "overhead_s"] == pytest.approx(1.0, abs=1e-9)
    assert f.loc["linux/amd64", "s_per_unit"] == pytest.approx(0.1)
    assert f.loc["linux/arm64", "s_per_unit"] == pytest.approx(0.3)
    assert f.loc["linux/arm64", "slope_ratio"] == pytest.approx(3.0)


def test_plan_order_interleaves_rounds():
    plan = bench.Plan.matrix(["cpu", "article"], [ARM64], AMD64, repeats=2, warmup=0)
    order = [(r, c.workload, str(c.platform)) for r, c in plan.order()]
    assert order[:4] == [(0, "cpu", "linux/amd64"), (0, "cpu", "linux/arm64"), (0, "article", "linux/amd64"),
                         (0, "article", "linux/arm64")]
    assert order[4:] == [(1, "cpu", "linux/arm64"), (1, "article", "linux/amd64"), (1, "article", "linux/arm64"),
                         (1, "cpu", "linux/amd64")]


def test_plan_rejects_bad_input():
    with pytest.raises(KitError, match="unknown workload 'gpu'"):
        bench.Plan.matrix(["gpu"], [AMD64], AMD64)
    with pytest.raises(KitError, match="repeats must be at least 1"):
        bench.Plan.matrix(["cpu"], [ARM64], AMD64, repeats=0)


def test_plan_round_trips_through_its_file(tmp_path):
    plan = bench.Plan.matrix(["c", "go"], [ARM64, ARMV7], AMD64, sizes={"c": 3}, repeats=2, warmup=0, host_id="h1")
    loaded = bench.Plan.load(plan.save(tmp_path))
    assert loaded.cells == plan.cells and (loaded.repeats, loaded.host_id) == (2, "h1")


def test_the_answer_states_the_slowdowns_with_their_intervals():
    df = _known()
    df = df[df["size"] == 20]
    cross = df[df.strategy == "native"].assign(strategy="cross", platform="linux/arm64", wall_s=lambda d: d.wall_s * 1.1)
    (sentence,) = bench.answer(pd.concat([df, cross]))
    assert sentence.startswith("On h1, the cpu build (20 MB) for linux/arm64 takes under emulation 2.33x native")
    assert "cross-compiled 1.10x native" in sentence and "n = 5" in sentence


def test_host_id_is_made_once_per_machine_and_kept(tmp_path, monkeypatch):
    monkeypatch.delenv(bench.ENV_HOST_ID, raising=False)
    first = bench.host_id(tmp_path)
    assert first == bench.host_id(tmp_path) == (tmp_path / "host-id").read_text().strip()
    assert first != bench.host_id(tmp_path / "another-machine")


@pytest.mark.parametrize("content", ["{not json", "[]", '{"cells": [{"workload": "cpu"}]}',
                                     '{"run_id": "r", "host_id": "h", "repeats": 1, "warmup": 0, "builder": null, '
                                     '"cells": [{"workload": "cpu", "strategy": "native", "platform": "linux//x", '
                                     '"size": 1}]}'])
def test_a_damaged_plan_is_one_line_naming_it(tmp_path, content):
    path = tmp_path / "runs" / "r.json"
    path.parent.mkdir()
    path.write_text(content)
    with pytest.raises(KitError) as err:
        bench.Plan.load(path)
    assert str(path) in err.value.message and "\n" not in str(err.value)


def test_a_damaged_results_csv_names_the_line(tmp_path):
    path = tmp_path / "h1.csv"
    bench.append_rows(path, [_row(), _row(repeat=1)])
    path.write_text(path.read_text().replace(",1,1.0,0.5", ",1,fast,0.5"))
    with pytest.raises(KitError, match=r"h1.csv line 3: wall_s is not a number \('fast'\)"):
        bench.read_rows(path)


def test_two_node_builder_parse():
    b = buildx.parse_inspect((DATA / "buildx-inspect-two-nodes.txt").read_text())
    assert (b.name, b.driver) == ("kit-two", "remote")
    assert [(n.name, n.endpoint, n.status) for n in b.nodes] == [
        ("intel-node", "tcp://127.0.0.1:1234", "inactive"), ("m2-node", "tcp://127.0.0.1:1235", "inactive")]
    assert b.nodes[1].platforms == [ARM64, ARMV7]
    assert b.platforms == [AMD64, ARM64, ARMV7]


# --- real builds ------------------------------------------------------------------------------------------

def _kit(*args, **kw):
    return subprocess.Popen([str(Path(sys.executable).with_name("multiarch-kit")), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def test_ctrl_c_keeps_rows_and_resume_completes(lab_status, tmp_path):
    args = ["bench", "--workloads", "cpu", "--strategies", "native", "--sizes", "cpu=1", "--repeats", "6",
            "--warmup", "0", "--results", str(tmp_path), "--no-progress"]
    proc = _kit(*args)
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
    kept = bench.read_rows(csv)
    assert 2 <= len(kept) < 6
    done = _kit("bench", "--resume", "--results", str(tmp_path), "--no-progress")
    out, err = done.communicate(timeout=300)
    assert done.returncode == 0, err
    rows = bench.read_rows(csv)
    assert sorted(rows.repeat.astype(int)) == [0, 1, 2, 3, 4, 5]  # every repeat once, none twice
    assert rows.run_id.nunique() == 1 and (rows.wall_s.astype(float) > 0).all()
    assert set(rows.strategy) == {"native"} and set(rows.emulator) == {"native"}
    again = _kit("bench", "--resume", "--results", str(tmp_path))
    _, err = again.communicate(timeout=60)
    assert again.returncode == 2 and "nothing to resume" in err


def test_rows_carry_the_host_fingerprint(lab_status, tmp_path):
    other = AMD64 if lab_status.engine.platform == ARM64 else ARM64
    plan = bench.Plan.matrix(["cpu"], [other], lab_status.engine.platform, sizes={"cpu": 1}, repeats=1, warmup=0)
    df = bench.run(plan, tmp_path, progress=False)
    assert list(df.strategy) == ["native", "emulated"] and list(df.platform) == [str(lab_status.engine.platform),
                                                                                  str(other)]
    row = df.iloc[1]
    assert row.engine_platform == str(lab_status.engine.platform)
    assert row.docker_version == lab_status.engine.server_version
    assert row.builder == "default" and row.driver == "docker" and row.node == "default"
    assert row.cpu_model and row.host_os and row.kit_version and row.timestamp.endswith("Z")
    assert row.cpus == os.cpu_count() and row.emulator == "qemu" and df.iloc[0].emulator == "native"
    assert (tmp_path / "runs" / f"{plan.run_id}.json").exists() and (tmp_path / "schema.json").exists()
