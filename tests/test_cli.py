"""Every CLI command, every kind of bad input: exit 2 and one line that says what and what to do, never a traceback.

None of these needs the engine: bad input is refused before anything runs.
"""

import json
import tarfile

import pytest

from conftest import kit_cli, one_line_error
from multiarch_kit import cli, store


def _subcommands() -> set[str]:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return set(sub.choices)


@pytest.fixture
def corrupt(tmp_path):
    """Files that look like inputs and are not: a truncated OCI tar, a damaged results CSV, a damaged plan."""
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
    return tmp_path


CASES = {
    "": [[], ["frobnicate"], ["--no-such-flag"]],
    "doctor": [["doctor", "--format", "yaml"], ["doctor", "extra"]],
    "lab": [["lab"], ["lab", "sideways"], ["lab", "up", "--check", "--nodes"]],
    "inspect": [["inspect"], ["inspect", "Upper/Case"], ["inspect", "x:bad tag!"], ["inspect", "ftp://x/y"],
                ["inspect", "localhost:1/x", "--platform", "linux//arm64"], ["inspect", "oci-archive:{tmp}/none.tar"],
                ["inspect", "oci-archive:{tmp}/truncated-index.tar"], ["inspect", "oci-archive:{tmp}/half.tar"],
                ["inspect", "oci:{tmp}/good"], ["inspect", "docker-archive:{tmp}/a-file"],
                ["inspect", "localhost:5000/x", "--format", "xml"]],
    "bench": [["bench", "--workloads", "gpu"], ["bench", "--platforms", "linux//x"],
              ["bench", "--platforms", "linux/arm64,linux/aarch64"], ["bench", "--sizes", "big"],
              ["bench", "--repeats", "0"], ["bench", "--repeats", "many"], ["bench", "--resume", "--results",
                                                                             "{tmp}/empty"],
              ["bench", "--resume", "--results", "{tmp}/plans"]],
    "report": [["report", "--results", "{tmp}/empty"], ["report", "--results", "{tmp}/results"],
               ["report", "--metric", "speed"]],
    "verify": [["verify", "no such ref"], ["verify", "oci-archive:{tmp}/truncated-index.tar"],
               ["verify", "oci-archive:{tmp}/none.tar", "--run"]],
    "diff": [["diff", "a b", "c"], ["diff", "oci:{tmp}/good", "oci:{tmp}/good"], ["diff", "only-one"]],
    "profile": [["profile"], ["profile", "{tmp}/empty"], ["profile", "no-such-workload"],
                ["profile", "{tmp}/empty", "--platform", "linux//x"], ["profile", "c", "--build-arg", "FILES"],
                ["profile", "c", "--build-context", "=x"], ["profile", "c", "--format", "yaml"]],
    "build": [["build"], ["build", "{tmp}/empty", "--tag", "localhost:5000/x:1", "--platform", "linux//x"],
              ["build", "{tmp}/empty", "--tag", "localhost:5000/x:1", "--platform", "linux/amd64",
               "--node", "linux/arm64=node2"],
              ["build", "{tmp}/empty", "--tag", "Bad Tag", "--platform", "linux/amd64"],
              ["build", "{tmp}/empty", "--tag", "localhost:5000/x@sha256:" + "0" * 64, "--platform", "linux/amd64"],
              ["build", "{tmp}/empty", "--tag", "localhost:5000/x:1", "--platform", "linux/amd64,linux/x86_64"],
              ["build", "{tmp}/empty", "--tag", "localhost:5000/x:1", "--platform", "linux/amd64"],
              ["build", "{tmp}/context", "--tag", "localhost:5000/x:1", "--platform", "linux/amd64", "--build-arg",
               "N"]],
    "notebooks": [["notebooks", "--src", "{tmp}/empty", "--out", "{tmp}/out"],
                  ["notebooks", "--src", "{tmp}/empty", "--out", "{tmp}/a-file/sub"]],
}


def test_every_subcommand_has_bad_input_cases():
    assert _subcommands() <= set(CASES), _subcommands() - set(CASES)


@pytest.mark.parametrize("args", [a for cases in CASES.values() for a in cases], ids=lambda a: " ".join(a) or "(none)")
def test_bad_input_is_one_line_and_exit_2(corrupt, args):
    args = [a.replace("{tmp}", str(corrupt)) for a in args]
    proc = kit_cli(*args, env={"MULTIARCH_KIT_RESULTS": str(corrupt / "empty")}, timeout=120)
    line = one_line_error(proc)
    assert len(line) > len("multiarch-kit: error: ") + 10
    assert proc.stdout.count("Traceback") == 0


def test_bad_settings_are_one_line(tmp_path):
    assert "is not a port number" in one_line_error(kit_cli("lab", "status",
                                                            env={"MULTIARCH_KIT_REGISTRY_PORT": "http"}))
    assert "is not a base choice" in one_line_error(kit_cli("lab", "up", env={"MULTIARCH_KIT_BASE": "ubuntu"}))


def test_damaged_results_keep_every_file_as_it_was(corrupt):
    before = {p: p.read_bytes() for p in corrupt.rglob("*") if p.is_file()}
    for args in CASES["report"][:2] + CASES["bench"][-2:]:
        kit_cli(*[a.replace("{tmp}", str(corrupt)) for a in args])
    after = {p: p.read_bytes() for p in corrupt.rglob("*") if p.is_file()}
    assert {p: b for p, b in after.items() if p in before} == before  # nothing measured or written was lost


def test_json_outputs_are_json(tmp_path):
    proc = kit_cli("doctor", "--format", "json", env={"DOCKER_HOST": f"unix://{tmp_path}/no.sock"})
    rows = json.loads(proc.stdout)
    assert proc.returncode == 1 and rows[0]["check"] == "engine" and rows[0]["status"] == "fail"
