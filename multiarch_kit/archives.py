"""Images on disk: the tars ``docker buildx build --output type=docker|oci,dest=`` writes, ``docker save``
tars, and OCI layout directories.

Two ways to read them, as skopeo does:

* as an OCI layout (``oci:DIR``, ``oci-archive:TAR``): ``index.json`` names the top-level manifest(s);
  the bytes returned are the stored blob's, so digests are the real ones. buildx's ``type=oci`` tar holds
  a multi-platform index; its ``type=docker`` tar and ``docker save`` tars also carry ``index.json``.
* as a docker-load archive (``docker-archive:TAR``): ``manifest.json`` lists config and layer files. There
  is no stored manifest, so one is synthesised exactly as skopeo (containers/image) does: a compact
  Docker v2 manifest whose layers carry the config's ``diff_ids`` and their uncompressed sizes.

Tars are read member by member, never unpacked to disk; blobs are streamed.
"""

from __future__ import annotations

import gzip
import json
import tarfile
from pathlib import Path

from .errors import KitError
from .manifests import DOCKER_CONFIG
from .registry import DOCKER_MANIFEST, DigestReader, sha256_digest

DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
REF_NAME = "org.opencontainers.image.ref.name"


class _Files:
    """Read files by relative path from a directory or a tar, without unpacking the tar."""

    def __init__(self, path: Path):
        self.path = Path(path)
        if not self.path.exists():
            raise KitError(f"{self.path} does not exist", "check the path (it is relative to the current folder)")
        self._tar = None
        if self.path.is_file():
            try:
                self._tar = tarfile.open(self.path)
            except tarfile.TarError:
                raise KitError(f"{self.path} is not a tar archive", "give a file written by buildx --output or docker save") from None
            self._members = {m.name.removeprefix("./"): m for m in self._tar.getmembers() if m.isfile()}

    def exists(self, name: str) -> bool:
        return name in self._members if self._tar else (self.path / name).is_file()

    def open(self, name: str):
        if self._tar is None:
            return open(self.path / name, "rb")
        member = self._members.get(name)
        if member is None:
            raise KitError(f"{self.path} has no {name}", "the archive is incomplete or not an image archive")
        return self._tar.extractfile(member)

    def read(self, name: str) -> bytes:
        with self.open(name) as f:
            return f.read()


def _blob_path(digest: str) -> str:
    algo, _, hexpart = digest.partition(":")
    return f"blobs/{algo}/{hexpart}"


class LayoutSource:
    """An OCI image layout, in a directory (``oci:``) or a tar (``oci-archive:``)."""

    def __init__(self, path: Path, ref: str | None = None):
        self.files = _Files(path)
        self.description = f"OCI layout {path}"
        if not self.files.exists("index.json"):
            raise KitError(f"{path} has no index.json, so it is not an OCI layout",
                           "for a docker-save tar use docker-archive:PATH")
        self.index = json.loads(self.files.read("index.json"))
        self.ref = ref

    def _entry(self) -> dict:
        entries = self.index.get("manifests") or []
        if self.ref:
            named = [m for m in entries if (m.get("annotations") or {}).get(REF_NAME) == self.ref]
            if not named:
                raise KitError(f"no image named {self.ref!r} in {self.files.path}",
                               "names here: " + (", ".join(self._names()) or "none"))
            return named[0]
        if len(entries) != 1:
            raise KitError(f"{self.files.path} holds {len(entries)} images", "add :NAME to choose one of: "
                           + (", ".join(self._names()) or "(unnamed)"))
        return entries[0]

    def _names(self) -> list[str]:
        return [(m.get("annotations") or {}).get(REF_NAME, "") for m in self.index.get("manifests") or []
                if (m.get("annotations") or {}).get(REF_NAME)]

    def top(self) -> tuple[bytes, str]:
        entry = self._entry()
        return self.manifest(entry["digest"]), entry.get("mediaType", "")

    def manifest(self, digest: str) -> bytes:
        return self.blob(digest)

    def blob(self, digest: str) -> bytes:
        data = self.files.read(_blob_path(digest))
        if sha256_digest(data) != digest:
            raise KitError(f"digest mismatch: blob {digest} in {self.files.path} hashes to {sha256_digest(data)}",
                           "the archive is corrupt")
        return data

    def open_blob(self, digest: str) -> DigestReader:
        """The blob as a stream, checked against its digest at the end."""
        return DigestReader.from_file(self.files.open(_blob_path(digest)), digest, str(self.files.path))


class DockerArchiveSource:
    """A docker-load tar (``docker-archive:``), read through its ``manifest.json``."""

    def __init__(self, path: Path, ref: str | None = None):
        self.files = _Files(path)
        self.description = f"docker archive {path}"
        if not self.files.exists("manifest.json"):
            raise KitError(f"{path} has no manifest.json, so docker load cannot read it",
                           "for an OCI layout tar use oci-archive:PATH")
        images = json.loads(self.files.read("manifest.json"))
        if ref:
            images = [i for i in images if ref in (i.get("RepoTags") or [])]
            if not images:
                raise KitError(f"no image tagged {ref!r} in {path}", "list the tags with: tar -xOf PATH manifest.json")
        elif len(images) != 1:
            raise KitError(f"{path} holds {len(images)} images", "add :TAG to choose one")
        self.image = images[0]
        self._config_raw = self.files.read(self.image["Config"])
        self.config_digest = sha256_digest(self._config_raw)
        self._raw: bytes | None = None

    def _layer_stream(self, name: str):
        f = self.files.open(name)
        head = f.read(2)
        f.seek(0)  # tar members and files both seek
        return gzip.GzipFile(fileobj=f) if head == b"\x1f\x8b" else f

    def top(self) -> tuple[bytes, str]:
        if self._raw is None:
            diff_ids = json.loads(self._config_raw).get("rootfs", {}).get("diff_ids", [])
            layers = []
            for name, diff_id in zip(self.image["Layers"], diff_ids):
                size = 0
                with self._layer_stream(name) as stream:
                    while chunk := stream.read(1 << 20):
                        size += len(chunk)
                layers.append({"mediaType": DOCKER_LAYER_GZIP, "size": size, "digest": diff_id})
            manifest = {"schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
                        "config": {"mediaType": DOCKER_CONFIG, "size": len(self._config_raw), "digest": self.config_digest},
                        "layers": layers}
            # Go's encoding/json: compact, fields in struct order, no trailing newline.
            self._raw = json.dumps(manifest, separators=(",", ":")).encode()
        return self._raw, DOCKER_MANIFEST

    def manifest(self, digest: str) -> bytes:
        raw, _ = self.top()
        if digest != sha256_digest(raw):
            raise KitError(f"{self.files.path} has no manifest {digest}")
        return raw

    def blob(self, digest: str) -> bytes:
        if digest == self.config_digest:
            return self._config_raw
        raise KitError(f"{self.files.path} has no blob {digest} readable as a whole")

    def open_blob(self, digest: str) -> DigestReader:
        """A layer by its diff_id (the synthesised manifest's layer digest), uncompressed and checked."""
        diff_ids = json.loads(self._config_raw).get("rootfs", {}).get("diff_ids", [])
        if digest not in diff_ids:
            raise KitError(f"{self.files.path} has no layer {digest}")
        name = self.image["Layers"][diff_ids.index(digest)]
        return DigestReader.from_file(self._layer_stream(name), digest, str(self.files.path))


def top_level(path: str | Path) -> list[str]:
    """The top-level entries of an image tar (``blobs/``, ``index.json``, ``manifest.json``, ``oci-layout``)."""
    try:
        with tarfile.open(path) as tar:
            names = set()
            for m in tar.getmembers():
                parts = m.name.removeprefix("./").split("/")
                if parts[0]:
                    names.add(parts[0] + ("/" if len(parts) > 1 or m.isdir() else ""))
    except (OSError, tarfile.TarError):
        raise KitError(f"{path} is not a readable tar archive", "build it first with --output=type=docker|oci,dest=...") from None
    return sorted(names)

