"""The bench runner against real builds (Ctrl-C and resume, the host's fingerprint on each row), and the
two-node builder parser it relies on."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import DATA
from multiarch_kit import bench, buildx, plans, store
from multiarch_kit.platforms import AMD64, ARM64, ARMV7


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
    assert row.builder == "default" and row.driver == "docker" and row.node == "default"
    assert row.cpu_model and row.host_os and row.kit_version and row.timestamp.endswith("Z")
    assert row.cpus == os.cpu_count() and row.emulator == "qemu" and df.iloc[0].emulator == "native"
    assert (tmp_path / "runs" / f"{plan.run_id}.json").exists() and (tmp_path / "schema.json").exists()
