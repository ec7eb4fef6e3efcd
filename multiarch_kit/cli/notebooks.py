"""Run the numbered notebooks headless, as `make run` does, into a results directory.

Each notebook runs in its own folder (so its relative paths work as in JupyterLab) and is written to
``results/`` twice: executed ``.ipynb`` and ``.html``. A failing notebook is still written, up to the
failing cell, and the run goes on to the next one; the summary says which failed.
"""

from __future__ import annotations

import re
import tempfile
import time
from pathlib import Path

import nbformat
import pandas as pd
from jupyter_client import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbconvert import HTMLExporter

from ..core import runlog, settings
from ..core.errors import KitError


def numbered(src: Path) -> list[Path]:
    """The notebooks to run, in order: ``NN-name.ipynb``."""
    return sorted(p for p in Path(src).glob("[0-9][0-9]-*.ipynb"))


def execute(path: Path, out_dir: Path, timeout: int = 3600, env: dict[str, str] | None = None) -> dict:
    """Execute one notebook into ``out_dir`` (its kernel with ``env`` added to this environment); returns a summary
    row."""
    nb = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory(prefix="multiarch-kit-kernel-") as sockets:
        # The kernel talks to this process over Unix sockets in a private folder, not over TCP on loopback
        # (which the kernel rightly warns is unencrypted).
        km = KernelManager(kernel_name="python3", transport="ipc", ip=str(Path(sockets) / "kernel"))
        client = NotebookClient(nb, km=km, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(path.parent)}})
        try:
            return _run(client, nb, path, out_dir, settings.child_env(env))
        finally:
            if km.has_kernel:  # a kernel manager handed in is not shut down by nbclient
                km.shutdown_kernel()


def _run(client: NotebookClient, nb, path: Path, out_dir: Path, env: dict[str, str] | None) -> dict:
    start, error = time.perf_counter(), ""
    try:
        client.execute(**({"env": env} if env else {}))
    except CellExecutionError as exc:
        plain = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))  # IPython colours its tracebacks
        lines = [line for line in plain.strip().splitlines() if line.strip()]
        error = lines[-1] if lines else "a cell failed"
    seconds = time.perf_counter() - start
    nbformat.write(nb, out_dir / path.name)
    html, _ = HTMLExporter().from_notebook_node(nb)
    (out_dir / path.with_suffix(".html").name).write_text(html)
    return {"notebook": path.name, "status": "failed" if error else "ok", "seconds": round(seconds, 1), "error": error}


def execute_all(src: Path, out_dir: Path) -> pd.DataFrame:
    """Execute every numbered notebook in ``src`` into ``out_dir`` and return one row per notebook."""
    books = numbered(src)
    if not books:
        raise KitError(f"no numbered notebooks (NN-name.ipynb) in {src}", "run from the repository's root")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise KitError(f"cannot create {out_dir} ({exc.strerror})", "choose a writable --out directory") from None
    log = out_dir / "runlog.jsonl"
    log.unlink(missing_ok=True)
    rows = []
    for path in books:  # each kernel is told where builds and pushes record themselves
        print(f"running {path.name} ...", flush=True)
        rows.append(execute(path, out_dir, env={settings.ENV_RUNLOG: str(log.resolve())}))
    return pd.DataFrame(rows)


def summary(out_dir: Path) -> pd.DataFrame:
    """What the notebooks built and pushed during the last run: kind, target, platforms, digest, seconds."""
    events = runlog.read(Path(out_dir) / "runlog.jsonl")
    df = pd.DataFrame(events, columns=["kind", "target", "platforms", "digest", "seconds"])
    df["digest"] = df["digest"].fillna("").str.slice(0, 19)
    df["platforms"] = df["platforms"].fillna("")
    # Bench measurements (builds that export nothing) have their own results file: one line for all of them.
    bench = df.target == "type=cacheonly"
    if bench.any():
        folded = {"kind": "bench", "target": f"{int(bench.sum())} measurements (see the results CSV)",
                  "platforms": ",".join(sorted(set(",".join(df.platforms[bench]).split(",")))), "digest": "",
                  "seconds": round(float(df.seconds[bench].sum()), 2)}
        df = pd.concat([df[~bench], pd.DataFrame([folded])], ignore_index=True)
    return df
