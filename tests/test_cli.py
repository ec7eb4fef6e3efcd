"""Every CLI command, every kind of bad input: exit 2 and one line that says what and what to do, never a traceback.

None of these needs the engine: bad input is refused before anything runs.
"""

import json
import tarfile
from types import SimpleNamespace

import pytest
from conftest import kit_cli, one_line_error

from multiarch_kit import bench, cli, lab
from multiarch_kit.bench import plans, store
from multiarch_kit.core import settings
from multiarch_kit.oci.platforms import ARM64


def _subcommands() -> set[str]:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return set(sub.choices)


@pytest.fixture
def corrupt(tmp_path):
    """Files that look like inputs and are not: a truncated OCI tar, a damaged results CSV, a damaged plan, and a
    file where a folder must be."""
    good = tmp_path / "good"
    good.mkdir()
    (good / "index.json").write_text('{"schemaVersion": 2, "manifests": [')  # truncated JSON
    (good / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    with tarfile.open(tmp_path / "truncated-index.tar", "w") as tar:
        tar.add(good / "index.json", "index.json")
        tar.add(good / "oci-layout", "oci-layout")
    (tmp_path / "half.tar").write_bytes((tmp_path / "truncated-index.tar").read_bytes()[:700])
    results = tmp_path / "results"
    results.mkdir()
    (results / "h1.csv").write_text(",".join(store.COLUMNS) + "\n" + ",".join(["x"] * len(store.COLUMNS)) + "\n")
    plans = tmp_path / "plans" / "runs"
    plans.mkdir(parents=True)
    (plans / "20260101T000000-abcdef.json").write_text('{"cells": ')
    (tmp_path / "empty").mkdir()
    (tmp_path / "context").mkdir()
    (tmp_path / "context" / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "a-file").write_text("not a folder")
    (tmp_path / "books").mkdir()
    (tmp_path / "books" / "01-only.ipynb").write_text("{}")  # found, never run: --out cannot be made first
    return tmp_path


# Per subcommand: (arguments, what the one error line must say). The fragment is the check's own words, so a
# removed check is seen even when the command then fails some other way (also with exit 2).
CASES = {
    "": [([], "the following arguments are required: command"),
         (["frobnicate"], "invalid choice: 'frobnicate'"),
         (["--no-such-flag", "doctor"], "unrecognized arguments: --no-such-flag")],
    "doctor": [(["doctor", "--format", "yaml"], "argument --format: invalid choice: 'yaml'"),
               (["doctor", "extra"], "unrecognized arguments: extra")],
    "lab": [(["lab"], "the following arguments are required: action"),
            (["lab", "sideways"], "argument action: invalid choice: 'sideways'"),
            (["lab", "up", "--check", "--nodes"], "argument --nodes: expected one argument")],
    "inspect": [(["inspect"], "the following arguments are required: reference"),
                (["inspect", "Upper/Case"], "'Upper/Case' is not an image name"),
                (["inspect", "x:bad tag!"], "'bad tag!' is not a tag"),
                (["inspect", "ftp://x/y"], "unknown transport 'ftp'"),
                (["inspect", "localhost:1/x", "--platform", "linux//arm64"], "invalid platform 'linux//arm64'"),
                (["inspect", "oci-archive:{tmp}/none.tar"], "{tmp}/none.tar does not exist"),
                (["inspect", "oci-archive:{tmp}/truncated-index.tar"],
                 "{tmp}/truncated-index.tar: index.json is not JSON"),
                (["inspect", "oci-archive:{tmp}/half.tar"], "{tmp}/half.tar is not a readable tar archive"),
                (["inspect", "oci:{tmp}/good"], "{tmp}/good: index.json is not JSON"),
                (["inspect", "docker-archive:{tmp}/a-file"], "{tmp}/a-file is not a readable tar archive"),
                (["inspect", "localhost:5000/x", "--format", "xml"], "argument --format: invalid choice: 'xml'")],
    "bench": [(["bench", "--workloads", "gpu"], "unknown workload 'gpu'"),
              (["bench", "--platforms", "linux//x"], "invalid platform 'linux//x'"),
              (["bench", "--platforms", "linux/arm64,linux/aarch64"], "platform linux/arm64 is given twice"),
              (["bench", "--sizes", "big"], "'big' is not WORKLOAD=NUMBER"),
              # --warmup 0: were the check gone, the run would measure nothing and end at once
              (["bench", "--repeats", "0", "--warmup", "0"], "repeats must be at least 1"),
              (["bench", "--warmup", "-1"], "warmup cannot be negative"),
              (["bench", "--repeats", "many"], "argument --repeats: invalid int value: 'many'"),
              (["bench", "--reference", "--platforms", "linux/amd64"],
               "--reference measures the reference plan into results/reference/, so it takes no --platforms"),
              (["bench", "--reference", "--full", "--results", "{tmp}/empty"], "so it takes no --full, --results"),
              (["bench", "--resume", "--results", "{tmp}/empty"], "nothing to resume"),
              (["bench", "--resume", "--results", "{tmp}/plans"],
               "the bench plan {tmp}/plans/runs/20260101T000000-abcdef.json cannot be read")],
    "report": [(["report", "--results", "{tmp}/empty"], "no results in {tmp}/empty"),
               (["report", "--results", "{tmp}/results"], "no results in {tmp}/results"),  # its one CSV is damaged
               (["report", "--metric", "speed"], "argument --metric: invalid choice: 'speed'")],
    "verify": [(["verify", "no such ref"], "'no such ref' is not an image name"),
               (["verify", "oci-archive:{tmp}/truncated-index.tar"], "{tmp}/truncated-index.tar: index.json is not JSON"),
               (["verify", "oci-archive:{tmp}/none.tar", "--run"], "the run check needs a registry reference")],
    "diff": [(["diff", "a b", "c"], "'a b' is not an image name"),
             (["diff", "oci:{tmp}/good", "oci:{tmp}/good"], "{tmp}/good: index.json is not JSON"),
             (["diff", "only-one"], "the following arguments are required: b")],
    "profile": [(["profile"], "the following arguments are required: context"),
                (["profile", "{tmp}/empty"], "no Dockerfile in {tmp}/empty"),
                (["profile", "no-such-workload"], "no-such-workload is neither a folder nor a workload"),
                (["profile", "{tmp}/empty", "--platform", "linux//x"], "invalid platform 'linux//x'"),
                (["profile", "c", "--build-arg", "FILES"], "--build-arg 'FILES' is not NAME=VALUE"),
                (["profile", "c", "--build-context", "=x"], "--build-context '=x' is not NAME=VALUE"),
                (["profile", "c", "--format", "yaml"], "argument --format: invalid choice: 'yaml'")],
    "build": [(["build"], "the following arguments are required: context, --tag, --platform"),
              (["build", "{tmp}/empty", "--tag", "localhost:5000/x:1", "--platform", "linux//x"],
               "invalid platform 'linux//x'"),
              (["build", "{tmp}/empty", "--tag", "localhost:5000/x:1", "--platform", "linux/amd64",
                "--node", "linux/arm64=node2"], "linux/arm64 is not among the platforms to build"),
              (["build", "{tmp}/empty", "--tag", "Bad Tag", "--platform", "linux/amd64"],
               "'Bad Tag' is not an image name"),
              (["build", "{tmp}/empty", "--tag", "localhost:5000/x@sha256:" + "0" * 64, "--platform", "linux/amd64"],
               "is not a tag in a registry"),
              (["build", "{tmp}/empty", "--tag", "localhost:5000/x:1", "--platform", "linux/amd64,linux/x86_64"],
               "platform linux/amd64 is given twice"),
              (["build", "{tmp}/empty", "--tag", "localhost:5000/x:1", "--platform", "linux/amd64"],
               "no Dockerfile in {tmp}/empty"),
              (["build", "{tmp}/context", "--tag", "localhost:5000/x:1", "--platform", "linux/amd64", "--build-arg",
                "N"], "--build-arg 'N' is not NAME=VALUE")],
    "notebooks": [(["notebooks", "--src", "{tmp}/empty", "--out", "{tmp}/out"],
                   "no numbered notebooks (NN-name.ipynb) in {tmp}/empty"),
                  (["notebooks", "--src", "{tmp}/books", "--out", "{tmp}/a-file/sub"], "cannot create {tmp}/a-file/sub")],
}


def case_id(args: list[str]) -> str:
    """A case's test id: its arguments as typed (scripts/mutants.py names cases by it)."""
    return " ".join(args) or "(none)"


def test_every_subcommand_has_bad_input_cases():
    assert _subcommands() <= set(CASES), _subcommands() - set(CASES)


@pytest.mark.parametrize(("args", "says"), [c for cases in CASES.values() for c in cases],
                         ids=[case_id(args) for cases in CASES.values() for args, _ in cases])
def test_bad_input_is_one_line_and_exit_2(corrupt, args, says):
    args = [a.replace("{tmp}", str(corrupt)) for a in args]
    proc = kit_cli(*args, env={"MULTIARCH_KIT_RESULTS": str(corrupt / "empty")}, timeout=120)
    line = one_line_error(proc)
    assert says.replace("{tmp}", str(corrupt)) in line
    assert proc.stdout.count("Traceback") == 0


def test_bad_settings_are_one_line(tmp_path):
    assert "is not a port number" in one_line_error(kit_cli("lab", "status",
                                                            env={"MULTIARCH_KIT_REGISTRY_PORT": "http"}))
    assert "is not a base choice" in one_line_error(kit_cli("lab", "up", env={"MULTIARCH_KIT_BASE": "ubuntu"}))


def test_damaged_results_keep_every_file_as_it_was(corrupt):
    before = {p: p.read_bytes() for p in corrupt.rglob("*") if p.is_file()}
    for args, _ in CASES["report"][:2] + CASES["bench"][-2:]:
        kit_cli(*[a.replace("{tmp}", str(corrupt)) for a in args])
    after = {p: p.read_bytes() for p in corrupt.rglob("*") if p.is_file()}
    assert {p: b for p, b in after.items() if p in before} == before  # nothing measured or written was lost


def test_a_damaged_results_file_is_named_where_it_breaks(corrupt):
    proc = kit_cli("report", "--results", str(corrupt / "results"))
    assert "no results in" in one_line_error(proc)
    (note,) = proc.stdout.splitlines()  # the file, the line and what is wrong there; nothing else was read
    assert note.startswith(f"skipped h1.csv: {corrupt}/results/h1.csv line 2: ") and note.endswith("('x')")


def test_json_outputs_are_json(tmp_path):
    proc = kit_cli("doctor", "--format", "json", env={"DOCKER_HOST": f"unix://{tmp_path}/no.sock"})
    rows = json.loads(proc.stdout)
    assert proc.returncode == 1 and rows[0]["check"] == "engine" and rows[0]["status"] == "fail"


def test_bench_reference_measures_the_reference_plan_into_results_reference(tmp_path, monkeypatch, capsys):
    """`bench --reference` measures the reference plan into results/reference/ under the current folder, whatever
    $MULTIARCH_KIT_RESULTS says. The engine and the builds are stood in for: what they are asked is the test."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(settings.ENV_RESULTS, str(tmp_path / "scratch"))
    monkeypatch.setenv(settings.ENV_HOST_ID, "m2-mac")
    monkeypatch.setenv(settings.ENV_LAB_DIR, str(tmp_path / "lab"))
    status = SimpleNamespace(config=lab.LabConfig.from_env(), engine=SimpleNamespace(platform=ARM64, is_arm64_vm=False))
    monkeypatch.setattr(lab, "status", lambda: status)
    asked = {}
    monkeypatch.setattr(bench, "run", lambda plan, folder, status, progress: asked.update(
        plan=plan, folder=folder, status=status) or [])
    assert cli.main(["bench", "--reference", "--no-progress"]) == 0
    assert (asked["folder"], asked["status"], asked["plan"].host_id) == (store.REFERENCE, status, "m2-mac")
    assert asked["plan"].cells == plans.reference_plan(ARM64).cells
    out = capsys.readouterr().out
    assert "results in results/reference/m2-mac.csv" in out and "commit that, this host's CSV" in out
