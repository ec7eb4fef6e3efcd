"""Shared fixtures.

Tests that need the Docker engine use ``lab_status`` (or a fixture built on it): such tests get the
``engine`` marker automatically, so ``pytest -m "not engine"`` is the fast tier that runs with the engine
stopped. Without an engine they are skipped on a laptop, but under CI=true a missing engine fails them
(CI must bring the lab up, never hide its absence).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import hypothesis
import pytest

ROOT = Path(__file__).resolve().parents[1]

# Notebooks 05/06 measure and plot into $MULTIARCH_KIT_RESULTS: under test that is a scratch folder, so a
# test run never adds rows to the measurements committed in results/. Kernels started by nbval inherit it.
os.environ.setdefault("MULTIARCH_KIT_RESULTS", tempfile.mkdtemp(prefix="multiarch-kit-results-"))
DATA = Path(__file__).resolve().parent / "data"

# Property tests: `make test` and CI run the same examples every time (a fixed seed, no example database), so a
# run cannot go red on an example another run never drew; `make fuzz` (HYPOTHESIS_PROFILE=fuzz) explores with more
# examples and a fresh seed each time, and what it finds is kept as an @example once it is understood.
hypothesis.settings.register_profile("ci", max_examples=400, derandomize=True, database=None, deadline=None)
hypothesis.settings.register_profile("fuzz", max_examples=5000, derandomize=False, deadline=None)
hypothesis.settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
IN_CI = os.environ.get("CI") == "true"


def require(condition: bool, why: str) -> None:
    """Skip when ``condition`` is false, except under CI=true where it is a failure."""
    if not condition:
        if IN_CI:
            pytest.fail(f"CI=true but {why}")
        pytest.skip(why)


@pytest.fixture(scope="session")
def lab_status():
    """The lab, brought up once per session (fast when `make test` already did it)."""
    from multiarch_kit import engine, lab

    require(shutil.which("docker") is not None and engine.answers(),
            "no Docker engine answers (run `make test`, which brings the lab up)")
    return lab.up(check_runs=False)


@pytest.fixture(scope="session")
def lab_config():
    from multiarch_kit import lab

    return lab.LabConfig.from_env()


@pytest.fixture(scope="module")
def classic_node(lab_status, lab_config):
    """A second, real dockerd with the classic image store, started the lab's way (as notebook 08 does); its
    Docker context's name. Module-scoped: each module that needs it starts and stops it."""
    from multiarch_kit.lab import extra_engines as engines

    ok, why = engines.can_start()
    require(ok, why)
    n = engines.node(lab_config.lab_dir, 2, classic=True)
    engines.start(n, echo=False)
    yield n.name
    engines.stop(n, echo=False)


def kit_cli(*args: str, env: dict[str, str] | None = None, prefix: list[str] | None = None, timeout: float = 300):
    """Run the installed ``multiarch-kit`` command as a reader would, returning the CompletedProcess."""
    exe = shutil.which("multiarch-kit", path=str(Path(sys.executable).parent)) or "multiarch-kit"
    return subprocess.run(
        (prefix or []) + [exe, *args], capture_output=True, text=True, env={**os.environ, **(env or {})},
        timeout=timeout,
    )


# --- nbval: say how much of the notebooks' output is really compared ----------------------------------

_IGNORE_MARKS = ("nbval-ignore-output", "nbval-skip")
_notebook_cells = {"checked": 0, "ignored": 0}


def _ignored(cell) -> bool:
    tags = cell.get("metadata", {}).get("tags", [])
    first = "".join(cell.get("source", "")).lstrip().splitlines()[:1]
    return any(t in tags for t in _IGNORE_MARKS) or first in (["# NBVAL_IGNORE_OUTPUT"], ["# NBVAL_SKIP"])


ENGINE_FIXTURES = {"lab_status"}


def pytest_collection_modifyitems(session, config, items):
    for item in items:
        cell = getattr(item, "cell", None)
        if cell is not None or ENGINE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.engine)  # notebook cells run against the lab too
        if cell is None or not cell.get("outputs"):
            continue
        _notebook_cells["ignored" if _ignored(cell) else "checked"] += 1


def pytest_terminal_summary(terminalreporter):
    n = _notebook_cells
    if n["checked"] or n["ignored"]:
        terminalreporter.write_line(
            f"notebook cells with output: {n['checked']} checked by nbval, {n['ignored']} ignored (host- or time-dependent)"
        )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_line_error(proc) -> str:
    """The CLI failed the way the kit promises: exit 2 and one line on stderr, no traceback."""
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("multiarch-kit: error: ") and "Traceback" not in proc.stderr
    return lines[0]


@contextlib.contextmanager
def loopback_registry(folder: Path, *, auth: bool = False):
    """A distribution registry of the test's own on 127.0.0.1 (``localhost:PORT``), stopped afterwards.

    With ``auth`` it wants credentials (htpasswd), which the kit never sends.
    """
    import time

    import requests

    require(bool(shutil.which("docker-registry")), "needs Debian's docker-registry")
    port = free_port()
    config = f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {folder / 'registry-data'}\n"
    if auth:
        # Never checked: the kit sends no credentials, so any well-formed bcrypt entry will do.
        (folder / "htpasswd").write_text("someone:$2y$05$" + "a" * 53 + "\n")
        config += f"auth:\n  htpasswd:\n    realm: kit-test\n    path: {folder / 'htpasswd'}\n"
    (folder / "registry.yml").write_text(config + f"http:\n  addr: 127.0.0.1:{port}\n")
    proc = subprocess.Popen(["docker-registry", "serve", str(folder / "registry.yml")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                requests.get(f"http://127.0.0.1:{port}/v2/", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        yield f"localhost:{port}"
    finally:
        proc.terminate()
        proc.wait()


@pytest.fixture
def private_registry(tmp_path):
    """A registry on loopback that answers 401 to the kit: ``localhost:PORT``."""
    with loopback_registry(tmp_path, auth=True) as address:
        yield address


def result_row(**over) -> dict:
    """One row of a results CSV (host h1, the cpu workload, native, 1 s), with ``over`` changed."""
    from multiarch_kit.bench import store

    row = {c: "" for c in store.COLUMNS}
    row.update(run_id="r1", host_id="h1", workload="cpu", strategy="native", platform="linux/amd64", size=8,
               size_unit="MB", repeat=0, wall_s=1.0, run_s=0.5, cpus=2)
    row.update(over)
    return row
