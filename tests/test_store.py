"""The results on disk: the schema file, atomic appends, a killed writer, a full disk, damaged files."""

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from conftest import require
from conftest import result_row as _row

from multiarch_kit.bench import store
from multiarch_kit.core.errors import KitError


def test_schema_file_lists_every_column(tmp_path):
    store.prepare(tmp_path)
    schema = json.loads((tmp_path / "schema.json").read_text())
    assert [c["name"] for c in schema["columns"]] == store.COLUMNS
    assert schema["version"] == store.SCHEMA_VERSION
    assert {"wall_s", "run_s", "emulator", "node", "cpu_model", "cpus", "engine_platform", "size",
            "size_unit"} <= set(store.COLUMNS)


def test_append_keeps_header_once_and_rows_in_order(tmp_path):
    path = tmp_path / "h1.csv"
    store.append_rows(path, [_row(repeat=0)])
    store.append_rows(path, [_row(repeat=1), _row(repeat=2)])
    lines = path.read_text().splitlines()
    assert lines[0] == ",".join(store.COLUMNS) and len(lines) == 4
    assert list(store.read_rows(path).repeat) == [0, 1, 2]


def test_append_refuses_a_file_with_other_columns(tmp_path):
    path = tmp_path / "h1.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(KitError, match="other columns"):
        store.append_rows(path, [_row()])
    assert path.read_text() == "a,b\n1,2\n"


_WRITER = """
import sys
from multiarch_kit.bench import store
row = {c: "x" * 200 for c in store.COLUMNS}
while True:
    store.append_rows(sys.argv[1], [row] * 2000)
"""


def test_a_killed_writer_leaves_a_whole_file(tmp_path):
    path = tmp_path / "h1.csv"
    store.append_rows(path, [_row()])
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)])
    # Kill it in the middle of an append: after at least two whole batches have landed.
    deadline = time.monotonic() + 60
    while path.stat().st_size < 1 + 2 * 2000 * 200 * len(store.COLUMNS) and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    text = path.read_text()
    lines = text.splitlines()
    assert text.endswith("\n") and lines[0] == ",".join(store.COLUMNS)
    assert all(line.count(",") == len(store.COLUMNS) - 1 for line in lines)  # no half-written row
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
        store.append_rows(path, [_row()])
        before = path.read_bytes()
        with pytest.raises(KitError) as err:
            store.append_rows(path, [_row(workload="x" * 100_000)])
        assert "No space left on device" in err.value.message and "previous file is intact" in err.value.message
        assert path.read_bytes() == before
        assert [p.name for p in small.iterdir()] == ["h1.csv"]  # no temporary file left behind
    finally:
        subprocess.run(["umount", str(small)], check=True)


def test_load_results_merges_hosts_and_skips_strangers(tmp_path, capsys):
    store.append_rows(tmp_path / "m2.csv", [_row(host_id="m2", platform="linux/arm64")])
    store.append_rows(tmp_path / "intel.csv", [_row(host_id="intel"), _row(host_id="intel", repeat=1)])
    (tmp_path / "notes.csv").write_text("something,else\n")
    df = store.load_results(tmp_path)
    assert sorted(df.host_id.unique()) == ["intel", "m2"] and len(df) == 3
    assert df.wall_s.dtype == float and df["size"].dtype == int
    assert "skipped notes.csv" in capsys.readouterr().out


def test_a_damaged_results_csv_names_the_line(tmp_path):
    path = tmp_path / "h1.csv"
    store.append_rows(path, [_row(), _row(repeat=1)])
    path.write_text(path.read_text().replace(",1,1.0,0.5", ",1,fast,0.5"))
    with pytest.raises(KitError, match=r"h1.csv line 3: wall_s is not a number \('fast'\)"):
        store.read_rows(path)


def test_a_schema_3_file_reads_and_grows_as_schema_4_with_the_versions_it_never_measured_left_empty(tmp_path):
    from conftest import result_row

    path = tmp_path / "h1.csv"
    pd.DataFrame([{k: result_row()[k] for k in store.V3_COLUMNS}], columns=store.V3_COLUMNS).to_csv(path, index=False)
    read = store.read_rows(path)
    assert list(read.columns) == store.COLUMNS
    assert (read.containerd_version.tolist(), read.docker_cli_version.tolist()) == ([""], [""])
    store.append_rows(path, [result_row(repeat=1, containerd_version="2.1.9+unknown", docker_cli_version="28.5.2")])
    assert path.read_text().splitlines()[0].split(",") == store.COLUMNS
    assert store.read_rows(path).containerd_version.tolist() == ["", "2.1.9+unknown"]


def test_a_schema_2_file_reads_and_grows_as_schema_4_with_each_rows_engine_kind(tmp_path):
    """Schema 2 had no engine_kind; its rows get the kind the engine was (the arm64 VM said so in host_os), once,
    where the file is read, and the next append writes the whole file as schema 3."""
    from conftest import result_row

    from multiarch_kit.engine import Kind

    path = tmp_path / "h1.csv"
    vm_os = f"Debian GNU/Linux 13 (trixie), {store.ARM64_VM_HOST_OS} (TCG) on Debian GNU/Linux"
    old = [{k: v for k, v in result_row(host_os=os_).items() if k in store.V2_COLUMNS}
           for os_ in ("Debian GNU/Linux", vm_os, "macOS")]
    pd.DataFrame(old, columns=store.V2_COLUMNS).to_csv(path, index=False)
    read = store.read_rows(path)
    assert list(read.columns) == store.COLUMNS
    assert list(read.engine_kind) == [Kind.LOCAL.value, Kind.ARM64_VM.value, Kind.DESKTOP.value]
    store.append_rows(path, [result_row(engine_kind=Kind.REMOTE.value, repeat=1)])
    assert path.read_text().splitlines()[0].split(",") == store.COLUMNS  # the whole file is schema 4 now
    assert list(store.read_rows(path).engine_kind) == [k.value for k in (Kind.LOCAL, Kind.ARM64_VM, Kind.DESKTOP,
                                                                        Kind.REMOTE)]
