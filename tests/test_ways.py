"""The ways to build for another platform: every cost in the table comes from the rows, and a way no row
measured says so."""

import pandas as pd
from conftest import result_row as _row

from multiarch_kit.bench import stats, store, ways
from multiarch_kit.engine import Kind

NOT_MEASURED = "not measured yet: run `multiarch-kit bench --reference` on a Mac"


def _rows(host, host_os, build, cells, repeats=5, kind=Kind.LOCAL):
    """``cells``: (strategy, platform, emulator, seconds); five rounds of each, a little jitter per round."""
    rows = [_row(host_id=host, host_os=host_os, engine_kind=kind.value, workload="c", size=35, size_unit="files",
                 repeat=rep,
                 strategy=strategy, platform=platform, emulator=emulator, engine_platform=build,
                 wall_s=seconds * (1 + (rep - 2) * 0.01))
            for rep in range(repeats) for strategy, platform, emulator, seconds in cells]
    df = pd.DataFrame(rows)
    df["size"], df["wall_s"], df["repeat"] = df["size"].astype(int), df.wall_s.astype(float), df.repeat.astype(int)
    return df


LINUX = _rows("vm", "Debian GNU/Linux", "linux/amd64", [
    ("native", "linux/amd64", "native", 10.0), ("emulated", "linux/arm64", "qemu", 95.0),
    ("emulated", "linux/arm/v7", "qemu", 90.0), ("cross", "linux/arm64", "native", 10.5)])
M2 = _rows("m2", "macOS", "linux/arm64", [
    ("native", "linux/arm64", "native", 5.0), ("emulated", "linux/amd64", "rosetta", 10.0),
    ("emulated", "linux/arm/v7", "qemu", 40.0), ("cross", "linux/amd64", "native", 5.5)], kind=Kind.DESKTOP)


def test_one_linux_host_fills_the_linux_column_and_names_what_a_mac_would_measure():
    t = ways.table(LINUX).set_index("way")
    assert list(t.index) == ["native node", "emulation (QEMU)", "Rosetta (Apple silicon)", "cross-compiling"]
    assert t.loc["emulation (QEMU)", "cost on Linux"] == "9.00x to 9.50x native (c; linux/arm/v7, linux/arm64)"
    assert t.loc["cross-compiling", "cost on Linux"] == "1.05x native (c; linux/arm64)"
    assert t.loc["native node", "cost on Linux"] == "1x, the reference: c 10.0 s on linux/amd64 (median)"
    assert t.loc["Rosetta (Apple silicon)", "cost on Linux"] == "none on Linux: Apple silicon only"
    assert set(t["cost on a Mac"]) == {NOT_MEASURED}


def test_a_mac_file_fills_the_mac_column_and_tells_rosetta_from_qemu():
    t = ways.table(pd.concat([LINUX, M2], ignore_index=True)).set_index("way")
    assert t.loc["Rosetta (Apple silicon)", "cost on a Mac"] == "2.00x native (c; linux/amd64)"
    assert t.loc["emulation (QEMU)", "cost on a Mac"] == "8.00x native (c; linux/arm/v7)"
    assert t.loc["native node", "cost on a Mac"] == "1x, the reference: c 5.0 s on linux/arm64 (median)"
    assert t.loc["cross-compiling", "cost on a Mac"] == "1.10x native (c; linux/amd64)"
    assert t.loc["emulation (QEMU)", "cost on Linux"] == "9.00x to 9.50x native (c; linux/arm/v7, linux/arm64)"


def test_two_linux_hosts_are_counted_and_named():
    other = LINUX.assign(host_id="vm2", wall_s=LINUX.wall_s * (LINUX.strategy == "emulated").map({True: 1.2,
                                                                                                  False: 1.0}))
    t = ways.table(pd.concat([LINUX, other], ignore_index=True)).set_index("way")
    assert t.loc["emulation (QEMU)", "cost on Linux"] == "9.00x to 11.40x native (c; linux/arm/v7, linux/arm64; 2 hosts)"
    assert t.loc["native node", "cost on Linux"] == ("1x, the reference: vm: c 10.0 s on linux/amd64 (median); "
                                                     "vm2: c 10.0 s on linux/amd64 (median)")


def test_no_results_measure_nothing():
    t = ways.table(pd.DataFrame(columns=store.COLUMNS))
    assert list(t["cost on Linux"]) == ["not measured yet"] * 2 + ["none on Linux: Apple silicon only",
                                                                   "not measured yet"]


def test_the_markdown_table_keeps_every_cell_in_its_column():
    frame = pd.DataFrame({"a": ["x | y"], "b": ["`--platform`"]})
    assert ways.markdown(frame) == "| a | b |\n| --- | --- |\n| x \\| y | `--platform` |"


def test_in_brief_quotes_every_slowdown_with_its_bounds_and_says_range_below_5():
    (sentence,) = stats.in_brief(LINUX[LINUX.platform != "linux/arm/v7"])
    assert sentence == ("On vm for linux/arm64: the c build (35 files) 9.50x native under emulation (9.50 to 9.50) "
                        "and 1.05x native cross-compiled (1.05 to 1.05) (geometric means over n = 5 rounds, paired by "
                        "round; in brackets a 95 % CI by a t-interval on the log ratios; wall_s).")
    few = LINUX[(LINUX.repeat < 3) & (LINUX.platform != "linux/arm/v7")].copy()
    few.loc[few.strategy == "emulated", "wall_s"] *= [1.0, 1.1, 1.2]
    (sentence,) = stats.in_brief(few)
    assert "under emulation (range 9.50 to 11.40)" in sentence
    assert "n = 3 rounds" in sentence and "the range where n < 5, not an interval" in sentence and "CI" not in sentence


def test_rows_from_the_emulated_arm64_vm_are_no_machines_cost():
    from multiarch_kit.bench import hostinfo

    vm = _rows("vm-arm64-vm", f"Debian GNU/Linux 13 (trixie), {hostinfo.SYSTEM_VM} (TCG) on Debian GNU/Linux",
               "linux/arm64", [("native", "linux/arm64", "native", 80.0), ("emulated", "linux/amd64", "qemu", 900.0)],
               kind=Kind.ARM64_VM)
    with_vm = ways.table(pd.concat([LINUX, vm], ignore_index=True))
    assert with_vm.equals(ways.table(LINUX))  # the VM's rows change no cost
    assert ways.table(vm).set_index("way").loc["native node", "cost on Linux"] == ways.table(LINUX.iloc[0:0]).set_index(
        "way").loc["native node", "cost on Linux"]
