"""Shared fixtures.

Tests that need the Docker engine use ``lab_status``: without an engine they are skipped on a laptop,
but under CI=true a missing engine fails them (CI must bring the lab up, never hide its absence).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import docker
import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
IN_CI = os.environ.get("CI") == "true"


def require(condition: bool, why: str) -> None:
    """Skip when ``condition`` is false, except under CI=true where it is a failure."""
    if not condition:
        if IN_CI:
            pytest.fail(f"CI=true but {why}")
        pytest.skip(why)


def _engine_answers() -> bool:
    try:
        docker.from_env(timeout=10).ping()
        return True
    except docker.errors.DockerException:
        return False


@pytest.fixture(scope="session")
def lab_status():
    """The lab, brought up once per session (fast when `make test` already did it)."""
    require(_engine_answers(), "no Docker engine answers (run `make test`, which brings the lab up)")
    from multiarch_kit import lab

    return lab.up(check_runs=False)


@pytest.fixture(scope="session")
def lab_config():
    from multiarch_kit import lab

    return lab.LabConfig.from_env()


def kit_cli(*args: str, env: dict[str, str] | None = None, prefix: list[str] | None = None, timeout: float = 300):
    """Run the installed ``multiarch-kit`` command as a reader would, returning the CompletedProcess."""
    exe = shutil.which("multiarch-kit", path=str(Path(sys.executable).parent)) or "multiarch-kit"
    return subprocess.run(
        (prefix or []) + [exe, *args], capture_output=True, text=True, env={**os.environ, **(env or {})},
        timeout=timeout,
    )
