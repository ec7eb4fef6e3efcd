"""Images on disk: the tars ``docker buildx build --output type=docker|oci,dest=`` writes, ``docker save``
tars, and OCI layout directories.

Two ways to read them, as skopeo does:

* as an OCI layout (``oci:DIR``, ``oci-archive:TAR``): ``index.json`` names the top-level manifest(s);
  the bytes returned are the stored blob's, so digests are the real ones. buildx's ``type=oci`` tar holds
  a multi-platform index; its ``type=docker`` tar and ``docker save`` tars also carry ``index.json``.
* as a docker-load archive (``docker-archive:TAR``): ``manifest.json`` lists config and layer files. There
  is no stored manifest, so one is synthesised exactly as skopeo (containers/image) does: a compact
  Docker v2 manifest whose layers carry the config's ``diff_ids`` and their uncompressed sizes.

Tars are read member by member, never unpacked to disk; blobs are streamed. Everything read from an
archive is outside data: a malformed file, a missing blob or a name that points outside the archive
(``../``, an absolute path, a symbolic link leaving a layout) is a one-line :class:`KitError`.
"""

from __future__ import annotations

import gzip
import json
import re
import tarfile
import zlib
from pathlib import Path, PurePosixPath

from ..core.errors import KitError
from .registry import DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_MANIFEST, DigestReader, sha256_digest

REF_NAME = "org.opencontainers.image.ref.name"
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_CORRUPT = "the archive is damaged or not written by buildx/docker save: rebuild it"


def _bad(path: Path, what: str) -> KitError:
    return KitError(f"{path}: {what}", _CORRUPT)


def _safe_name(path: Path, name: object) -> str:
    """A member name the archive itself gives, refused when it is not a plain relative path inside it."""
    if not isinstance(name, str) or not name:
        raise _bad(path, f"file name {name!r} is not text")
    pure = PurePosixPath(name.removeprefix("./"))
    if pure.is_absolute() or ".." in pure.parts or "\0" in name:
        raise _bad(path, f"file name {name!r} points outside the archive")
    return str(pure)


def _json(path: Path, name: str, raw: bytes):
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _bad(path, f"{name} is not JSON ({exc})") from None


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
                members = self._tar.getmembers()
            except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
                raise KitError(f"{self.path} is not a readable tar archive ({exc})",
                               "give a file written by buildx --output or docker save") from None
            # Only regular files count: a link member never stands in for a blob.
            self._members = {m.name.removeprefix("./"): m for m in members if m.isfile()}

    def _inside(self, name: str) -> Path:
        target = self.path / _safe_name(self.path, name)
        try:
            resolved = target.resolve()
        except OSError as exc:
            raise _bad(self.path, f"cannot resolve {name} ({exc})") from None
        if not resolved.is_relative_to(self.path.resolve()):
            raise _bad(self.path, f"{name} is a link to a place outside the layout")
        return target

    def exists(self, name: str) -> bool:
        name = _safe_name(self.path, name)
        return name in self._members if self._tar else self._inside(name).is_file()

    def open(self, name: str):
        name = _safe_name(self.path, name)
        if self._tar is None:
            target = self._inside(name)
            if not target.is_file():
                raise _bad(self.path, f"{name} is missing")
            return open(target, "rb")
        member = self._members.get(name)
        if member is None:
            raise _bad(self.path, f"{name} is missing")
        return self._tar.extractfile(member)

    def read(self, name: str) -> bytes:
        try:
            with self.open(name) as f:
                return f.read()
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise _bad(self.path, f"{name} cannot be read ({exc})") from None


def _blob_path(path: Path, digest: object) -> str:
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        raise _bad(path, f"{digest!r} is not a sha256 digest")
    return "blobs/sha256/" + digest.removeprefix("sha256:")


class LayoutSource:
    """An OCI image layout, in a directory (``oci:``) or a tar (``oci-archive:``)."""

    parallel = False  # one tar handle: read one blob at a time

    def __init__(self, path: Path, ref: str | None = None):
        self.files = _Files(path)
        if not self.files.exists("index.json"):
            raise KitError(f"{path} has no index.json, so it is not an OCI layout",
                           "for a docker-save tar use docker-archive:PATH")
        index = _json(self.files.path, "index.json", self.files.read("index.json"))
        entries = index.get("manifests") if isinstance(index, dict) else None
        if not isinstance(entries, list) or not all(isinstance(m, dict) for m in entries):
            raise _bad(self.files.path, "index.json has no list of manifests")
        self.entries = entries
        self.ref = ref

    def _names(self) -> list[str]:
        return [str(n) for n in (_annotations(m).get(REF_NAME) for m in self.entries) if n]

    def _entry(self) -> dict:
        if self.ref:
            named = [m for m in self.entries if _annotations(m).get(REF_NAME) == self.ref]
            if not named:
                raise KitError(f"no image named {self.ref!r} in {self.files.path}",
                               "names here: " + (", ".join(self._names()) or "none"))
            return named[0]
        if len(self.entries) != 1:
            raise KitError(f"{self.files.path} holds {len(self.entries)} images", "add :NAME to choose one of: "
                           + (", ".join(self._names()) or "(unnamed)"))
        return self.entries[0]

    def top(self) -> tuple[bytes, str]:
        entry = self._entry()
        media_type = entry.get("mediaType", "")
        return self.manifest(entry.get("digest")), media_type if isinstance(media_type, str) else ""

    def manifest(self, digest: str) -> bytes:
        return self.blob(digest)

    def blob(self, digest: str) -> bytes:
        data = self.files.read(_blob_path(self.files.path, digest))
        if sha256_digest(data) != digest:
            raise KitError(f"digest mismatch: blob {digest} in {self.files.path} hashes to {sha256_digest(data)}",
                           "the archive is corrupt")
        return data

    def open_blob(self, digest: str) -> DigestReader:
        """The blob as a stream, checked against its digest at the end."""
        return DigestReader.from_file(self.files.open(_blob_path(self.files.path, digest)), digest,
                                      str(self.files.path))


def _annotations(entry: dict) -> dict:
    found = entry.get("annotations")
    return found if isinstance(found, dict) else {}


class DockerArchiveSource:
    """A docker-load tar (``docker-archive:``), read through its ``manifest.json``."""

    parallel = False

    def __init__(self, path: Path, ref: str | None = None):
        self.files = _Files(path)
        where = self.files.path
        if not self.files.exists("manifest.json"):
            raise KitError(f"{path} has no manifest.json, so docker load cannot read it",
                           "for an OCI layout tar use oci-archive:PATH")
        images = _json(where, "manifest.json", self.files.read("manifest.json"))
        if not isinstance(images, list) or not all(isinstance(i, dict) for i in images):
            raise _bad(where, "manifest.json is not a list of images")
        if ref:
            images = [i for i in images if isinstance(i.get("RepoTags"), list) and ref in i["RepoTags"]]
            if not images:
                raise KitError(f"no image tagged {ref!r} in {path}", "list the tags with: tar -xOf PATH manifest.json")
        elif len(images) != 1:
            raise KitError(f"{path} holds {len(images)} images", "add :TAG to choose one")
        image = images[0]
        layers = image.get("Layers")
        if not isinstance(layers, list):
            raise _bad(where, "manifest.json names no list of layers")
        self.config_name = _safe_name(where, image.get("Config"))
        self.layer_names = [_safe_name(where, n) for n in layers]
        self._config_raw = self.files.read(self.config_name)
        self.config_digest = sha256_digest(self._config_raw)
        config = _json(where, self.config_name, self._config_raw)
        rootfs = config.get("rootfs") if isinstance(config, dict) else None
        diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
        if not isinstance(diff_ids, list) or not all(isinstance(d, str) and _DIGEST.match(d) for d in diff_ids):
            raise _bad(where, f"{self.config_name} has no list of layer digests (rootfs.diff_ids)")
        if len(diff_ids) != len(self.layer_names):
            raise _bad(where, f"{len(self.layer_names)} layer files but {len(diff_ids)} layer digests")
        self.diff_ids: list[str] = diff_ids
        self._raw: bytes | None = None

    def _layer_stream(self, name: str):
        f = self.files.open(name)
        head = f.read(2)
        f.seek(0)  # tar members and files both seek
        return gzip.GzipFile(fileobj=f) if head == b"\x1f\x8b" else f

    def _layer_size(self, name: str) -> int:
        size = 0
        try:
            with self._layer_stream(name) as stream:
                while chunk := stream.read(1 << 20):
                    size += len(chunk)
        except (OSError, EOFError, zlib.error) as exc:
            raise _bad(self.files.path, f"layer {name} cannot be read ({exc})") from None
        return size

    def top(self) -> tuple[bytes, str]:
        if self._raw is None:
            layers = [{"mediaType": DOCKER_LAYER_GZIP, "size": self._layer_size(name), "digest": diff_id}
                      for name, diff_id in zip(self.layer_names, self.diff_ids)]
            manifest = {"schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
                        "config": {"mediaType": DOCKER_CONFIG, "size": len(self._config_raw),
                                   "digest": self.config_digest},
                        "layers": layers}
            # Go's encoding/json: compact, fields in struct order, no trailing newline.
            self._raw = json.dumps(manifest, separators=(",", ":")).encode()
        return self._raw, DOCKER_MANIFEST

    def manifest(self, digest: str) -> bytes:
        raw, _ = self.top()
        if digest != sha256_digest(raw):
            raise KitError(f"{self.files.path} has no manifest {digest}", "a docker archive holds one image manifest")
        return raw

    def blob(self, digest: str) -> bytes:
        if digest == self.config_digest:
            return self._config_raw
        raise KitError(f"{self.files.path} has no blob {digest} readable as a whole",
                       "only the config is read whole; layers are streamed")

    def open_blob(self, digest: str) -> DigestReader:
        """A layer by its diff_id (the synthesised manifest's layer digest), uncompressed and checked."""
        if digest not in self.diff_ids:
            raise KitError(f"{self.files.path} has no layer {digest}", "check the digest against the manifest")
        name = self.layer_names[self.diff_ids.index(digest)]
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
    except (OSError, tarfile.TarError, EOFError, zlib.error):
        raise KitError(f"{path} is not a readable tar archive",
                       "build it first with --output=type=docker|oci,dest=...") from None
    return sorted(names)
