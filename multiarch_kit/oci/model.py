"""The manifest model: indexes, image manifests, descriptors and image configs, parsed and checked once.

An image reference points at one of two things: an *index* (OCI image index or Docker manifest list), a list of
per-platform entries, or a single *image manifest* (config + layers). :func:`parse` reads either from its bytes;
every descriptor is checked when it is read (a well-formed digest, a size that is a non-negative integer) and the
bytes it points at are checked against it when they are fetched (:func:`check_size`).

Attestation entries (buildx provenance/SBOM) have platform ``unknown/unknown`` and annotations naming the image
they describe; they are labelled, never mistaken for an image.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from ..core.errors import KitError
from .platforms import Platform
from .registry import DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, sha256_digest

INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
IMAGE_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
_DIGEST = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
SHORT_NAMES = {OCI_INDEX: "OCI index", DOCKER_LIST: "Docker manifest list", OCI_MANIFEST: "OCI manifest",
               DOCKER_MANIFEST: "Docker manifest"}


def _malformed(what: str) -> KitError:
    return KitError(f"malformed manifest: {what}", "the source does not hold a valid image manifest or index")


@dataclass
class Descriptor:
    """A pointer to content: media type, digest, size, and for index entries a platform."""

    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    annotations: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, obj, where: str) -> Descriptor:
        if not isinstance(obj, dict):
            raise _malformed(f"{where} is not an object")
        digest, size = obj.get("digest"), obj.get("size")
        if not isinstance(digest, str) or not _DIGEST.match(digest):
            raise _malformed(f"{where} has no valid digest ({digest!r})")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise _malformed(f"{where} has no valid size ({size!r})")
        platform = obj.get("platform")
        if platform is not None and not isinstance(platform, dict):
            raise _malformed(f"{where}.platform is not an object")
        annotations = obj.get("annotations") or {}
        if not isinstance(annotations, dict):
            raise _malformed(f"{where}.annotations is not an object")
        return cls(str(obj.get("mediaType", "")), digest, size,
                   Platform.from_oci(platform) if platform else None, {str(k): str(v) for k, v in annotations.items()})

    @property
    def is_attestation(self) -> bool:
        unknown = self.platform is not None and (self.platform.os, self.platform.architecture) == ("unknown", "unknown")
        return unknown or self.annotations.get("vnd.docker.reference.type") == "attestation-manifest"

    @property
    def attests(self) -> str | None:
        """The digest of the image this attestation describes."""
        return self.annotations.get("vnd.docker.reference.digest") if self.is_attestation else None


@dataclass
class Index:
    """An OCI image index or Docker manifest list."""

    media_type: str
    manifests: list[Descriptor]
    annotations: dict[str, str]
    digest: str
    raw: bytes


@dataclass
class ImageManifest:
    """An OCI or Docker image manifest: one config and its layers."""

    media_type: str
    config: Descriptor
    layers: list[Descriptor]
    annotations: dict[str, str]
    digest: str
    raw: bytes

    @property
    def layer_bytes(self) -> int:
        return sum(layer.size for layer in self.layers)


@dataclass
class ImageConfig:
    """The parts of an image config the kit reads."""

    os: str
    architecture: str
    variant: str
    labels: dict[str, str]
    diff_ids: list[str]
    digest: str
    raw: bytes

    @property
    def platform(self) -> Platform:
        return Platform(self.os, self.architecture, self.variant)


def _load(raw: bytes, what: str):
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _malformed(f"{what} is not JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise _malformed(f"{what} is not a JSON object")
    return obj


def _strings(obj, what: str) -> dict[str, str]:
    if obj is None:
        return {}
    if not isinstance(obj, dict):
        raise _malformed(f"{what} is not an object")
    return {str(k): str(v) for k, v in obj.items()}


def parse(raw: bytes, media_type: str = "") -> Index | ImageManifest:
    """Parse manifest bytes into an :class:`Index` or :class:`ImageManifest`.

    The body's ``mediaType`` wins over ``media_type`` (e.g. a Content-Type header); an index without
    ``mediaType`` is recognised by its ``manifests`` list, a manifest by ``config`` and ``layers``.
    """
    obj = _load(raw, "the manifest")
    if obj.get("schemaVersion") == 1:
        raise KitError("this is a Docker schema 1 manifest, deprecated since 2017 and not supported",
                       "rebuild or re-push the image with a current Docker")
    if obj.get("schemaVersion") != 2:
        raise _malformed(f"schemaVersion is {obj.get('schemaVersion')!r}, expected 2")
    kind = obj.get("mediaType") or media_type
    if not isinstance(kind, str):
        raise _malformed(f"mediaType {kind!r} is not text")
    if kind in INDEX_TYPES or (not obj.get("mediaType") and "manifests" in obj):
        entries = obj.get("manifests")
        if not isinstance(entries, list):
            raise _malformed("an index needs a 'manifests' list")
        return Index(kind or OCI_INDEX,
                     [Descriptor.from_json(m, f"manifests[{i}]") for i, m in enumerate(entries)],
                     _strings(obj.get("annotations"), "annotations"), sha256_digest(raw), raw)
    if kind in IMAGE_TYPES or (not obj.get("mediaType") and "config" in obj and "layers" in obj):
        layers = obj.get("layers")
        if not isinstance(layers, list):
            raise _malformed("an image manifest needs a 'layers' list")
        return ImageManifest(kind or OCI_MANIFEST, Descriptor.from_json(obj.get("config"), "config"),
                             [Descriptor.from_json(x, f"layers[{i}]") for i, x in enumerate(layers)],
                             _strings(obj.get("annotations"), "annotations"), sha256_digest(raw), raw)
    raise KitError(f"unknown manifest media type {kind!r}",
                   "the kit reads OCI indexes and manifests and Docker manifest lists and v2 manifests")


def parse_config(raw: bytes) -> ImageConfig:
    """Parse an image config blob."""
    obj = _load(raw, "the image config")
    rootfs = obj.get("rootfs") if isinstance(obj.get("rootfs"), dict) else {}
    inner = obj.get("config") if isinstance(obj.get("config"), dict) else {}
    diff_ids = rootfs.get("diff_ids") or []
    if not isinstance(diff_ids, list):
        raise _malformed("the image config's rootfs.diff_ids is not a list")
    return ImageConfig(
        os=str(obj.get("os", "")), architecture=str(obj.get("architecture", "")), variant=str(obj.get("variant", "")),
        labels=_strings(inner.get("Labels"), "the image config's Labels"), diff_ids=[str(d) for d in diff_ids],
        digest=sha256_digest(raw), raw=raw,
    )


def check_size(data: bytes, descriptor: Descriptor, where: str) -> bytes:
    """``data`` when its length is the one ``descriptor`` states: the OCI spec says content whose length does not
    match its descriptor's SHOULD NOT be trusted, and skopeo's leniency is not the kit's."""
    if len(data) != descriptor.size:
        raise _malformed(f"{where} is {len(data)} bytes, but its descriptor says {descriptor.size}")
    return data
