"""Registry client details that need no registry: name normalisation, transport choice, streamed digests."""

import hashlib
import io

import pytest

from multiarch_kit import registry
from multiarch_kit.errors import KitError


@pytest.mark.parametrize("name, host, repo", [
    ("alpine", "registry-1.docker.io", "library/alpine"),
    ("docker.io/alpine", "registry-1.docker.io", "library/alpine"),
    ("index.docker.io/library/alpine", "registry-1.docker.io", "library/alpine"),
    ("goreleaser/goreleaser", "registry-1.docker.io", "goreleaser/goreleaser"),
    ("zerok/multiarch-test", "registry-1.docker.io", "zerok/multiarch-test"),
    ("localhost:5000/multiarch-test", "localhost:5000", "multiarch-test"),
    ("localhost/x/y", "localhost", "x/y"),
    ("ghcr.io/owner/app", "ghcr.io", "owner/app"),
    ("127.0.0.1:5000/a/b/c", "127.0.0.1:5000", "a/b/c"),
])
def test_split_name_like_docker(name, host, repo):
    assert registry.split_name(name) == (host, repo)


@pytest.mark.parametrize("address, url", [
    ("localhost:5000", "http://localhost:5000"), ("127.0.0.1:5001", "http://127.0.0.1:5001"),
    ("[::1]:5000", "http://[::1]:5000"), ("registry-1.docker.io", "https://registry-1.docker.io"),
    ("ghcr.io", "https://ghcr.io"), ("localhost.example.com:5000", "https://localhost.example.com:5000"),
])
def test_plain_http_only_for_loopback(address, url):
    assert registry.base_url(address) == url


def test_digest_reader_streams_and_checks_at_the_end():
    data = b"x" * (3 << 20) + b"tail"
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    reader = registry.DigestReader.from_file(io.BytesIO(data), digest, "memory", chunk_size=1 << 16)
    assert reader.read(10) == b"x" * 10
    reader.drain()
    bad = registry.DigestReader.from_file(io.BytesIO(data[:-1]), digest, "memory")
    with pytest.raises(KitError, match="digest mismatch for blob"):
        bad.drain()


def test_reset_hint_from_hub_headers():
    class R:
        headers = {"ratelimit-limit": "100;w=21600", "ratelimit-remaining": "0;w=21600"}

    assert registry._reset_hint(R()) == ", 100 pulls per 6 h window"
