"""Registry HTTP API v2: ask a registry what a name holds, byte for byte.

Requests go through python-dxf (maintained, small, on PyPI): it sends the full manifest Accept list,
hands back the ``requests.Response`` (so the kit keeps the exact bytes and every header, which
``--raw`` byte-equality with skopeo and the rate-limit display need), performs Docker Hub's anonymous
bearer-token flow from ``WWW-Authenticate``, and streams blobs while checking their sha256. oras-py would
also fit, but it is built around pushing and pulling artifacts to files, not returning raw manifests.
The kit does not use python-dxf's own platform selection (see :mod:`multiarch_kit.platforms`).

Every manifest is checked: the registry's ``Docker-Content-Digest`` header, the sha256 of the bytes
received and, when asked by digest, the digest asked for must all agree. Plain HTTP is used only for
loopback registries (the lab's); anything else is HTTPS.
"""

from __future__ import annotations

import hashlib
import io
import re
import threading
import time
import urllib.parse
import zlib
from dataclasses import dataclass, field

import requests
import requests.adapters
from dxf import DXF, DXFBase
from dxf import exceptions as dxf_errors

from ..core.errors import KitError
from .guard import GUARD_HEADER

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MANIFEST_TYPES = (OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST)
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"  # also the config of docker-archive manifests
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"

DOCKER_HUB = "registry-1.docker.io"
_HUB_ALIASES = ("docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
DEFAULT_TIMEOUT = 30.0


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def is_digest(text: str) -> bool:
    return bool(_DIGEST.match(text))


def is_loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 or host.startswith("[") else host
    return name in ("localhost", "[::1]", "::1") or name.startswith("127.")


# Registries other than loopback that the kit reads over plain HTTP: the lab registry when the reader names it
# (MULTIARCH_KIT_REGISTRY), as the lab read it at the edge; the engines are told to trust the same one.
_PLAIN_HTTP: set[str] = set()


def use_plain_http(host: str) -> None:
    """Read ``host`` (``name:port``) over plain HTTP, as the lab registry is served."""
    _PLAIN_HTTP.add(host)


def plain_http(host: str) -> bool:
    """Whether the kit speaks plain HTTP to ``host``: loopback (the lab registry) or a lab registry named so."""
    return is_loopback(host) or host in _PLAIN_HTTP


def base_url(address: str) -> str:
    """``http://`` for the lab registry (loopback, or named), ``https://`` for everything else."""
    return ("http://" if plain_http(address) else "https://") + address


# The engine's Docker Hub mirrors (``registry-mirrors`` in daemon.json; ``docker info`` lists them), as the lab
# read them at the edge. The engine pulls ``docker.io`` images from the first mirror that has them, so the kit
# reads them there too: otherwise a machine behind a mirror would build from images the kit cannot inspect.
_HUB_MIRRORS: tuple[str, ...] = ()


def use_hub_mirrors(mirrors: tuple[str, ...]) -> None:
    """Read Docker Hub's images through these mirrors first (URLs, as ``docker info`` prints them)."""
    global _HUB_MIRRORS
    _HUB_MIRRORS = tuple(mirrors)


def for_repository(host: str, repository: str) -> Registry:
    """The registry to read ``host/repository`` from: for Docker Hub, the first of the engine's mirrors that
    has the repository's registry API answering, else Docker Hub itself (as dockerd falls back)."""
    if host == DOCKER_HUB:
        for url in _HUB_MIRRORS:
            parsed = urllib.parse.urlsplit(url)
            try:
                answer = _session(parsed.netloc).get(f"{parsed.scheme}://{parsed.netloc}/v2/", timeout=2)
            except requests.RequestException:
                continue
            if answer.headers.get("Docker-Distribution-Api-Version", "").startswith("registry/2"):
                return Registry(parsed.netloc, repository, insecure=parsed.scheme == "http")
    return Registry(host, repository)


def split_name(name: str) -> tuple[str, str]:
    """Registry host and repository for an image name, the way Docker reads it.

    ``alpine`` -> (registry-1.docker.io, library/alpine); ``zerok/multiarch-test`` -> (registry-1.docker.io,
    zerok/multiarch-test); ``localhost:5000/x`` -> (localhost:5000, x). The first part is a host when it
    holds a dot or a colon or is ``localhost``.
    """
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        host, repo = first, rest
    else:
        host, repo = "docker.io", name
    if host in _HUB_ALIASES:
        host = DOCKER_HUB
        if "/" not in repo:
            repo = "library/" + repo
    return host, repo


_SESSIONS: dict[str, requests.Session] = {}
_SESSIONS_LOCK = threading.Lock()


def _session(host: str) -> requests.Session:
    with _SESSIONS_LOCK:
        if host not in _SESSIONS:
            session = requests.Session()
            # For a loopback registry (the lab's) there is no proxy to find: reading the environment's proxy
            # settings on every request cost more than the request itself.
            session.trust_env = not plain_http(host)
            adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=16)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            _SESSIONS[host] = session
        return _SESSIONS[host]


@dataclass
class Fetched:
    """A manifest as the registry stored it."""

    raw: bytes
    media_type: str
    digest: str
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def rate_limit(self) -> dict[str, str]:
        """Docker Hub's pull allowance headers (``ratelimit-limit``, ``ratelimit-remaining``), when sent."""
        return {k: v for k, v in self.headers.items() if k.lower().startswith("ratelimit-")}


@dataclass
class ManifestHead:
    """What a HEAD on a manifest says without sending the body."""

    digest: str
    media_type: str
    size: int


class Registry:
    """One repository on one registry (``Registry("localhost:5000", "multiarch-kit/hello")``)."""

    def __init__(self, host: str, repository: str, timeout: float = DEFAULT_TIMEOUT, *, insecure: bool | None = None):
        self.host, self.repository, self.timeout = host, repository, timeout
        insecure = plain_http(host) if insecure is None else insecure  # plain HTTP: the lab's, or a mirror's http://
        self._dxf = DXF(host, repository, auth=self._anonymous, insecure=insecure, timeout=timeout)
        # python-dxf sends requests through the first entry of its session list (the requests module itself
        # by default, so every request opens a new connection). One pooled session per registry host serves
        # every client of this process instead: the parallel requests of a full-tree inspect, and the next
        # inspect of the same registry, reuse open connections.
        self._dxf._sessions.insert(0, _session(host))

    @staticmethod
    def _anonymous(dxf: DXFBase, response: requests.Response) -> None:
        # Public images only: fetch an anonymous token from the realm the 401 names and retry.
        if dxf._insecure or "bearer" not in response.headers.get("WWW-Authenticate", "").lower():
            return
        dxf.authenticate(response=response)

    @property
    def where(self) -> str:
        return f"{self.host}/{self.repository}"

    def _call(self, what: str, fn, *args):
        try:
            return fn(*args)
        except requests.HTTPError as exc:
            raise self._http_error(what, exc.response) from None
        except requests.Timeout:
            raise KitError(f"registry {self.host} did not answer within {self.timeout:g} s",
                           "check the network, or raise the timeout") from None
        except requests.ConnectionError:
            fix = "run 'multiarch-kit lab up'" if plain_http(self.host) else "check the name and your network"
            raise KitError(f"registry {self.host} does not answer", fix) from None
        except dxf_errors.DXFUnauthorizedError:
            raise self._unauthorized(what, 401) from None
        except dxf_errors.DXFError as exc:
            raise KitError(f"registry {self.host}: {exc}") from None

    def _unauthorized(self, what: str, code: int) -> KitError:
        return KitError(f"{self.where} refused {what} without credentials ({code})",
                        "the kit reads public images only: check the name, or make the repository public")

    def _http_error(self, what: str, response: requests.Response) -> KitError:
        code = response.status_code
        if code == 404:
            return KitError(f"{self.where} has no {what} (404)", "check the name and tag, e.g. with skopeo list-tags")
        if code in (401, 403):
            return self._unauthorized(what, code)
        if code == 429:
            return KitError(f"{self.host} rate limit reached while fetching {what} (429{_reset_hint(response)})",
                            "wait until it resets (HEAD requests do not count), or use the lab registry")
        return KitError(f"{self.where} answered {code} for {what}")

    def get_manifest(self, reference: str) -> Fetched:
        """GET a manifest by tag or digest, checking its digest three ways."""
        _, resp = self._call(f"manifest {reference}", self._dxf.get_manifest_and_response, reference)
        raw = resp.content
        actual = sha256_digest(raw)
        header = resp.headers.get("Docker-Content-Digest", "")
        if header and header != actual:
            raise KitError(f"digest mismatch for {self.where}:{reference}: registry says {header}, bytes hash to "
                           f"{actual}", "the registry or a proxy altered the manifest; do not trust this copy")
        if is_digest(reference) and reference != actual:
            raise KitError(f"digest mismatch: asked for {reference}, received bytes hashing to {actual}",
                           "the registry served other content for that digest; do not trust it")
        media = resp.headers.get("Content-Type", "").split(";")[0].strip()
        return Fetched(raw, media, actual, dict(resp.headers))

    def head_manifest(self, reference: str) -> ManifestHead | None:
        """HEAD a manifest (Docker Hub does not count HEADs against the pull limit); None when absent."""
        def head():
            try:
                return self._dxf.head_manifest_and_response(reference)[1]
            except requests.HTTPError as exc:
                if exc.response is not None and exc.response.status_code == 404:
                    return None
                raise

        resp = self._call(f"manifest {reference}", head)
        if resp is None:
            return None
        length = resp.headers.get("Content-Length") or "0"
        return ManifestHead(resp.headers.get("Docker-Content-Digest", ""),
                            resp.headers.get("Content-Type", "").split(";")[0].strip(),
                            int(length) if length.isdigit() else 0)

    def iter_blob(self, digest: str, chunk_size: int = 1 << 20):
        """Stream a blob in chunks; python-dxf raises on a sha256 mismatch at the end."""
        chunks = self._call(f"blob {digest}", self._dxf.pull_blob, digest, False, chunk_size)
        try:
            yield from chunks
        except dxf_errors.DXFDigestMismatchError:
            raise KitError(f"digest mismatch for blob {digest} from {self.where}", "do not trust this copy") from None

    def open_blob(self, digest: str) -> DigestReader:
        """A blob as a stream, checked against its digest at the end."""
        return DigestReader(self.iter_blob(digest), digest, self.where)

    def get_blob(self, digest: str) -> bytes:
        """A whole (small) blob, such as an image config, digest-checked."""
        return b"".join(self.iter_blob(digest))


class DigestReader(io.RawIOBase):
    """A read-only stream over chunks (or another stream) that checks their sha256 once the end is reached.

    Layers are streamed through it, never held whole in memory; a mismatch at the end raises KitError.
    """

    def __init__(self, chunks, digest: str, where: str):
        self._chunks = iter(chunks)
        self._buf = b""
        self._hash = hashlib.sha256()
        self._digest, self._where, self._done = digest, where, False

    @classmethod
    def from_file(cls, fileobj, digest: str, where: str, chunk_size: int = 1 << 20) -> DigestReader:
        return cls(iter(lambda: fileobj.read(chunk_size), b""), digest, where)

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        while not self._buf and not self._done:
            try:
                self._buf = next(self._chunks)
                self._hash.update(self._buf)
            except (OSError, EOFError, zlib.error) as exc:  # a truncated file or a broken gzip stream
                raise KitError(f"blob {self._digest} from {self._where} cannot be read ({exc})",
                               "the source is damaged; rebuild or re-push it") from None
            except StopIteration:
                self._done = True
                actual = "sha256:" + self._hash.hexdigest()
                if self._digest.startswith("sha256:") and actual != self._digest:
                    raise KitError(f"digest mismatch for blob {self._digest} from {self._where}: the bytes hash to "
                                   f"{actual}", "the source is corrupt; do not trust this copy")
        n = min(len(b), len(self._buf))
        b[:n], self._buf = self._buf[:n], self._buf[n:]
        return n

    def drain(self) -> None:
        """Read to the end, so the digest is checked even when the reader stopped early."""
        while self.read(1 << 20):
            pass


def _reset_hint(response: requests.Response) -> str:
    """When the pull allowance comes back: Retry-After if sent, else the window of Docker Hub's headers."""
    retry = response.headers.get("Retry-After", "")
    window = re.search(r"w=(\d+)", response.headers.get("ratelimit-remaining", "")
                       or response.headers.get("ratelimit-limit", ""))
    limit = response.headers.get("ratelimit-limit", "").split(";")[0]
    parts = []
    if retry.isdigit():
        at = time.strftime("%H:%M UTC", time.gmtime(time.time() + int(retry)))
        parts.append(f"resets in {int(retry)} s, at {at}")
    elif retry:
        parts.append(f"resets at {retry}")
    if window:
        parts.append(f"{limit or 'the'} pulls per {int(window.group(1)) // 3600} h window")
    return (", " + "; ".join(parts)) if parts else ""


def ping(address: str, timeout: float = 2.0) -> bool:
    """True when ``address`` answers ``GET /v2/`` like a distribution registry."""
    try:
        resp = requests.get(base_url(address) + "/v2/", timeout=timeout)
    except requests.RequestException:
        return False
    return resp.headers.get("Docker-Distribution-Api-Version", "").startswith("registry/2")


def stranded_guard(address: str, timeout: float = 2.0) -> int | None:
    """The pid of a lab registry guard at ``address`` whose registry has gone (it answers 502 and names itself)."""
    try:
        resp = requests.get(base_url(address) + "/v2/", timeout=timeout)
    except requests.RequestException:
        return None
    pid = resp.headers.get(GUARD_HEADER, "")
    return int(pid) if resp.status_code == 502 and pid.isdigit() else None


def head_manifest(address: str, repository: str, reference: str, timeout: float = 10.0) -> ManifestHead | None:
    """HEAD ``repository:reference`` on ``address``; None when the registry does not have it."""
    return Registry(address, repository, timeout=timeout).head_manifest(reference)


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether Docker Hub's registry answers at all (an anonymous 401 counts as an answer)."""
    try:
        requests.head(f"https://{DOCKER_HUB}/v2/", timeout=timeout)
        return True
    except requests.RequestException:
        return False
