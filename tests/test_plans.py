"""Bench plans: the matrix and its order, the plan's file, what an interrupted run has left, and that making a
plan writes nothing."""

import pytest
from conftest import ROOT
from conftest import result_row as _row

from multiarch_kit.bench import plans, store
from multiarch_kit.core import settings
from multiarch_kit.core.errors import KitError
from multiarch_kit.oci.platforms import AMD64, ARM64, ARMV7


def test_plan_order_interleaves_rounds():
    plan = plans.Plan.matrix(["cpu", "article"], [ARM64], AMD64, repeats=2, warmup=0)
    order = [(r, c.workload, str(c.platform)) for r, c in plan.order()]
    assert order[:4] == [(0, "cpu", "linux/amd64"), (0, "cpu", "linux/arm64"), (0, "article", "linux/amd64"),
                         (0, "article", "linux/arm64")]
    assert order[4:] == [(1, "cpu", "linux/arm64"), (1, "article", "linux/amd64"), (1, "article", "linux/arm64"),
                         (1, "cpu", "linux/amd64")]


def test_plan_rejects_bad_input():
    with pytest.raises(KitError, match="unknown workload 'gpu'"):
        plans.Plan.matrix(["gpu"], [AMD64], AMD64)
    with pytest.raises(KitError, match="repeats must be at least 1"):
        plans.Plan.matrix(["cpu"], [ARM64], AMD64, repeats=0)


def test_plan_round_trips_through_its_file(tmp_path):
    plan = plans.Plan.matrix(["c", "go"], [ARM64, ARMV7], AMD64, sizes={"c": 3}, repeats=2, warmup=0, host_id="h1")
    loaded = plans.Plan.load(plan.save(tmp_path))
    assert loaded.cells == plan.cells and (loaded.repeats, loaded.host_id) == (2, "h1")


def test_making_a_plan_writes_no_file(tmp_path, monkeypatch):
    """The host id is the runner's business, when a run starts: a plan is a value until then."""
    lab_dir, results = tmp_path / "lab", tmp_path / "results"
    lab_dir.mkdir()
    results.mkdir()
    monkeypatch.setenv(settings.ENV_LAB_DIR, str(lab_dir))
    monkeypatch.setenv(settings.ENV_RESULTS, str(results))
    monkeypatch.delenv(settings.ENV_HOST_ID, raising=False)
    made = [plans.Plan.matrix(["c", "go"], [ARM64], AMD64), plans.default_plan(AMD64, repeats=3, warmup=1),
            plans.Plan([plans.Cell("cpu", "native", AMD64, 1)])]
    assert [p.host_id for p in made] == ["", "", ""]
    assert sorted(tmp_path.rglob("*")) == [lab_dir, results]  # not even <lab>/host-id


def test_pending_names_what_an_interrupted_run_has_left(tmp_path):
    plan = plans.Plan.matrix(["cpu"], [ARM64], AMD64, sizes={"cpu": 1}, repeats=2, warmup=0, host_id="h1")
    plan.save(tmp_path)
    first_repeat, first_cell = plan.order()[0]
    store.append_rows(tmp_path / "h1.csv", [_row(run_id=plan.run_id, size=1, repeat=first_repeat,
                                                 strategy=first_cell.strategy, platform=str(first_cell.platform))])
    found, done = plans.pending(tmp_path, "h1")
    assert found.run_id == plan.run_id and done == {(0, first_cell)}
    assert plans.pending(tmp_path, "another-host") is None


@pytest.mark.parametrize("content", ["{not json", "[]", '{"cells": [{"workload": "cpu"}]}',
                                     '{"run_id": "r", "host_id": "h", "repeats": 1, "warmup": 0, "builder": null, '
                                     '"cells": [{"workload": "cpu", "strategy": "native", "platform": "linux//x", '
                                     '"size": 1}]}'])
def test_a_damaged_plan_is_one_line_naming_it(tmp_path, content):
    path = tmp_path / "runs" / "r.json"
    path.parent.mkdir()
    path.write_text(content)
    with pytest.raises(KitError) as err:
        plans.Plan.load(path)
    assert str(path) in err.value.message and "\n" not in str(err.value)


def test_the_reference_plan_is_what_made_the_committed_run():
    """On an amd64 machine the reference plan measures what each amd64 VM's committed run measured, cell for cell."""
    committed = sorted((ROOT / store.REFERENCE / "runs").glob("*.json"))
    assert len(committed) == 2  # vm-a637dd's and vm-a62df5's
    made = plans.reference_plan(AMD64)
    for path in committed:
        vm = plans.Plan.load(path)
        assert made.cells == vm.cells and (made.repeats, made.warmup) == (vm.repeats, vm.warmup) == (5, 1)


def test_the_reference_plan_on_apple_silicon_emulates_amd64_and_arm_v7():
    """An M2 compares its native arm64 build with amd64 (Rosetta or QEMU) and arm/v7 (QEMU): the same builds."""
    plan = plans.reference_plan(ARM64)
    by_strategy = {s: sorted(str(c.platform) for c in plan.cells if c.strategy == s and c.workload == "c")
                   for s in ("native", "emulated", "cross")}
    assert by_strategy == {"native": ["linux/arm64"], "emulated": ["linux/amd64", "linux/arm/v7"],
                           "cross": ["linux/amd64", "linux/arm/v7"]}
    assert {(c.workload, c.size) for c in plan.cells} == {("c", 35), ("go", 66)}  # the whole builds
