"""Registry client details that need no registry: name normalisation, transport choice, streamed digests."""

import hashlib
import io

import pytest

from multiarch_kit.core.errors import KitError
from multiarch_kit.oci import registry


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


class _V2:
    """A server that answers ``GET /v2/`` as a distribution registry does (a Docker Hub mirror's first question)."""

    def __init__(self):
        import http.server
        import threading

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Docker-Distribution-Api-Version", "registry/2.0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_docker_hub_names_are_read_through_the_engines_mirror_when_it_answers(monkeypatch):
    from multiarch_kit import engine

    mirror = _V2()
    info = {"ServerVersion": "26.1", "Architecture": "x86_64", "OSType": "linux",
            "RegistryConfig": {"Mirrors": [f"http://127.0.0.1:{mirror.port}/", "https://mirror.invalid/"]}}
    facts = engine.facts_from(info, {}, "unix:///var/run/docker.sock")
    assert facts.hub_mirrors == (f"http://127.0.0.1:{mirror.port}/", "https://mirror.invalid/")
    try:
        registry.use_hub_mirrors(facts.hub_mirrors)
        via = registry.for_repository(*registry.split_name("debian"))
        assert (via.host, via.repository, via._dxf._insecure) == (f"127.0.0.1:{mirror.port}", "library/debian", True)
        # Other registries are never redirected.
        assert registry.for_repository("quay.io", "x/y").host == "quay.io"
        mirror.server.shutdown()
        mirror.server.server_close()
        # A mirror that does not answer is passed over, as dockerd falls back to Docker Hub.
        assert registry.for_repository(*registry.split_name("debian")).host == registry.DOCKER_HUB
    finally:
        registry.use_hub_mirrors(())
    assert engine.facts_from({**info, "RegistryConfig": {}}, {}, "x").hub_mirrors == ()
