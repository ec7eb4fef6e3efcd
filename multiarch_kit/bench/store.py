"""The bench's results on disk: one CSV per host, its schema, and the folder they live in.

Each measurement is one tidy row, with the host's fingerprint, appended at once to ``<results>/<host-id>.csv``
by writing a new file and renaming it over the old one: a killed run leaves the previous file intact and
nothing is ever overwritten. Where rows go: ``multiarch-kit bench`` writes the committed reference results
(``results/reference/``); notebooks write to ``results/local/``, which git ignores. ``load_results`` merges
every host's file.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pandas as pd

from ..core import files, settings
from ..engine import Kind
from ..core.errors import KitError
from ..core.settings import ENV_RESULTS, Settings

# Relative to the current folder (a clone's top, where make runs), never to the package, which may be installed
# read-only in site-packages; the notebooks, one folder down, put ".." before them.
REFERENCE = Path("results") / "reference"  # committed: written only by an explicit `multiarch-kit bench`
LOCAL = Path("results") / "local"  # git ignores it: notebooks and experiments
SCHEMA_VERSION = 4
# name, type, unit, meaning: the columns of every <host-id>.csv, in order.
SCHEMA = [
    ("run_id", "str", "", "one bench run (a plan)"),
    ("timestamp", "str", "ISO 8601 UTC", "when the measurement finished"),
    ("host_id", "str", "", "the machine: unique per machine, the same on every run there"),
    ("host_os", "str", "", "the host's operating system (Linux distribution or macOS)"),
    ("host_os_version", "str", "", "its version"),
    ("cpu_model", "str", "", "the host CPU"),
    ("cpus", "int", "", "logical CPUs the host has"),
    ("engine_platform", "str", "", "the Docker engine's platform (linux/arm64 on an M2 with Docker Desktop)"),
    ("docker_version", "str", "", "Docker engine version"),
    ("buildx_version", "str", "", "buildx version"),
    ("builder", "str", "", "buildx builder name"),
    ("driver", "str", "", "its driver (docker, docker-container, remote...)"),
    ("node", "str", "", "the builder node, or the engine (docker context), that built this platform"),
    ("kit_version", "str", "", "multiarch-kit version"),
    ("workload", "str", "", "cpu, c, go or article"),
    ("strategy", "str", "", "native, emulated or cross"),
    ("platform", "str", "", "target platform"),
    ("emulator", "str", "", "how the builder runs the target's RUN steps: native, qemu, rosetta, emulated"),
    ("size", "int", "", "the workload's size knob (0 when it has none)"),
    ("size_unit", "str", "", "what the size counts: MB, files, packages"),
    ("repeat", "int", "", "repeat number within the run, from 0"),
    ("wall_s", "float", "s", "wall time of the whole docker buildx build command"),
    ("run_s", "float", "s", "the measured RUN steps' own time, from --progress=rawjson"),
    ("engine_kind", "str", "", "what the engine was, read with it: this machine's engine, a lab engine beside it, the "
                               "lab's arm64 VM, Docker Desktop, another machine's engine"),
    ("containerd_version", "str", "", "the engine's containerd version (1.7 or 2.x: two generations of Docker)"),
    ("docker_cli_version", "str", "", "the docker CLI's own version, which may differ from the engine's"),
]
COLUMNS = [c[0] for c in SCHEMA]
# Older files are read (and appended to) as schema 4. Schema 3 had no containerd or CLI version (left empty: they
# were not measured); schema 2 had no engine_kind either, derived once, here.
V3_COLUMNS = COLUMNS[:-2]
V2_COLUMNS = V3_COLUMNS[:-1]
OLDER = {tuple(V2_COLUMNS): 2, tuple(V3_COLUMNS): 3}
ARM64_VM_HOST_OS = "arm64 VM under qemu-system-aarch64"  # what schema 2 wrote into host_os for the arm64 VM
KIND_OF_V2 = {"vm": Kind.ARM64_VM.value, "mac": Kind.DESKTOP.value, "other": Kind.LOCAL.value}


def results_dir(default: Path = REFERENCE, given: Settings | None = None) -> Path:
    """The results folder: ``$MULTIARCH_KIT_RESULTS`` when set (the test suite uses a scratch one), else ``default``.

    ``given`` are the settings the edge read; without them (a notebook's call is its own edge) they are read here."""
    return (given or settings.read()).results_dir or Path(default)


def prepare(folder: Path) -> None:
    """Create the results folder and its schema file (``schema.json``), or say why it cannot be written."""
    schema = {"version": SCHEMA_VERSION, "file": "<host-id>.csv, one row per measurement",
              "columns": [{"name": n, "type": t, "unit": u, "description": d} for n, t, u, d in SCHEMA]}
    path = Path(folder) / "schema.json"
    try:
        if not path.exists() or json.loads(path.read_text()) != schema:
            files.write_json(path, schema)
    except (OSError, ValueError) as exc:
        raise write_error(path, exc) from None


def write_error(path: Path, exc: Exception) -> KitError:
    """The one-line error for a file of the results folder (a CSV's schema, a plan) that cannot be written."""
    return KitError(f"cannot write {path} ({getattr(exc, 'strerror', None) or exc})",
                    f"free disk space or choose a writable folder with {ENV_RESULTS}=DIR or --results DIR; "
                    "files already there are intact")


def append_rows(path: Path, rows: list[dict]) -> None:
    """Append ``rows`` to a results CSV atomically: the old file stays whole until the new one replaces it."""
    path = Path(path)
    old = path.read_bytes() if path.exists() else b""
    if old and tuple(old.split(b"\n", 1)[0].decode(errors="replace").strip().split(",")) in OLDER:
        upgraded = io.StringIO()  # an older file: written whole as schema 4 with the new rows, atomically below
        read_rows(path).to_csv(upgraded, index=False, lineterminator="\n")
        old = upgraded.getvalue().encode()
    if old:
        header = old.split(b"\n", 1)[0].decode(errors="replace").strip().split(",")
        if header != COLUMNS:
            raise KitError(f"{path} has other columns than this kit writes (schema version {SCHEMA_VERSION})",
                           "move that file aside, or write to another folder with --results DIR")
        if not old.endswith(b"\n"):
            old += b"\n"
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n", extrasaction="raise")
    if not old:
        writer.writeheader()
    writer.writerows(rows)
    try:
        files.write_atomically(path, old + buf.getvalue().encode())
    except OSError as exc:
        unsaved = buf.getvalue()
        raise KitError(f"cannot write {path} ({exc.strerror or exc}); the previous file is intact; unsaved rows: "
                       f"{unsaved.strip()!r}", "free disk space or use --results DIR, then --resume") from None


def read_rows(path: Path) -> pd.DataFrame:
    """One host's rows (empty when the file does not exist); a damaged file is a KitError naming it."""
    if not Path(path).exists():
        return pd.DataFrame(columns=COLUMNS)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise KitError(f"{path} is not a readable results CSV ({exc})", "move that file aside") from None
    if list(df.columns) == V2_COLUMNS:
        df["engine_kind"] = [KIND_OF_V2["vm" if ARM64_VM_HOST_OS in h else "mac" if h == "macOS" else "other"]
                             for h in df.host_os]
    if list(df.columns) == V3_COLUMNS:
        df["containerd_version"] = ""
        df["docker_cli_version"] = ""
    if list(df.columns) != COLUMNS:
        raise KitError(f"{path} has other columns than this kit writes (schema version {SCHEMA_VERSION})",
                       "move that file aside")
    for col, kind, _, _ in SCHEMA:
        if kind == "str":
            continue
        converted = pd.to_numeric(df[col], errors="coerce")
        if converted.isna().any():
            line = int(converted.isna().idxmax()) + 2
            raise KitError(f"{path} line {line}: {col} is not a number ({df[col].iloc[line - 2]!r})",
                           "fix or remove that line; every other row is kept")
        df[col] = converted.astype(int if kind == "int" else float)
    return df


def load_results(*folders: Path) -> pd.DataFrame:
    """Every host's rows from ``folders`` merged into one DataFrame (files that do not fit are skipped, with a note)."""
    frames = []
    for folder in folders or (results_dir(),):
        for path in sorted(Path(folder).glob("*.csv")):
            try:
                frames.append(read_rows(path))
            except KitError as exc:
                print(f"skipped {path.name}: {exc.message}")
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    return pd.concat(frames, ignore_index=True)
