"""Comparing images: do two references hold the same per-platform images and, where they differ, which config
fields, layers and files (:func:`compare`); a rebuild made twice, reproducibly, and compared (:func:`rebuild`); two
references side by side (:func:`diff`: platforms, digests, media types, attestations)."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

import pandas as pd

from .. import buildx
from ..oci import manifests
from ..oci.platforms import Platform
from ..oci.references import open_source


def _listing(stream) -> dict[str, tuple]:
    """path -> (type, size, mode, mtime, sha256 of content) for every entry of a layer tar."""
    out = {}
    with tarfile.open(fileobj=stream, mode="r|*") as tar:
        for m in tar:
            content = ""
            if m.isfile():
                h, f = hashlib.sha256(), tar.extractfile(m)
                while chunk := f.read(1 << 20):
                    h.update(chunk)
                content = h.hexdigest()
            out[m.name.removeprefix("./")] = (m.type, m.size, m.mode, int(m.mtime), content, m.linkname)
    if hasattr(stream, "drain"):
        stream.drain()
    return out


_FIELDS = ("type", "size", "mode", "mtime", "content", "link target")


def compare(ref_a: str, ref_b: str) -> pd.DataFrame:
    """Per platform: same image in both? Where not, every differing config field, layer and file, one row each."""
    src_a, src_b = open_source(ref_a), open_source(ref_b)
    a, b = manifests.follow(src_a, ref_a), manifests.follow(src_b, ref_b)
    by_b = {e.platform: e for e in b.images()}
    rows = []
    for ea in a.images():
        p = str(ea.platform)
        eb = by_b.get(ea.platform)
        if eb is None:
            rows.append({"platform": p, "where": "index", "path": "", "difference": f"only in {ref_a}"})
            continue
        if ea.digest == eb.digest:
            rows.append({"platform": p, "where": "manifest", "path": "", "difference": "same"})
            continue
        before = len(rows)
        ca, cb = _config_fields(ea.config.raw), _config_fields(eb.config.raw)
        for key in sorted(set(ca) | set(cb)):
            if ca.get(key) != cb.get(key):
                rows.append({"platform": p, "where": "config", "path": key, "difference": "differs"})
        for i, (la, lb) in enumerate(zip(ea.manifest.layers, eb.manifest.layers)):
            if la.digest == lb.digest:
                continue
            fa, fb = _listing(src_a.open_blob(la.digest)), _listing(src_b.open_blob(lb.digest))
            for path in sorted(set(fa) | set(fb)):
                if path not in fb or path not in fa:
                    rows.append({"platform": p, "where": f"layer {i}", "path": path,
                                 "difference": f"only in {ref_a if path in fa else ref_b}"})
                elif fa[path] != fb[path]:
                    what = [name for name, x, y in zip(_FIELDS, fa[path], fb[path]) if x != y]
                    rows.append({"platform": p, "where": f"layer {i}", "path": path, "difference": ", ".join(what)})
        if len(ea.manifest.layers) != len(eb.manifest.layers):
            rows.append({"platform": p, "where": "layers", "path": "",
                         "difference": f"{len(ea.manifest.layers)} vs {len(eb.manifest.layers)} layers"})
        if len(rows) == before:  # same config, same layers: only the manifest's own bytes differ
            ta, tb = (manifests.SHORT_NAMES.get(m.media_type, m.media_type) for m in (ea.manifest, eb.manifest))
            what = f"{ta} vs {tb}" if ta != tb else "annotations or field order"
            rows.append({"platform": p, "where": "manifest", "path": "",
                         "difference": f"same config and layers; the manifests differ: {what}"})
    return pd.DataFrame(rows, columns=["platform", "where", "path", "difference"])


def _config_fields(raw: bytes) -> dict:
    obj = json.loads(raw)
    flat = {}
    for key, value in obj.items():
        if isinstance(value, dict):
            for k, v in value.items():
                flat[f"{key}.{k}"] = json.dumps(v, sort_keys=True)
        else:
            flat[key] = json.dumps(value, sort_keys=True)
    return flat


def rebuild(context, platforms: list[Platform], base, folder, *, reproducible: bool = True) -> pd.DataFrame:
    """Build ``context`` twice from scratch into OCI tars under ``folder`` and :func:`compare` the two."""
    tars = []
    for name in ("first", "second"):
        tar = Path(folder) / f"{name}.tar"
        buildx.build(context, platforms=platforms, output=f"type=oci,dest={tar}", base=base, no_cache=True,
                     reproducible=reproducible)
        tars.append(f"oci-archive:{tar}")
    return compare(*tars)


def diff(ref_a: str, ref_b: str) -> pd.DataFrame:
    """Two references side by side: media type, digest, platforms, per-platform digests, attestations."""
    a, b = manifests.inspect(ref_a), manifests.inspect(ref_b)

    def platforms_of(x):
        return {e.platform: e.digest for e in x.images()}

    pa, pb = platforms_of(a), platforms_of(b)
    rows = [
        ("media type", manifests.SHORT_NAMES.get(a.media_type, a.media_type),
         manifests.SHORT_NAMES.get(b.media_type, b.media_type)),
        ("digest", a.digest, b.digest),
        ("platforms", ", ".join(sorted(map(str, pa))), ", ".join(sorted(map(str, pb)))),
        ("attestations", str(len(a.attestations())), str(len(b.attestations()))),
    ]
    for p in sorted(set(pa) | set(pb), key=str):
        rows.append((f"{p} image", pa.get(p, "-"), pb.get(p, "-")))
    df = pd.DataFrame(rows, columns=["aspect", "a", "b"])
    df["same"] = df.a == df.b
    return df
