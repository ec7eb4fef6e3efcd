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


def test_ci_runs_the_fast_tier_without_an_engine_then_the_readme_test_command_then_the_rehearsals():
    run = (ROOT / ".ci" / "run").read_text()
    commands = [line.removeprefix("step ") for line in run.splitlines() if line.startswith("step ")]
    assert commands == ["env DOCKER_HOST=unix:///nonexistent make test-fast", "make test", "make test-desktop",
                        "make test-arm64-trimmed"]
    readme = (ROOT / "README.md").read_text()
    assert "make test " in readme and "make test-desktop" in readme and "make test-arm64" in readme
    assert re.search(r"^test-desktop: lab\n\t\$\(PY\) scripts/rehearse_desktop\.py$", (ROOT / "Makefile").read_text(), re.M)


# --- the rooms and their imports, measured --------------------------------------------------------------

MAX_ROOMS, MAX_DEPTH = 10, 8


def _table() -> list[tuple[str, list[str]]]:
    """ARCHITECTURE.md's table of rooms: (room, its modules in order), bottom room first."""
    text = (ROOT / "ARCHITECTURE.md").read_text()
    rows = re.findall(r"^\| \d+ `([a-z_]+)` \| ([a-z_, ]+) \|", text, re.M)
    return [(room, [m.strip() for m in modules.split(",")]) for room, modules in rows]


def _modules(package: Path) -> dict[tuple[str, ...], Path]:
    """Every module of ``package`` by its dotted path inside it (a package's face is its own path)."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package).with_suffix("").parts
        found[parts[:-1] if parts[-1] == "__init__" else parts] = path
    return found


def _imports(package: Path) -> dict[tuple[str, ...], list[tuple[tuple[str, ...], int, str]]]:
    """For each module, the package's modules it imports: (module, line, statement), in every spelling
    (``import pkg.x``, ``from pkg import x``, ``from pkg.x import y``, relative, inside functions too)."""
    modules = _modules(package)
    name = package.name
    found: dict = {}
    for here, path in modules.items():
        is_face = path.name == "__init__.py"
        base = here if is_face else here[:-1]
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [tuple(a.name.split(".")[1:]) for a in node.names if a.name.split(".")[0] == name]
            elif isinstance(node, ast.ImportFrom):
                mod = [m for m in (node.module or "").split(".") if m]
                if node.level == 0:
                    if not mod or mod[0] != name:
                        continue
                    start = tuple(mod[1:])
                else:
                    start = base[: len(base) - (node.level - 1)] + tuple(mod)
                for a in node.names:  # `from x import y` names the module x.y when there is one, else x
                    targets.append(start + (a.name,) if start + (a.name,) in modules else start)
            for t in targets:
                if t in modules and t != here:
                    found.setdefault(here, []).append((t, node.lineno, ast.unparse(node)))
    return found


def _room(module: tuple[str, ...]) -> str:
    return module[0] if module else "__init__"


def wrong_imports(package: Path, table: list[tuple[str, list[str]]]) -> list[str]:
    """Every import that goes up: to a later room of the table, or within a room to a module listed after the
    importer (a room's face, its ``__init__``, may import its own modules)."""
    rank = {room: i for i, (room, _) in enumerate(table)}
    order = {(room,) + (m,): i for room, mods in table for i, m in enumerate(mods)}
    wrong = []
    for here, imported in _imports(package).items():
        for there, line, text in imported:
            a, b = _room(here), _room(there)
            if b == "__init__":  # the package's face: its version and error types, which sit on core alone
                continue
            if a == "__init__":
                ok = b == "core"
            elif a != b:
                ok = rank.get(b, 99) < rank.get(a, -1)
            else:
                ok = len(here) == 1 or (here[:2] in order and there[:2] in order and order[there[:2]] < order[here[:2]])
            if not ok:
                wrong.append(f"{'/'.join(here)}:{line} imports {'.'.join(there)}: {text}")
    return wrong


def test_the_rooms_are_few_and_the_table_lists_each_module_once():
    table = _table()
    package = ROOT / "multiarch_kit"
    rooms = sorted(p.stem if p.is_file() else p.name for p in package.iterdir()
                   if (p.suffix == ".py" and p.stem != "__init__") or (p.is_dir() and (p / "__init__.py").exists()))
    assert sorted(room for room, _ in table) == rooms and len(rooms) <= MAX_ROOMS
    for room, modules in table:
        on_disk = sorted(p.stem for p in (package / room).glob("*.py") if p.stem != "__init__") \
            if (package / room).is_dir() else []
        assert sorted(modules) == on_disk if on_disk else modules == [room]


def test_every_import_goes_down_and_the_rooms_are_at_most_eight_floors_deep():
    package = ROOT / "multiarch_kit"
    assert wrong_imports(package, _table()) == []
    edges: dict[str, set[str]] = {}
    for here, imported in _imports(package).items():
        for there, _, _ in imported:
            if _room(here) != _room(there) and "__init__" not in (_room(here), _room(there)):
                edges.setdefault(_room(here), set()).add(_room(there))

    def floors(room: str, seen=()) -> int:
        assert room not in seen, f"a cycle through {room}"
        return 1 + max((floors(r, seen + (room,)) for r in edges.get(room, ())), default=0)

    assert max(floors(room) for room, _ in _table()) <= MAX_DEPTH


# Every way to spell an import of the package's own top room; `{}` is its name.
IMPORT_FORMS = [
    "import multiarch_kit.{}",
    "import multiarch_kit.{} as planted",
    "from multiarch_kit import {}",
    "from multiarch_kit import __version__, {}",
    "from multiarch_kit.{} import main",
    "from .. import {}",
    "from ..{} import main",
    "def planted():\n    from multiarch_kit import {}\n",
    "def planted():\n    import multiarch_kit.{}\n",
]


@pytest.mark.parametrize("form", IMPORT_FORMS)
def test_the_layer_check_sees_every_import_form(tmp_path, form):
    """Plant an upward import in a copy of the package, in each spelling: the same check names it."""
    table = _table()
    (bottom, (first, *_)), (top, _) = table[0], table[-1]
    copy = tmp_path / "multiarch_kit"
    shutil.copytree(ROOT / "multiarch_kit", copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert wrong_imports(copy, table) == []  # the copy is clean before the plant
    planted = copy / bottom / f"{first}.py"
    lines = planted.read_text().count("\n")
    planted.write_text(planted.read_text() + "\n" + form.format(top) + "\n")
    wrong = wrong_imports(copy, table)
    assert len(wrong) == 1 and wrong[0].startswith(f"{bottom}/{first}:{lines + 2 + form.startswith('def')} imports {top}")


def test_no_module_function_or_signature_is_too_long():
    """ARCHITECTURE.md's sizes: a module of at most 400 lines, a function of at most 60, ten parameters at most."""
    long = []
    for path in sorted((ROOT / "multiarch_kit").rglob("*.py")):
        text = path.read_text()
        if text.count("\n") > 400:
            long.append(f"{path.name}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                a = node.args
                params = [*a.posonlyargs, *a.args, *a.kwonlyargs, *filter(None, [a.vararg, a.kwarg])]
                params = [p for p in params if p.arg not in ("self", "cls")]
                if node.end_lineno - node.lineno + 1 > 60 or len(params) > 10:
                    long.append(f"{path.name}:{node.lineno} {node.name}: {node.end_lineno - node.lineno + 1} lines, "
                                f"{len(params)} parameters")
    assert long == []


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
    from multiarch_kit.bench import stats, store

    readme = " ".join((ROOT / "README.md").read_text().split())
    brief = stats.in_brief(store.load_results(ROOT / store.REFERENCE))
    quoted = [s for s in brief if s in readme]
    assert [s.split(":")[0] for s in quoted] == ["On vm-a637dd for linux/arm64"]
    rest = readme
    for sentence in quoted:
        rest = rest.replace(sentence, "")
    # what is left quotes no interval, range or +- of its own: those would be typed, free to drift
    assert re.findall(r"\(\s*(?:range )?\d+\.\d+x? to \d+\.\d+x?\s*[):]|(?:\+-|±) ?\d", rest) == []


# What the README may quote without a record behind it: targets and sizes it sets, and versions. Each entry is the
# words around the figure, so the same number quoted as a measurement elsewhere is still checked.
NOT_MEASURED = (
    "≤ 2 s", "≤ 0.7x", "≤ 1.03x", "≤ 1.15", "95 %", "100 MB layer", "Desktop 4.5x",
)
FIGURE = re.compile(r"(?<![\w.\-])\d+(?:[.,]\d+)*(?: min \d+)? ?(?:ms|s|min|MB|GB|x|%)(?![\w-])")


def _readme_prose() -> str:
    """The README without its code (fenced blocks and backticked spans quote commands and Docker's words)."""
    text = re.sub(r"```.*?```", " ", (ROOT / "README.md").read_text(), flags=re.DOTALL)
    return " ".join(re.sub(r"`[^`]*`", " ", text).split())


def _printed_from_data() -> str:
    """Every text the kit prints from committed data: the reference run's sentences, the Desktop rehearsal's cost
    record as `make bench` prints it, and the notebooks' committed outputs."""
    import json

    import nbformat

    from multiarch_kit.bench import stats, store

    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from rehearsal import cost
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    texts = stats.in_brief(store.load_results(ROOT / store.REFERENCE))
    texts += cost.describe(json.loads((ROOT / "results" / "desktop" / cost.RECORD).read_text()))
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            for out in cell.get("outputs", []):
                texts.append(out.get("text", "") or out.get("data", {}).get("text/plain", ""))
    return " ".join(" ".join(texts).split())


def test_every_figure_the_readme_quotes_is_printed_from_data():
    """Issue 28: a time, size, count or ratio in the README's prose is either a target or size it sets, or words
    that the kit prints from a committed record (so a new run that changes the record makes this fail until the
    README follows)."""
    prose = _readme_prose()
    for words in NOT_MEASURED:
        assert words in prose, f"NOT_MEASURED names {words!r}, which the README no longer says"
        prose = prose.replace(words, " ")
    data = _printed_from_data()
    typed = [f for f in FIGURE.findall(prose) if f not in data]
    assert typed == [], "figures typed into the README, not printed from a record"


def test_the_figure_check_finds_typed_figures():
    assert FIGURE.findall("took 3 min 46 s, then 74 s, 0.68x skopeo, 58 MB, 5 % and 1,068 ms; v0.13.2, 4x4") == [
        "3 min 46 s", "74 s", "0.68x", "58 MB", "5 %", "1,068 ms"]


def test_every_figure_in_the_notebooks_prose_is_printed_from_data():
    """The same for the notebooks' markdown: their figures come from their own outputs. Lines that link the
    public report they quote are left out (05's "what others have published" says whose numbers they are)."""
    import nbformat

    data = _printed_from_data()
    typed = {}
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for i, cell in enumerate(nbformat.read(path, as_version=4).cells):
            if cell.cell_type != "markdown":
                continue
            prose = re.sub(r"`[^`]*`", " ", cell.source)
            blocks = re.split(r"\n\s*\n|\n(?=- )", prose)  # paragraphs and list items
            prose = " ".join(block for block in blocks if "](http" not in block)
            # a confidence level, the test that checks its coverage, and Docker Desktop's versions 4.50 and on
            for words in ("95 %", "at least 93 %", "Desktop 4.5x"):
                prose = prose.replace(words, " ")
            found = [f for f in FIGURE.findall(" ".join(prose.split())) if f not in data]
            if found:
                typed[f"{path.name} cell {i}"] = found
    assert typed == {}
