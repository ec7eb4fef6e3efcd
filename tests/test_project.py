"""The project's own files agree with each other."""

import ast
import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT


def test_ci_runs_the_readme_test_command_then_the_rehearsals():
    run = (ROOT / ".ci" / "run").read_text()
    commands = [line for line in run.splitlines() if line.strip() and not line.startswith(("#", "set ", "cd "))]
    assert commands == ["make test", "make test-desktop", "make test-arm64-trimmed"]
    readme = (ROOT / "README.md").read_text()
    assert "make test " in readme and "make test-desktop" in readme and "make test-arm64" in readme
    assert re.search(r"^test-desktop: lab\n\t\$\(PY\) scripts/rehearse_desktop\.py$", (ROOT / "Makefile").read_text(), re.M)


def _layers() -> list[list[str]]:
    """The module table of ARCHITECTURE.md: one list of modules per layer, in order."""
    text = (ROOT / "ARCHITECTURE.md").read_text()
    rows = re.findall(r"^\| \d+ [^|]+\| ([a-z_, ]+) \|", text, re.M)
    return [[m.strip() for m in row.split(",")] for row in rows]


def test_architecture_table_lists_every_module_once():
    listed = [m for layer in _layers() for m in layer]
    modules = sorted(p.stem for p in (ROOT / "multiarch_kit").glob("*.py") if p.stem != "__init__")
    assert sorted(listed) == modules


def upward_imports(package: Path, layers: list[list[str]]) -> list[str]:
    """Every import in ``package`` of a module not listed before the importer in ``layers``, one line each.

    Reads every spelling of an import of the package's own modules, at module level or inside a function:
    ``import pkg.x``, ``import pkg.x as y``, ``from pkg import x``, ``from pkg.x import y``, ``from . import x``
    and ``from .x import y``.
    """
    order = [m for layer in layers for m in layer]
    rank = {m: i for i, m in enumerate(order)}
    name = package.name
    wrong = []
    for path in sorted(package.glob("*.py")):
        if path.stem == "__init__":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                parts = [a.name.split(".") for a in node.names]
                targets = [p[1] for p in parts if p[0] == name and len(p) > 1]
            elif isinstance(node, ast.ImportFrom):
                module = (node.module or "").split(".")
                if node.level == 0 and module[0] != name:
                    continue
                inside = module[1:] if node.level == 0 else [m for m in module if m]
                # `from pkg import x` and `from . import x` name modules; `from pkg.x import y` names x's contents.
                targets = [inside[0]] if inside else [a.name for a in node.names]
            else:
                continue
            wrong += [f"{path.name}:{node.lineno} imports {t}: {ast.unparse(node)}"
                      for t in targets if t in rank and (path.stem not in rank or rank[t] >= rank[path.stem])]
    return wrong


def test_every_import_goes_down_the_layers():
    """A module imports only modules listed before it in ARCHITECTURE.md's table (imports in functions too)."""
    assert upward_imports(ROOT / "multiarch_kit", _layers()) == []


# Every way to spell an import of the package's own top module; `{}` is the top module's name.
IMPORT_FORMS = [
    "import multiarch_kit.{}",
    "import multiarch_kit.{} as planted",
    "from multiarch_kit import {}",
    "from multiarch_kit import __version__, {}",
    "from multiarch_kit.{} import main",
    "from . import {}",
    "from .{} import main",
    "def planted():\n    from multiarch_kit import {}\n",
    "def planted():\n    import multiarch_kit.{}\n",
]


@pytest.mark.parametrize("form", IMPORT_FORMS)
def test_the_layer_check_sees_every_import_form(tmp_path, form):
    """Plant an upward import in a copy of the package, in each spelling: the same check names it."""
    layers = _layers()
    bottom, top = layers[0][0], layers[-1][-1]
    copy = tmp_path / "multiarch_kit"
    shutil.copytree(ROOT / "multiarch_kit", copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert upward_imports(copy, layers) == []  # the copy is clean before the plant
    planted = copy / f"{bottom}.py"
    lines = planted.read_text().count("\n")
    planted.write_text(planted.read_text() + "\n" + form.format(top) + "\n")
    wrong = upward_imports(copy, layers)
    assert len(wrong) == 1 and wrong[0].startswith(f"{bottom}.py:{lines + 2 + form.startswith('def')} imports {top}: ")


def test_lab_and_cli_import_without_pandas_or_matplotlib():
    """ARCHITECTURE.md's promise that `lab up` starts fast: the lab and the CLI load no table or plot library."""
    probe = ("import sys, multiarch_kit.lab, multiarch_kit.cli\n"
             "print(sorted(m for m in ('pandas', 'matplotlib', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def _mutants():
    spec = importlib.util.spec_from_file_location("mutants", ROOT / "scripts" / "mutants.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["mutants"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_a_cli_case_fails_when_its_check_is_removed():
    """One of `make mutants`' mutants, here in the suite: without parse_list's duplicate check, its case fails."""
    mutants = _mutants()
    (twice,) = [m for m in mutants.MUTANTS if m.name == "a platform given twice"]
    killed, why = mutants.try_mutant(twice)
    assert killed, why


def test_a_mutant_whose_check_is_gone_stops_the_run():
    mutants = _mutants()
    with pytest.raises(mutants.NotFound, match="must match exactly one line of multiarch_kit, not no line"):
        mutants.locate(ROOT / "multiarch_kit", r"if no_such_check:")
    with pytest.raises(mutants.NotFound, match="not multiarch_kit/"):  # found twice is as wrong as never
        mutants.locate(ROOT / "multiarch_kit", r"if not \w+:")


def test_the_readme_quotes_the_reference_run_as_the_package_computes_it():
    """Every slowdown with bounds in the README is a sentence `stats.in_brief` prints from results/reference/."""
    from multiarch_kit import stats, store

    readme = " ".join((ROOT / "README.md").read_text().split())
    brief = stats.in_brief(store.load_results(ROOT / store.REFERENCE))
    quoted = [s for s in brief if s in readme]
    assert [s.split(":")[0] for s in quoted] == ["On vm-a637dd for linux/arm64"]
    rest = readme
    for sentence in quoted:
        rest = rest.replace(sentence, "")
    # what is left quotes no interval, range or +- of its own: those would be typed, free to drift
    assert re.findall(r"\(\s*(?:range )?\d+\.\d+x? to \d+\.\d+x?\s*[):]|(?:\+-|±) ?\d", rest) == []
