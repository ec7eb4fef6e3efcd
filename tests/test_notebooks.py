"""The headless notebook runner behind `make run`."""

import nbformat
import pytest
from conftest import ROOT
from nbformat.v4 import new_code_cell, new_notebook

from multiarch_kit.cli import notebooks


def _write(path, *sources):
    nb = new_notebook(cells=[new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def test_runs_in_order_in_the_notebooks_folder_and_keeps_going_after_a_failure(tmp_path):
    src, out = tmp_path / "nb", tmp_path / "results"
    src.mkdir()
    (src / "data.txt").write_text("from the notebook's folder")
    _write(src / "01-reads.ipynb", "print(open('data.txt').read())")
    _write(src / "02-fails.ipynb", "x = 1", "raise ValueError('boom')", "print('never')")
    _write(src / "scratch.ipynb", "print('not numbered, not run')")
    summary = notebooks.execute_all(src, out)
    assert list(summary.notebook) == ["01-reads.ipynb", "02-fails.ipynb"]
    assert list(summary.status) == ["ok", "failed"]
    assert "ValueError: boom" in summary.error[1]
    ran = nbformat.read(out / "01-reads.ipynb", as_version=4)
    assert ran.cells[0].outputs[0].text == "from the notebook's folder\n"
    failed = nbformat.read(out / "02-fails.ipynb", as_version=4)
    assert failed.cells[2].outputs == []  # stopped at the failing cell, written anyway
    assert (out / "02-fails.html").read_text().startswith("<!DOCTYPE html>")


def test_summary_folds_bench_measurements(tmp_path):
    from multiarch_kit.core import runlog

    log = tmp_path / "runlog.jsonl"
    lines = [{"kind": "build", "target": "localhost:5000/app:amd64", "platforms": "linux/amd64",
              "digest": "sha256:" + "a" * 64, "seconds": 1.0}]
    lines += [{"kind": "build", "target": "type=cacheonly", "platforms": p, "digest": "", "seconds": 0.5}
              for p in ("linux/amd64", "linux/arm64", "linux/arm64")]
    log.write_text("".join(__import__("json").dumps(x) + "\n" for x in lines))
    df = notebooks.summary(tmp_path)
    assert list(df.kind) == ["build", "bench"] and df.digest[0] == "sha256:aaaaaaaaaaaa"
    assert df.target[1] == "3 measurements (see the results CSV)" and df.platforms[1] == "linux/amd64,linux/arm64"
    assert df.seconds[1] == 1.5
    assert runlog.read(tmp_path / "absent.jsonl") == []


# --- what is printed is what ran ---------------------------------------------------------------------

# Commands the kit runs to read the engine's state, never on the reader's behalf: they are not printed.
READS = (["docker", "info"], ["docker", "version"], ["docker", "buildx", "version"], ["docker", "buildx", "inspect"],
         ["docker", "context", "inspect"])


def _code_cells(name: str) -> list[str]:
    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    return ["".join(c.source) for c in nb.cells if c.cell_type == "code"]


def test_printed_commands_are_exactly_the_ones_that_ran(lab_status, capsys, monkeypatch):
    """Run notebooks 02 and 03's cells; every `$ ...` line must be the next command that really started."""
    import os
    import subprocess

    from multiarch_kit.core import commands

    ran = []
    real_popen = subprocess.Popen

    def added(env):
        return {k: v for k, v in (env or {}).items() if os.environ.get(k) != v}

    # Every process starts through Popen (subprocess.run too), so this sees each one exactly once.
    class Popen(real_popen):
        def __init__(self, argv, *args, **kwargs):
            ran.append(commands.shell_line(argv, added(kwargs.get("env"))))
            super().__init__(argv, *args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", Popen)
    monkeypatch.chdir(ROOT / "notebooks")
    namespace: dict = {}
    for name in ("02-build-per-platform.ipynb", "03-manifest-list.ipynb"):
        for source in _code_cells(name):
            exec(compile(source, name, "exec"), namespace)
    printed = [line[2:].removesuffix(" &") for line in capsys.readouterr().out.splitlines() if line.startswith("$ ")]
    assert len(printed) >= 12
    # Walk both in order: each printed line must be the next command that ran, and whatever ran in between
    # unprinted must be one of the kit's reads (a read the reader is also shown, `docker buildx inspect` in 02,
    # may run silently too, when the lab is read).
    shown, silent = 0, []
    for line in ran:
        if shown < len(printed) and line == printed[shown]:
            shown += 1
        else:
            silent.append(line)
    assert printed[shown:] == []  # every printed command ran, in the order printed
    assert [line for line in silent if not any(line.split()[:len(r)] == r for r in READS)] == []  # reads only


def _output_text(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        parts.append("".join(out.get("text", "")))
        parts.append("".join(out.get("data", {}).get("text/plain", "")))
    return "".join(parts)


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb")), ids=lambda p: p.stem)
def test_every_notebook_is_short_enough_to_follow(path):
    """Issue 19: a reader follows a notebook to its end: at most 35 cells and 8,000 characters of output."""
    nb = nbformat.read(path, as_version=4)
    chars = sum(len(_output_text(c)) for c in nb.cells if c.cell_type == "code")
    assert len(nb.cells) <= 35, f"{path.name} has {len(nb.cells)} cells"
    assert chars <= 8000, f"{path.name} prints {chars} characters of output"


def _only_asserts(cell) -> bool:
    """A code cell that shows nothing: every statement an assert, and no output."""
    import ast

    if cell.cell_type != "code" or cell.get("outputs"):
        return False
    body = ast.parse(cell.source).body
    return bool(body) and all(isinstance(n, ast.Assert) for n in body)


def test_at_most_eight_cells_only_assert():
    """Issue 28: a check belongs in the cell that shows what it checks (or in tests/); a cell of asserts alone is
    a blank step to the reader."""
    found = [f"{path.stem}[{i}]" for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))
             for i, cell in enumerate(nbformat.read(path, as_version=4).cells) if _only_asserts(cell)]
    assert len(found) <= 8, found


def test_each_lesson_says_what_a_mac_shows_in_words_from_the_recorded_desktop_output():
    """One "On a Mac you will see" note per notebook, never typed from memory: every quoted span in it is a
    recorded Docker Desktop file it cites (tests/data/desktop/), or words found in one of those files."""
    import re

    desktop = ROOT / "tests" / "data" / "desktop"
    for path in notebooks.numbered(ROOT / "notebooks"):
        cells = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown"]
        notes = [s[s.index("**On a Mac you will see.**"):] for s in cells if "**On a Mac you will see.**" in s]
        assert len(notes) == 1, path.name
        note = " ".join(notes[0].split("\n\n")[0].split())
        spans = re.findall(r"`([^`]+)`", note)
        cited = [desktop / s for s in spans if s.endswith((".txt", ".json"))]
        assert cited and all(f.is_file() for f in cited), path.name
        recorded = " ".join(" ".join(f.read_text() for f in cited).split())
        for span in spans:
            if span in {"tests/data/desktop/"} or span.endswith((".txt", ".json")):
                continue
            found = re.search(r"(?<![\w/.-])" + re.escape(span) + r"(?![\w/.-])", recorded)
            assert found, f"{path.name}: {span!r} is in none of {[f.name for f in cited]}"
