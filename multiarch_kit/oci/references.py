"""Image references in skopeo's transport syntax, and the source each one opens.

* ``docker://NAME[:TAG|@DIGEST]`` - a registry; also the meaning of a reference without a prefix.
* ``oci-archive:PATH[:NAME]`` - an OCI layout in a tar (``buildx --output type=oci,dest=PATH``).
* ``docker-archive:PATH[:TAG]`` - a docker-load tar (``buildx --output type=docker,dest=PATH``, ``docker save``).
* ``oci:DIR[:NAME]`` - an OCI layout directory.

Paths are taken relative to the current folder (in a notebook, the notebook's folder). A reference is parsed
once, where it enters; inside, it travels as a :class:`Reference` and is never cut as a string:
``ref.at(digest)`` names one image of its repository, ``ref.with_tag(tag)`` another tag, ``ref.docker`` is
what the docker CLI takes.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import KitError
from .archives import DockerArchiveSource, LayoutSource
from .registry import Fetched, Registry, for_repository, split_name

TRANSPORTS = ("docker", "oci-archive", "docker-archive", "oci")
# Docker's reference grammar (distribution/reference), lower-case path components.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_NAME = re.compile(rf"^(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_FIX = "write it like docker://localhost:5000/name:tag, oci-archive:FILE.tar or docker-archive:FILE.tar"


@dataclass(frozen=True)
class Reference:
    """A parsed reference."""

    transport: str
    name: str  # image name for docker (the repository, with its registry), path otherwise
    tag: str = ""  # tag for docker; the image name or tag inside an archive or layout
    digest: str = ""

    @functools.cached_property
    def _host_and_repository(self) -> tuple[str, str]:
        self._in_registry("a registry")
        return split_name(self.name)

    @property
    def host(self) -> str:
        """The registry's host, as Docker reads the name (``registry-1.docker.io`` for Docker Hub's)."""
        return self._host_and_repository[0]

    @property
    def repository(self) -> str:
        """The repository in that registry (``library/alpine`` for ``alpine``)."""
        return self._host_and_repository[1]

    @functools.cached_property
    def client(self) -> Registry:
        """The registry API client for this reference's repository (its name split once, here)."""
        return for_repository(self.host, self.repository)

    @property
    def registry_ref(self) -> str:
        """What to ask the registry for: the digest when given, else the tag."""
        return self.digest or self.tag or "latest"

    @property
    def docker(self) -> str:
        """The reference as the docker CLI takes it (``localhost:5000/app:tag``, ``localhost:5000/app@sha256:...``)."""
        self._in_registry("the docker CLI")
        return self.name + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    def at(self, digest: str) -> Reference:
        """The image ``digest`` in this reference's repository (no tag: the digest alone names it)."""
        self._in_registry("a digest")
        if not isinstance(digest, str) or not _DIGEST.match(digest):
            raise KitError(f"{digest!r} is not a sha256 digest", "a digest is sha256: and 64 hex digits")
        return Reference("docker", self.name, "", digest)

    def with_tag(self, tag: str) -> Reference:
        """The tag ``tag`` in this reference's repository."""
        self._in_registry("a tag")
        if not isinstance(tag, str) or not _TAG.match(tag):
            raise KitError(f"{tag!r} is not a tag", "letters, digits, _ . -; at most 128, not starting with . or -")
        return Reference("docker", self.name, tag)

    def _in_registry(self, what: str) -> None:
        if self.transport != "docker":
            raise KitError(f"{self} is not in a registry, so {what} cannot name it",
                           "use a registry reference, like localhost:5000/name:tag")

    def __str__(self) -> str:
        if self.transport == "docker":
            return f"docker://{self.name}" + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")
        return f"{self.transport}:{self.name}" + (f":{self.tag}" if self.tag else "")


def parse_reference(text: str | Reference) -> Reference:
    """Parse ``text``; raises :class:`KitError` on anything skopeo would not accept.

    A :class:`Reference` is returned as it is, so the package's entry points can take either.
    """
    if isinstance(text, Reference):
        return text
    if not isinstance(text, str) or not text.strip() or text != text.strip():
        raise KitError(f"invalid reference {text!r}: empty or padded with spaces", _FIX)
    transport, sep, rest = text.partition(":")
    if sep and transport in TRANSPORTS[1:]:
        path, _, inner = rest.partition(":")
        if not path:
            raise KitError(f"invalid reference {text!r}: no path after {transport}:", _FIX)
        return Reference(transport, path, inner)
    if text.startswith("docker://"):
        text = text[len("docker://"):]
    elif "://" in text:
        raise KitError(f"invalid reference {text!r}: unknown transport {text.split('://')[0]!r}", _FIX)
    name, _, digest = text.partition("@")
    tag = ""
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = name.rsplit(":", 1)
    if not _NAME.match(name):
        raise KitError(f"invalid reference {text!r}: {name!r} is not an image name (lower case, no spaces)", _FIX)
    if tag and not _TAG.match(tag):
        raise KitError(f"invalid reference {text!r}: {tag!r} is not a tag", _FIX)
    if digest and not _DIGEST.match(digest):
        raise KitError(f"invalid reference {text!r}: {digest!r} is not a sha256 digest", _FIX)
    return Reference("docker", name, tag if tag or digest else "latest", digest)


class RegistrySource:
    """A reference in a registry."""

    parallel = True  # one pooled HTTP client: manifests and configs may be fetched side by side

    def __init__(self, ref: Reference):
        self.registry = ref.client
        self.ref = ref
        self.rate_limit: dict[str, str] = {}
        self._top: Fetched | None = None

    def top(self) -> tuple[bytes, str]:
        if self._top is None:
            self._top = self.registry.get_manifest(self.ref.registry_ref)
            self.rate_limit = self._top.rate_limit
        return self._top.raw, self._top.media_type

    def manifest(self, digest: str) -> bytes:
        return self.registry.get_manifest(digest).raw

    def blob(self, digest: str) -> bytes:
        return self.registry.get_blob(digest)

    def open_blob(self, digest: str):
        return self.registry.open_blob(digest)


def open_source(reference: str | Reference):
    """The source that serves ``reference``."""
    ref = parse_reference(reference)
    if ref.transport == "docker":
        return RegistrySource(ref)
    if ref.transport == "docker-archive":
        return DockerArchiveSource(Path(ref.name), ref.tag or None)
    return LayoutSource(Path(ref.name), ref.tag or None)
