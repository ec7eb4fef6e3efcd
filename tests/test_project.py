"""The project's own files agree with each other."""

import re

from conftest import ROOT


def test_ci_runs_exactly_the_readme_test_command():
    run = (ROOT / ".ci" / "run").read_text()
    commands = [line for line in run.splitlines() if line.strip() and not line.startswith(("#", "set ", "cd "))]
    assert commands == ["make test"]
    assert "make test" in (ROOT / "README.md").read_text()


def _layers() -> list[list[str]]:
    """The module table of ARCHITECTURE.md: one list of modules per layer, in order."""
    text = (ROOT / "ARCHITECTURE.md").read_text()
    rows = re.findall(r"^\| \d+ [^|]+\| ([a-z_, ]+) \|", text, re.M)
    return [[m.strip() for m in row.split(",")] for row in rows]


def test_architecture_table_lists_every_module_once():
    listed = [m for layer in _layers() for m in layer]
    modules = sorted(p.stem for p in (ROOT / "multiarch_kit").glob("*.py") if p.stem != "__init__")
    assert sorted(listed) == modules


def test_every_import_goes_down_the_layers():
    """A module imports only modules listed before it in ARCHITECTURE.md's table (imports in functions too)."""
    import ast

    order = [m for layer in _layers() for m in layer]
    rank = {m: i for i, m in enumerate(order)}
    wrong = []
    for path in (ROOT / "multiarch_kit").glob("*.py"):
        if path.stem == "__init__":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                targets = [a.name for a in node.names] if node.module is None else [node.module.split(".")[0]]
                for target in targets:
                    if target in rank and rank[target] >= rank[path.stem]:
                        wrong.append(f"{path.stem} imports {target}")
    assert wrong == []
