"""`make mutants`: remove one check at a time from a copy of the package and see the test that names it fail.

A test that stays green when its check is gone tests nothing (the CLI's bad-input cases did, while any exit 2
passed them). Each mutant turns one ``if CONDITION:`` of the package into ``if False:`` in a copy, runs the
tests that should notice with that copy first on the path, and counts the mutant killed only when each of
them fails (pytest's exit 1; not "no such test", exit 4). The statement is found by a pattern over the whole
package, since modules move; a pattern that matches no line, or more than one, stops the run with its name.
Prints "killed" or "survived" per mutant; exits 1 if any survived.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "multiarch_kit"
CLI_CASE = "tests/test_cli.py::test_bad_input_is_one_line_and_exit_2[{}]"


@dataclass(frozen=True)
class Mutant:
    name: str
    check: str  # a regular expression for the whole `if ...:` line of the check, matched once in the package
    tests: tuple[str, ...]  # pytest node ids, relative to the repository; each must fail without the check


CHECKS = "tests/test_checks.py::{}"

MUTANTS = [
    Mutant("a platform given twice", r"if p in found:",
           (CLI_CASE.format("build {tmp}/empty --tag localhost:5000/x:1 --platform linux/amd64,linux/x86_64"),)),
    Mutant("--repeats below 1", r"if repeats < 1:",
           (CLI_CASE.format("bench --repeats 0 --warmup 0"),)),
    Mutant("a member name that leaves an archive", r'if pure\.is_absolute\(\) or "\.\." in pure\.parts\b.*:',
           ("tests/test_fuzz.py::test_docker_archive_names_that_leave_the_archive",)),
    # references
    Mutant("a tag docker refuses", r"if tag and not _TAG\.match\(tag\):",
           (CHECKS.format("test_a_tag_docker_would_refuse_is_refused"),)),
    Mutant("a digest that is not sha256", r"if digest and not _DIGEST\.match\(digest\):",
           (CHECKS.format("test_a_digest_that_is_not_sha256_is_refused"),)),
    Mutant("an image name docker refuses", r"if not _NAME\.match\(name\):",
           (CHECKS.format("test_an_upper_case_repository_is_refused"),)),
    # platforms and matching
    Mutant("a platform of four parts", r"if len\(parts\) > 3:",
           (CHECKS.format("test_a_platform_has_at_most_three_parts"),)),
    Mutant("a wildcard platform", r'if "\*" in text:',
           (CHECKS.format("test_a_wildcard_is_refused_as_a_wildcard"),)),
    Mutant("an architecture nobody knows", r"if p\.architecture not in KNOWN_ARCH:",
           (CHECKS.format("test_a_lone_word_must_be_an_architecture_the_table_knows"),)),
    Mutant("arm64 v9 running v8.x", r"if major == 9:",
           (CHECKS.format("test_arm64_v9_runs_what_v8_5_runs"),)),
    Mutant("amd64 levels running lower levels", r"if level and level > 1:",
           (CHECKS.format("test_amd64_v3_runs_amd64_v2"),)),
    # the manifest model and selection
    Mutant("a descriptor's size", r"if not isinstance\(size, int\) or isinstance\(size, bool\) or size < 0:",
           (CHECKS.format("test_a_descriptor_with_a_negative_size_is_refused"),)),
    Mutant("content of another length than its descriptor's", r"if len\(data\) != descriptor\.size:",
           (CHECKS.format("test_content_whose_length_is_not_its_descriptors_is_refused"),)),
    Mutant("a schema version other than 2", r'if obj\.get\("schemaVersion"\) != 2:',
           (CHECKS.format("test_only_schema_version_2_is_read"),)),
    Mutant("an attestation chosen to run", r"if d\.platform is None or d\.is_attestation:",
           (CHECKS.format("test_an_attestation_is_never_what_a_runtime_takes"),)),
    # verify
    Mutant("a binary of another architecture", r"if info\.architecture != platform\.architecture:",
           (CHECKS.format("test_a_binary_of_another_architecture_is_named"),)),
    Mutant("an ARM binary for a newer CPU", r"if info\.arm_version > int\(variant\[1:\]\):",
           (CHECKS.format("test_an_armv7_binary_in_an_arm_v6_image_needs_a_newer_cpu"),)),
    Mutant("test data of a source tree", r'if "testdata" in parts:',
           (CHECKS.format("test_test_data_of_a_source_tree_is_expected_elsewhere"),)),
    # statistics
    Mutant("times with no spread", r"if se == 0:",
           (CHECKS.format("test_identical_times_give_an_interval_of_no_width"),)),
]


class NotFound(Exception):
    """The check to remove is not (or not once) in the package: the pattern needs updating."""


def locate(package: Path, check: str) -> tuple[Path, int]:
    """The one file and line index in ``package`` whose line is ``check`` (an ``if ...:`` line)."""
    line = re.compile(rf"^\s*{check}\s*(#.*)?$")
    found = [(path, i) for path in sorted(package.rglob("*.py"))
             for i, text in enumerate(path.read_text().splitlines()) if line.match(text)]
    if len(found) != 1:
        where = ", ".join(f"{p.relative_to(package.parent)}:{i + 1}" for p, i in found) or "no line"
        raise NotFound(f"the pattern {check!r} must match exactly one line of {package.name}, not {where}")
    return found[0]


def mutate(package: Path, check: str) -> str:
    """Turn the check's condition into ``False`` in ``package`` (a copy); the file and line, for the report."""
    path, i = locate(package, check)
    lines = path.read_text().splitlines(keepends=True)
    indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
    lines[i] = f"{indent}if False:  # mutant: check removed\n"
    path.write_text("".join(lines))
    return f"{path.relative_to(package.parent)}:{i + 1}"


def run_test(test: str, package_parent: Path) -> int:
    """pytest's exit code for one test, importing the package found in ``package_parent``."""
    # The copy is the working folder and the only PYTHONPATH entry, so it comes before the checkout and any
    # installed copy; the test file is named by its absolute path, so the project's pytest settings still apply.
    env = {**os.environ, "PYTHONPATH": str(package_parent)}
    argv = [sys.executable, "-m", "pytest", str(ROOT / test), "-q", "-x", "-p", "no:cacheprovider"]
    return subprocess.run(argv, cwd=package_parent, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          check=False).returncode


def imported_from(package_parent: Path) -> Path:
    """Where the `multiarch-kit` command imports the package from, run as run_test runs it."""
    probe = "import multiarch_kit; print(multiarch_kit.__file__)"
    out = subprocess.run([sys.executable, "-c", probe], cwd=package_parent, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(package_parent)}, check=True).stdout
    return Path(out.strip()).parent


def try_mutant(mutant: Mutant, package: Path = PACKAGE) -> tuple[bool, str]:
    """(killed, what happened): each of the mutant's tests passes on the package and fails without the check."""
    with tempfile.TemporaryDirectory(prefix="multiarch-kit-mutant-") as tmp:
        copy = Path(tmp) / package.name
        shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__"))
        if imported_from(Path(tmp)) != copy:
            raise NotFound(f"the tests would not import the mutated copy in {tmp}")
        for test in mutant.tests:
            if (code := run_test(test, Path(tmp))) != 0:
                return False, f"{test} does not pass on the package itself (pytest exit {code})"
        where = mutate(copy, mutant.check)
        for test in mutant.tests:
            if (code := run_test(test, Path(tmp))) != 1:
                return False, f"{where}: {test} gives pytest exit {code} without the check, not a failure (1)"
        return True, f"{where}: {len(mutant.tests)} test(s) failed without the check"


def main() -> int:
    survived = 0
    for mutant in MUTANTS:
        try:
            killed, why = try_mutant(mutant)
        except NotFound as exc:
            print(f"cannot make the mutant '{mutant.name}': {exc}", file=sys.stderr)
            return 2
        survived += not killed
        print(f"{'killed' if killed else 'survived':<9} {mutant.name}: {why}", flush=True)
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
