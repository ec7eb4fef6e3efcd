"""The README's failure table, row by row, against real parts (a second engine, a cut socket, a full disk...).

Rows already covered elsewhere: engine not running, port taken, buildx missing, not root (test_lab); 404,
401, unreachable registry, malformed manifest, digest mismatch, invalid reference and platform
(test_inspect); platform without emulator (test_article); disk full (test_store), Ctrl-C (test_bench).
"""

import http.server
import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import ROOT, kit_cli, one_line_error, require

from multiarch_kit import buildx
from multiarch_kit.bench import store
from multiarch_kit.core.errors import CommandError, KitError
from multiarch_kit.oci import manifests

# --- a classic image store ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def classic_engine(classic_node):
    """The classic-store engine as the environment a reader would set: DOCKER_CONTEXT."""
    return {"DOCKER_CONTEXT": classic_node}


def test_classic_store_lab_up_says_how_to_turn_on_containerd(classic_engine):
    line = one_line_error(kit_cli("lab", "up", env=classic_engine))
    assert "the builder cannot export type=docker: the engine keeps images in the classic store" in line
    assert '{"features":{"containerd-snapshotter":true}}' in line and "Use containerd for pulling" in line


def test_classic_store_doctor_row(classic_engine):
    import json

    rows = {r["check"]: r for r in json.loads(kit_cli("doctor", "--format", "json", env=classic_engine).stdout)}
    assert rows["image store"]["status"] == "fail" and rows["image store"]["detail"].startswith("classic")
    assert "containerd-snapshotter" in rows["image store"]["fix"]


def test_classic_store_build_error_is_named(classic_engine, monkeypatch, tmp_path):
    for k, v in classic_engine.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(CommandError) as err:
        buildx.build(ROOT / "notebooks" / "article", platforms=["linux/amd64"],
                     output=f"type=docker,dest={tmp_path / 'x.tar'}", echo=False)
    assert str(err.value).startswith("the engine's classic image store cannot export type=docker")
    assert "containerd-snapshotter" in str(err.value) and "\n" not in str(err.value)


# --- Docker Hub's 429 ----------------------------------------------------------------------------------------

class _RateLimited(http.server.BaseHTTPRequestHandler):
    """Answers like Docker Hub once the anonymous allowance is spent (the hub itself is unreachable here)."""

    def _answer(self):
        self.send_response(429)
        self.send_header("Content-Type", "application/json")
        self.send_header("Docker-Distribution-Api-Version", "registry/2.0")
        self.send_header("Retry-After", "3600")
        self.send_header("ratelimit-limit", "100;w=21600")
        self.send_header("ratelimit-remaining", "0;w=21600")
        body = b'{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate limit."}]}'
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command == "GET":
            self.wfile.write(body)

    do_GET = do_HEAD = _answer

    def log_message(self, *args):
        pass


def test_429_says_when_the_limit_resets():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _RateLimited)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        line = one_line_error(kit_cli("inspect", f"localhost:{server.server_port}/library/alpine:3.18"))
    finally:
        server.shutdown()
    assert "rate limit reached while fetching manifest 3.18 (429, resets in 3600 s, at " in line
    assert "100 pulls per 6 h window" in line and "HEAD requests do not count" in line


# --- missing Dockerfile, unwritable results ---------------------------------------------------------------------

def test_missing_dockerfile(tmp_path):
    with pytest.raises(KitError, match=f"no Dockerfile in {tmp_path}"):
        buildx.build(tmp_path, platforms=["linux/amd64"])
    proc = kit_cli("bench", "--workloads", "nope", "--results", str(tmp_path))
    assert "unknown workload 'nope'" in one_line_error(proc)


def test_results_folder_not_writable(lab_status, tmp_path):
    require(os.geteuid() == 0, "needs root to mount a read-only tmpfs")
    ro = tmp_path / "ro"
    ro.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(ro)], check=True)
    try:
        line = one_line_error(kit_cli("bench", "--workloads", "cpu", "--sizes", "cpu=1", "--repeats", "1",
                                      "--results", str(ro)))
        assert "cannot write" in line and "Read-only file system" in line and "--results DIR" in line
    finally:
        subprocess.run(["umount", str(ro)], check=True)


# --- the engine stops in the middle of a bench --------------------------------------------------------------------

class _Relay:
    """A unix-socket relay to the engine that can be cut: to the kit, the engine stops answering."""

    def __init__(self, path: Path, target: str = "/var/run/docker.sock"):
        self.path, self.target, self.conns, self.open = path, target, [], True
        self.listener = socket.socket(socket.AF_UNIX)
        self.listener.bind(str(path))
        self.listener.listen(64)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while self.open:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX)
            upstream.connect(self.target)
            self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a, b):
        try:
            while data := a.recv(65536):
                b.sendall(data)
            b.shutdown(socket.SHUT_WR)  # pass a half-close on (docker run closes its stdin side early)
        except OSError:
            pass

    def cut(self):
        self.open = False
        self.listener.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass
        self.path.unlink(missing_ok=True)


def test_engine_stopping_mid_bench_keeps_rows_and_resume_completes(lab_status, tmp_path):
    sock = tmp_path / "engine.sock"
    relay = _Relay(sock)
    env = {**os.environ, "DOCKER_HOST": f"unix://{sock}"}
    exe = str(Path(sys.executable).with_name("multiarch-kit"))
    args = ["bench", "--workloads", "cpu", "--strategies", "native", "--sizes", "cpu=1", "--repeats", "6",
            "--warmup", "0", "--results", str(tmp_path / "res"), "--no-progress"]
    proc = subprocess.Popen([exe, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        files = list((tmp_path / "res").glob("*.csv"))
        if files and len(files[0].read_text().splitlines()) >= 3:
            break
        time.sleep(0.05)
    relay.cut()
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "the engine stopped answering after" in lines[0] and "--resume" in lines[0], err
    csv = next((tmp_path / "res").glob("*.csv"))
    kept = len(store.read_rows(csv))
    assert 2 <= kept < 6
    relay = _Relay(sock)  # the engine is back
    try:
        done = subprocess.run([exe, "bench", "--resume", "--results", str(tmp_path / "res"), "--no-progress"], env=env,
                              capture_output=True, text=True, timeout=300)
    finally:
        relay.cut()
    assert done.returncode == 0, done.stderr
    assert sorted(store.read_rows(csv).repeat.astype(int)) == [0, 1, 2, 3, 4, 5]


# --- load ----------------------------------------------------------------------------------------------------------

def test_fifty_concurrent_inspects_of_the_lab_registry(lab_status):
    """Loopback only, bounded: 50 inspects on 10 threads, every one with the right digest."""
    ref = lab_status.base.ref
    assert ref.startswith(("localhost:", "127.0.0.1:")) or lab_status.base.source == "docker-hub"
    if lab_status.base.source == "docker-hub":
        pytest.skip("the lab uses Docker Hub's alpine: no load on a public registry")
    expected = lab_status.base.digest
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(lambda _: manifests.inspect(ref), range(50)))
    assert time.monotonic() - start < 120
    assert [r.digest for r in results] == [expected] * 50
    assert all(len(r.images()) == 3 and all(e.config is not None for e in r.images()) for r in results)
