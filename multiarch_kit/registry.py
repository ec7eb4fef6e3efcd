"""Registry HTTP API v2: ask a registry what it holds.

The lab needs two questions answered: does this address serve the v2 API (:func:`ping`), and what
digest does a tag point at (:func:`head_manifest`). HEAD requests carry the full Accept list so the
registry answers with the stored manifest's own media type and digest instead of converting it.
"""

from __future__ import annotations

from dataclasses import dataclass

import requests

from .errors import KitError

MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
ACCEPT = ", ".join(MANIFEST_TYPES)


@dataclass
class ManifestHead:
    """What a HEAD on a manifest says without sending the body."""

    digest: str
    media_type: str
    size: int


def base_url(address: str) -> str:
    """``http://`` for loopback addresses (the lab registry), ``https://`` for everything else."""
    host = address.rsplit(":", 1)[0] if address.count(":") == 1 else address
    loopback = host in ("localhost", "::1", "[::1]") or host.startswith("127.")
    return ("http://" if loopback else "https://") + address


def ping(address: str, timeout: float = 2.0) -> bool:
    """True when ``address`` answers ``GET /v2/`` like a distribution registry."""
    try:
        resp = requests.get(base_url(address) + "/v2/", timeout=timeout)
    except requests.RequestException:
        return False
    return resp.headers.get("Docker-Distribution-Api-Version", "").startswith("registry/2")


def head_manifest(address: str, repository: str, reference: str, timeout: float = 10.0) -> ManifestHead | None:
    """HEAD ``/v2/<repository>/manifests/<reference>``; None when the registry does not have it."""
    url = f"{base_url(address)}/v2/{repository}/manifests/{reference}"
    try:
        resp = requests.head(url, headers={"Accept": ACCEPT}, timeout=timeout)
    except requests.RequestException as exc:
        raise KitError(f"registry {address} did not answer ({type(exc).__name__})", "run 'multiarch-kit lab up'") from None
    if resp.status_code == 404:
        return None
    if resp.status_code != 200:
        raise KitError(f"registry {address} answered {resp.status_code} for {repository}:{reference}")
    return ManifestHead(
        digest=resp.headers.get("Docker-Content-Digest", ""),
        media_type=resp.headers.get("Content-Type", ""),
        size=int(resp.headers.get("Content-Length") or 0),
    )
