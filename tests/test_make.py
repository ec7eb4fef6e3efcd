"""The Makefile's own checks, run through make itself."""

import os
import shutil
import subprocess

import pytest
from conftest import ROOT

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def test_an_old_python_stops_before_the_venv_with_one_line_saying_how_to_get_3_11(tmp_path):
    # macOS's own python3 is 3.9: a stand-in that answers like it (it fails the version check, as 3.9 does).
    old = tmp_path / "python3.9"
    old.write_text("#!/bin/sh\n[ \"$1\" = -V ] && { echo 'Python 3.9.6'; exit 0; }\nexit 1\n")
    old.chmod(0o755)
    venv = tmp_path / "venv"
    proc = subprocess.run(["make", "-C", str(ROOT), "venv", f"PYTHON={old}", f"VENV={venv}"],
                          capture_output=True, text=True, timeout=60, env={**os.environ, "MAKEFLAGS": ""})
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.startswith("multiarch-kit needs")]
    assert len(lines) == 1, proc.stderr
    assert "Python 3.9.6" in lines[0] and "brew install python@3.12" in lines[0] and "PYTHON=python3.12" in lines[0]
    assert not venv.exists(), "no venv is made with a Python that is too old"

