"""The kit as a package: what it declares, the versions it was tested with, and that an installed copy works.

The wheel test installs the kit (not editable) into a fresh venv in a temporary folder and runs the reader's
first commands from a folder outside the checkout, so nothing can be found by walking up from the sources.
"""

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
import requests
from conftest import ROOT
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

import multiarch_kit
from multiarch_kit import lab
from multiarch_kit.lab import article, workloads
from multiarch_kit.oci import registry
from multiarch_kit.oci.platforms import LAB_PLATFORMS

PACKAGE = ROOT / "multiarch_kit"
CONDA_NAME = {"docker-py": "docker"}  # conda-forge names that differ from PyPI's


def _declared(extras: bool = True) -> dict[str, SpecifierSet]:
    """pyproject's dependencies (and its extras'), by canonical name."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    if extras:
        specs += [s for extra in project["optional-dependencies"].values() for s in extra]
    return {canonicalize_name(r.name): r.specifier for r in map(Requirement, specs)}


def _constraints(python: str | None = None) -> dict[str, str]:
    """The pins that apply to ``python`` (a full version; default: this one), by canonical name."""
    pins = {}
    env = {"python_full_version": python} if python else None
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            req = Requirement(line.split("  #")[0])
            if req.marker is None or req.marker.evaluate(env):
                assert len(req.specifier) == 1 and next(iter(req.specifier)).operator == "==", line
                pins[canonicalize_name(req.name)] = next(iter(req.specifier)).version
    return pins


def test_constraints_give_one_pin_per_package_on_debian_12s_python_too():
    # Debian 12 ships Python 3.11.2: a pin that needs more (soupsieve 3 wants 3.11.5) gets a marked alternative.
    old, new = _constraints("3.11.2"), _constraints("3.12.0")
    assert sorted(old) == sorted(new)
    assert {n: (old[n], new[n]) for n in old if old[n] != new[n]} == {"soupsieve": ("2.10", "4.1.3")}


def _environment() -> dict[str, str]:
    """environment.yml's packages (conda's and pip's), by canonical PyPI name, with their version pins."""
    text = (ROOT / "environment.yml").read_text()
    found = {}
    for line in text[text.index("dependencies:"):].splitlines():
        m = re.match(r"^\s+- ([A-Za-z0-9_.\-]+)(\S*)$", line.split("#")[0].rstrip())
        if m and m.group(1) not in ("python", "pip"):
            found[canonicalize_name(CONDA_NAME.get(m.group(1), m.group(1)))] = m.group(2)
    return found


def test_constraints_pin_every_dependency_within_pyprojects_bounds():
    pins, declared = _constraints(), _declared()
    assert "multiarch-kit" not in pins  # the kit itself is installed from the checkout, never pinned
    assert all("+" not in v for v in pins.values())  # no local-only builds: every pin installs from the index
    missing = sorted(set(declared) - set(pins))
    assert missing == []
    outside = {n: (pins[n], str(s)) for n, s in declared.items() if Version(pins[n]) not in s}
    assert outside == {}


def test_environment_yml_pins_pyprojects_dependencies_to_the_constraints():
    env, pins = _environment(), _constraints()
    assert sorted(env) == sorted(_declared())
    assert {n: c for n, c in env.items() if c != f"=={pins[n]}"} == {}


def test_make_installs_with_the_constraints():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^\$\(VENV\)/\.installed: .*\bconstraints\.txt\b", makefile, re.MULTILINE)
    assert "pip install -q -c constraints.txt -e '.[test,dev]'" in makefile


def _imports(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):  # imports inside functions too
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_every_third_party_import_of_the_package_is_a_declared_dependency():
    imported = set()
    for path in PACKAGE.rglob("*.py"):
        imported |= _imports(ast.parse(path.read_text()))
    third_party = imported - set(sys.stdlib_module_names) - {"multiarch_kit"}
    assert {"dxf", "docker", "nbclient", "pandas"} <= third_party  # the walk found the imports
    dists = metadata.packages_distributions()
    runtime = _declared(extras=False)
    undeclared = {m: dists.get(m) for m in third_party
                  if not any(canonicalize_name(d) in runtime for d in dists.get(m, []))}
    assert undeclared == {}


def test_python_dxf_is_within_the_tested_major_version():
    assert Version(metadata.version("python-dxf")) in _declared()["python-dxf"]
    assert not _declared()["python-dxf"].contains("13.0")


def test_python_dxf_sends_every_request_through_the_session_the_registry_puts_first(monkeypatch):
    """Registry shares a pooled session by putting it first in python-dxf's private ``_sessions`` (there is no
    public way): this fails when python-dxf stops sending its requests through that list's first entry."""

    class Sent(Exception):
        pass

    class Recording(requests.Session):
        def __init__(self):
            super().__init__()
            self.sent = []

        def request(self, method, url, *args, **kwargs):
            self.sent.append((method.upper(), url))
            raise Sent

    host = "localhost:5999"
    recording = Recording()
    monkeypatch.setitem(registry._SESSIONS, host, recording)
    reg = registry.Registry(host, "guard/dxf")
    assert reg._dxf._sessions[0] is recording and reg._dxf._insecure is True  # what _anonymous reads
    with pytest.raises(Sent):
        reg._dxf.head_manifest_and_response("latest")
    with pytest.raises(Sent):
        reg._dxf.get_manifest_and_response("latest")
    assert recording.sent == [("HEAD", f"http://{host}/v2/guard/dxf/manifests/latest"),
                              ("GET", f"http://{host}/v2/guard/dxf/manifests/latest")]


def test_what_the_kit_needs_at_run_time_is_inside_the_package():
    inside = Path(multiarch_kit.__file__).resolve().parent
    needed = [lab.PROVISION_SCRIPT, article.context() / "Dockerfile",
              *(w.context() / "Dockerfile" for w in workloads.WORKLOADS.values())]
    assert [p for p in needed if not (p.is_file() and p.resolve().is_relative_to(inside))] == []


def test_the_package_never_reaches_above_itself():
    """No module names its own file (package data is found with importlib.resources), and every path the package
    computes when it is imported resolves inside it, or is relative to the reader's current folder."""
    import importlib
    import pkgutil

    inside = Path(multiarch_kit.__file__).resolve().parent
    naming_itself = [str(p.relative_to(ROOT)) for p in PACKAGE.rglob("*.py")
                     if any(isinstance(n, ast.Name) and n.id == "__file__" for n in ast.walk(ast.parse(p.read_text())))]
    assert naming_itself == []
    computed = {}
    for info in pkgutil.walk_packages(multiarch_kit.__path__, "multiarch_kit."):
        module = importlib.import_module(info.name)
        computed.update({f"{info.name}.{k}": v for k, v in vars(module).items() if isinstance(v, Path)})
    assert computed  # the walk saw the package's own paths (PROVISION_SCRIPT, the stores' folders...)
    outside = {k: v for k, v in computed.items()
               if v.is_absolute() and not v.resolve().is_relative_to(inside)
               and not v.is_relative_to(Path("/proc")) and not v.is_relative_to(Path("/run"))
               and not v.is_relative_to(Path("/var/run"))}
    assert outside == {}


def test_the_article_dockerfile_in_the_package_is_the_notebooks_copy():
    ours = (article.context() / "Dockerfile").read_bytes()
    assert ours == (ROOT / "notebooks" / article.CONTEXT / "Dockerfile").read_bytes()
    assert ours.startswith(b"FROM alpine:3.18\n")


# --- an installed kit --------------------------------------------------------------------------------------

_RUN_TIME_FILES = """
import json, multiarch_kit
from multiarch_kit.lab import article, lifecycle as lab, workloads
print(json.dumps({"package": multiarch_kit.__file__, "provision": str(lab.PROVISION_SCRIPT),
                  "article": str(article.context() / "Dockerfile"),
                  "workloads": [str(w.context() / "Dockerfile") for w in workloads.WORKLOADS.values()]}))
"""


def _site_packages(venv: Path) -> Path:
    return next(venv.glob("lib/python3*/site-packages"))


def test_a_wheel_installed_outside_the_checkout_runs_doctor_inspect_lab_up_and_a_notebook(lab_status, tmp_path):
    # Built from a copy holding only what a source distribution would, so no stray file can get in.
    src = tmp_path / "src"
    shutil.copytree(PACKAGE, src / "multiarch_kit", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"),
                    str(src)], check=True, capture_output=True, text=True, timeout=300)
    wheel = next((tmp_path / "dist").glob("multiarch_kit-*.whl"))

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    # The dependencies are lent from this test's own environment (the folders on sys.path), so no download is
    # needed; `pip check` then proves the wheel's declared requirements are met there. The checkout is left out:
    # any folder holding a multiarch_kit package, and the clone's own folders (tests/), but not a venv's
    # site-packages that happens to live in the clone (make's .venv does).
    def lendable(folder: Path) -> bool:
        inside = folder.resolve().is_relative_to(ROOT) and "site-packages" not in folder.parts
        return folder.is_dir() and not (folder / "multiarch_kit").exists() and not inside

    lent = [p for p in sys.path if p and lendable(Path(p))]
    (_site_packages(venv) / "lent-dependencies.pth").write_text("\n".join(lent) + "\n")
    python = venv / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "--no-deps", "-q", str(wheel)], check=True, timeout=300)
    checked = subprocess.run([python, "-m", "pip", "check"], capture_output=True, text=True, timeout=120,
                             check=False)
    assert "multiarch-kit" not in checked.stdout, checked.stdout

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["JUPYTER_PATH"] = str(Path(sys.prefix) / "share" / "jupyter")  # lent too: nbconvert's templates

    def kit(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([venv / "bin" / "multiarch-kit", *args], cwd=elsewhere, env=env,
                              capture_output=True, text=True, timeout=600, check=False)

    where = json.loads(subprocess.run([python, "-c", _RUN_TIME_FILES], cwd=elsewhere, env=env, check=True,
                                      capture_output=True, text=True, timeout=60).stdout)
    installed = _site_packages(venv) / "multiarch_kit"
    assert Path(where["package"]).parent == installed  # the wheel's copy, not the checkout's
    for path in [where["provision"], where["article"], *where["workloads"]]:
        assert Path(path).is_file() and Path(path).is_relative_to(installed), path
    assert Path(where["provision"]).read_bytes() == lab.PROVISION_SCRIPT.read_bytes()

    doctor = kit("doctor", "--format", "json")
    rows = {row["check"]: row for row in json.loads(doctor.stdout)}
    assert rows["engine"]["status"] == "pass" and str(lab_status.engine.platform) in rows["engine"]["detail"]
    assert f"API {lab_status.engine.api_version}" in rows["versions"]["detail"]

    inspected = kit("inspect", lab_status.base.ref)
    assert inspected.returncode == 0, inspected.stderr
    listed = re.findall(r"^(linux/\S+)\s+image\s", inspected.stdout, re.MULTILINE)
    assert set(map(str, LAB_PLATFORMS)) <= set(listed)

    up = kit("lab", "up")
    assert up.returncode == 0, up.stderr
    assert "changed: nothing (already up)" in up.stdout
    assert list(elsewhere.iterdir()) == []  # nothing written where the reader stands

    # A notebook run by the installed kit, its kernel importing the installed package.
    shutil.copytree(ROOT / "notebooks", elsewhere / "nb", ignore=shutil.ignore_patterns("0[1-9]-*", "1*-*"))
    ran = kit("notebooks", "--src", "nb", "--out", "out")
    assert ran.returncode == 0, ran.stderr
    executed = json.loads((elsewhere / "out" / "00-lab.ipynb").read_text())
    printed = "".join("".join(o.get("text", "")) for c in executed["cells"] for o in c.get("outputs", []))
    assert f"{lab_status.engine.platform}" in printed and "Traceback" not in printed
