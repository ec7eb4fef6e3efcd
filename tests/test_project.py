"""The project's own files agree with each other."""

import re
import tomllib

from conftest import ROOT

# conda-forge names that differ from PyPI's.
CONDA_NAME = {"docker": "docker-py"}


def _requirement(spec: str) -> tuple[str, str]:
    name, constraint = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*?)\s*(#.*)?$", spec).group(1, 2)
    return name.lower(), constraint.replace(" ", "")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = dict(_requirement(s) for s in project["dependencies"])
    for extra in project["optional-dependencies"].values():
        wanted.update(_requirement(s) for s in extra)
    wanted = {CONDA_NAME.get(k, k): v for k, v in wanted.items()}

    conda = {}
    text = (ROOT / "environment.yml").read_text()
    for line in text[text.index("dependencies:"):].splitlines():
        m = re.match(r"^\s+- ([A-Za-z0-9_.][^:]*)$", line.split("#")[0].rstrip())
        if m:
            name, constraint = _requirement(m.group(1))
            conda[name] = constraint.replace("=", "==", 1) if re.match(r"^=[^=]", constraint) else constraint
    assert conda.pop("python") == "==3.11"
    conda.pop("pip")
    assert conda == wanted


def test_ci_runs_exactly_the_readme_test_command():
    run = (ROOT / ".ci" / "run").read_text()
    commands = [line for line in run.splitlines() if line.strip() and not line.startswith(("#", "set ", "cd "))]
    assert commands == ["make test"]
    assert "make test" in (ROOT / "README.md").read_text()
