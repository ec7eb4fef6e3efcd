"""The headless notebook runner behind `make run`."""

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

from multiarch_kit import notebooks


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
