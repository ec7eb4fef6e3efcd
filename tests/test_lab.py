"""The lab against the real engine and registry, and its one-line errors."""

import dataclasses
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from conftest import ROOT, free_port, kit_cli, loopback_registry, one_line_error, require

from multiarch_kit import engine, lab
from multiarch_kit.core import commands
from multiarch_kit.core.errors import KitError
from multiarch_kit.lab import base, standins
from multiarch_kit.lab import local_registry as labregistry
from multiarch_kit.oci import registry

LAB_PLATFORMS = {("linux", "amd64", None), ("linux", "arm64", None), ("linux", "arm", "v7")}
ACCEPT = {"Accept": "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json"}


def test_engine_reports_containerd_snapshotter(lab_status):
    assert lab_status.engine.containerd_store and lab_status.engine.image_store == "containerd"
    # Cross-check with the CLI's own view.
    out = subprocess.run(["docker", "info", "--format", "{{json .DriverStatus}}"], capture_output=True, text=True)
    assert "io.containerd.snapshotter.v1" in out.stdout


def test_registry_answers_v2_on_loopback_only(lab_status, lab_config):
    resp = requests.get(f"http://{lab_config.registry_address}/v2/", timeout=5)
    assert resp.status_code == 200
    assert resp.headers["Docker-Distribution-Api-Version"] == "registry/2.0"
    listeners = _listeners(lab_config.registry_port)
    assert listeners == {"127.0.0.1"}, listeners


def _listeners(port: int) -> set[str]:
    """Local addresses listening on ``port``, read from the kernel's socket tables."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in open(table).read().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            addr, hexport = local.split(":")
            if state == "0A" and int(hexport, 16) == port:
                found.add(socket.inet_ntop(socket.AF_INET, bytes.fromhex(addr)[::-1]) if len(addr) == 8 else addr)
    return found


def _get(url, **headers):
    resp = requests.get(url, headers=headers, timeout=10)
    resp.raise_for_status()
    return resp


def test_standin_index_lists_exactly_the_lab_platforms(lab_status, lab_config):
    if lab_status.base.source != "stand-in":
        pytest.skip("Docker Hub answers: the lab uses the real alpine:3.18")
    root = f"http://{lab_config.registry_address}/v2/{base.STANDIN_REPOSITORY}"
    resp = _get(f"{root}/manifests/{base.STANDIN_TAG}", **ACCEPT)
    digest = "sha256:" + hashlib.sha256(resp.content).hexdigest()
    assert resp.headers["Docker-Content-Digest"] == digest == lab_status.base.digest
    index = resp.json()
    seen = set()
    for entry in index["manifests"]:
        p = entry["platform"]
        seen.add((p["os"], p["architecture"], p.get("variant")))
        child = _get(f"{root}/manifests/{entry['digest']}", Accept=entry["mediaType"])
        assert "sha256:" + hashlib.sha256(child.content).hexdigest() == entry["digest"]
        config = _get(f"{root}/blobs/{child.json()['config']['digest']}").json()
        assert (config["os"], config["architecture"], config.get("variant")) == (p["os"], p["architecture"], p.get("variant"))
        assert config["config"]["Labels"]["org.opencontainers.image.description"].startswith("STAND-IN for alpine:3.18")
    assert seen == LAB_PLATFORMS


def test_standin_bytes_equal_skopeos(lab_status, lab_config):
    if lab_status.base.source != "stand-in":
        pytest.skip("Docker Hub answers: the lab uses the real alpine:3.18")
    ref = f"docker://{lab_config.registry_host}/{base.STANDIN_REPOSITORY}:{base.STANDIN_TAG}"
    raw = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", ref], capture_output=True, check=True).stdout
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == lab_status.base.digest
    cfg = subprocess.run(["skopeo", "inspect", "--config", "--tls-verify=false", "--override-arch", "arm",
                          "--override-variant", "v7", ref], capture_output=True, check=True, text=True).stdout
    assert (json.loads(cfg)["architecture"], json.loads(cfg)["variant"]) == ("arm", "v7")


def test_a_standin_is_made_once_per_recipe_and_carries_it(lab_status, lab_config, tmp_path, capsys):
    """The article's stand-in made in a lab of its own: pushed, its recipe stamped and labelled, then found again
    without a build; another recipe is not current."""
    if lab_status.base.source != "stand-in":
        pytest.skip("Docker Hub answers: the lab uses the real alpine:3.18")
    cfg = lab.LabConfig(lab_dir=tmp_path / "lab", registry_port=free_port())
    (cfg.lab_dir / "base").mkdir(parents=True)
    (cfg.lab_dir / "base" / "debs").symlink_to(lab_config.lab_dir / "base" / "debs")
    assert labregistry.start_registry(cfg) == "started"
    try:
        made, built = base.ensure(cfg)
        recipe = base.recipe(base.find_debs(cfg.lab_dir / "base" / "debs", cfg.platforms))
        assert built and made.source == "stand-in" and made.ref == f"{cfg.registry_host}/{base.STANDIN_REPOSITORY}:3.18"
        assert f"Pushing the stand-in base image to {made.ref} (one index, 3 platforms)" in capsys.readouterr().out
        assert base.STANDIN.stamp(cfg.lab_dir).read_text() == recipe
        root = f"http://{cfg.registry_address}/v2/{base.STANDIN_REPOSITORY}"
        index = _get(f"{root}/manifests/{base.STANDIN_TAG}", **ACCEPT)
        assert index.headers["Docker-Content-Digest"] == made.digest
        entry = index.json()["manifests"][0]
        child = _get(f"{root}/manifests/{entry['digest']}", Accept=entry["mediaType"]).json()
        labels = _get(f"{root}/blobs/{child['config']['digest']}").json()["config"]["Labels"]
        assert labels[standins.RECIPE_LABEL] == recipe and labels[standins.DESCRIPTION_LABEL] == base.STANDIN_DESCRIPTION
        again, built_again = base.ensure(cfg)
        assert (again.digest, built_again) == (made.digest, False) and "Pushing" not in capsys.readouterr().out
        assert base.STANDIN.current(cfg, "0" * 64) is None
    finally:
        labregistry.stop_registry(cfg)


def test_second_up_changes_nothing(lab_status, lab_config):
    before_state = lab_config.state_file.read_text()
    again = lab.up(lab_config, check_runs=False)
    assert again.actions == []
    assert again.base.digest == lab_status.base.digest
    assert lab_config.state_file.read_text() == before_state  # same registry process


# --- one-line errors -------------------------------------------------------------------------------


def test_port_taken_by_another_program(lab_status):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = kit_cli("lab", "up", env={"MULTIARCH_KIT_REGISTRY_PORT": str(port)})
    assert proc.returncode == 2
    line = one_line_error(proc)
    assert f"port {port} on 127.0.0.1 is taken" in line and "AirPlay" in line
    assert "MULTIARCH_KIT_REGISTRY_PORT=5001" in line


class _AirPlayLike:
    """A program on a port that answers HTTP but is not a registry, as macOS's AirPlay Receiver does on 5000."""

    def __init__(self, port: int = 0):
        import http.server
        import threading

        class Forbidden(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(403)
                self.send_header("Server", "AirTunes/620.8.2")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Forbidden)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_the_lab_moves_off_a_port_another_program_holds_records_it_and_serves_there(tmp_path, monkeypatch):
    held = _AirPlayLike()
    try:
        lab_dir = tmp_path / "lab"
        cfg = lab.LabConfig(lab_dir=lab_dir, registry_port=held.port)
        moved_cfg, line = labregistry.choose_port(cfg)
        new = moved_cfg.registry_port
        assert new != held.port and held.port < new <= held.port + labregistry.PORT_TRIES
        assert f"port {held.port} on 127.0.0.1 is taken" in line and f"uses port {new}" in line and "AirPlay" in line
        assert "\n" not in line
        # Every later command reads the recorded port: the settings made from the environment name it.
        monkeypatch.setenv("MULTIARCH_KIT_LAB", str(lab_dir))
        monkeypatch.delenv("MULTIARCH_KIT_REGISTRY_PORT", raising=False)
        assert lab.LabConfig.from_env().registry_port == new
        # The registry really serves on the new port (Debian's distribution behind the guard, as lab up starts it).
        if shutil.which("docker-registry"):
            assert labregistry.start_registry(moved_cfg) == "started"
            try:
                assert registry.ping(f"127.0.0.1:{new}") and not registry.ping(f"127.0.0.1:{held.port}")
            finally:
                labregistry.stop_registry(moved_cfg)
        # Asked again with the recorded port free, nothing moves.
        assert labregistry.choose_port(lab.LabConfig.from_env()) == (lab.LabConfig.from_env(), None)
    finally:
        held.close()


def test_a_port_the_reader_set_is_never_moved(tmp_path, monkeypatch):
    held = _AirPlayLike()
    try:
        monkeypatch.setenv("MULTIARCH_KIT_LAB", str(tmp_path / "lab"))
        monkeypatch.setenv("MULTIARCH_KIT_REGISTRY_PORT", str(held.port))
        cfg = lab.LabConfig.from_env()
        assert cfg.port_from_env and labregistry.choose_port(cfg) == (cfg, None)
        assert not cfg.port_record.exists()
    finally:
        held.close()


def test_the_port_record_is_read_only_without_the_variable(tmp_path, monkeypatch):
    lab_dir = tmp_path / "lab"
    monkeypatch.setenv("MULTIARCH_KIT_LAB", str(lab_dir))
    monkeypatch.delenv("MULTIARCH_KIT_REGISTRY_PORT", raising=False)
    assert lab.LabConfig.from_env().registry_port == 5000
    (lab_dir / "registry").mkdir(parents=True)
    (lab_dir / "registry" / "port.json").write_text('{"port": 5003, "taken": 5000}')
    assert lab.LabConfig.from_env().registry_port == 5003
    monkeypatch.setenv("MULTIARCH_KIT_REGISTRY_PORT", "5009")
    assert lab.LabConfig.from_env().registry_port == 5009
    monkeypatch.delenv("MULTIARCH_KIT_REGISTRY_PORT")
    (lab_dir / "registry" / "port.json").write_text('{"port": "5003"}')  # damaged: the default again
    assert lab.LabConfig.from_env().registry_port == 5000


def test_bad_port_value():
    proc = kit_cli("lab", "status", env={"MULTIARCH_KIT_REGISTRY_PORT": "fivethousand"})
    assert proc.returncode == 2
    assert "'fivethousand' is not a port number" in one_line_error(proc)


def test_engine_not_running():
    proc = kit_cli("lab", "up", env={"DOCKER_HOST": "unix:///tmp/multiarch-kit-no-engine.sock"})
    assert proc.returncode == 2
    line = one_line_error(proc)
    assert "no Docker engine answers at unix:///tmp/multiarch-kit-no-engine.sock" in line
    assert "unset DOCKER_HOST" in line


def test_doctor_shows_engine_failure_as_a_row():
    proc = kit_cli("doctor", "--format", "json", env={"DOCKER_HOST": "unix:///tmp/multiarch-kit-no-engine.sock"})
    assert proc.returncode == 1
    rows = {r["check"]: r for r in json.loads(proc.stdout)}
    assert rows["engine"]["status"] == "fail" and "DOCKER_HOST" in rows["engine"]["fix"]


@pytest.mark.parametrize(
    "system, is_root, debian, default_socket, expected",
    [
        ("Darwin", False, False, True, "start Docker Desktop"),
        ("Linux", False, True, True, "provisioning an engine needs root: run 'sudo make run'"),
        ("Linux", True, True, True, "multiarch-kit lab up"),
        ("Linux", True, False, True, "install and start Docker Engine"),
        ("Linux", True, True, False, "unset DOCKER_HOST"),
    ],
)
def test_engine_fix_fits_the_host(system, is_root, debian, default_socket, expected):
    assert expected in engine.engine_fix(system, is_root, debian, default_socket)


def _root_with_unshare() -> bool:
    import os
    import shutil

    return os.geteuid() == 0 and bool(shutil.which("unshare")) and bool(shutil.which("setpriv"))


def test_provision_script_refuses_non_root():
    require(_root_with_unshare(), "needs root and util-linux's setpriv (Linux)")
    proc = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "bash",
                           str(lab.PROVISION_SCRIPT)], capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.strip() == ("provision-debian: run as root (sudo " + str(lab.PROVISION_SCRIPT)
                                   + "): it installs packages and starts dockerd.")


def test_missing_buildx(lab_status):
    """Hide the buildx plugin in a private mount namespace: the kit must say how to install it."""
    require(_root_with_unshare(), "needs root and util-linux's unshare (Linux)")
    plugins = json.loads(subprocess.run(["docker", "info", "--format", "{{json .ClientInfo.Plugins}}"],
                                        capture_output=True, text=True, check=True).stdout)
    plugin_dir = next(p["Path"] for p in plugins if p["Name"] == "buildx").rsplit("/", 1)[0]
    hide = ["unshare", "-m", "sh", "-c", f'mount -t tmpfs tmpfs "{plugin_dir}" && exec "$@"', "sh"]
    proc = kit_cli("lab", "status", prefix=hide)
    assert proc.returncode == 2
    line = one_line_error(proc)
    assert "docker buildx is not installed" in line and "apt-get install docker-buildx" in line
    doc = kit_cli("doctor", "--format", "json", prefix=hide)
    rows = {r["check"]: r for r in json.loads(doc.stdout)}
    assert rows["buildx"]["status"] == "fail"


def test_kit_error_is_one_line():
    err = KitError("something broke", "do this")
    assert str(err) == "something broke: do this"


def test_down_stops_only_what_the_lab_started(lab_status, tmp_path):
    """A registry the reader runs is used but never stopped; the lab's own one is stopped."""
    with loopback_registry(tmp_path) as outside:
        outside_port = int(outside.rsplit(":", 1)[1])
        other = lab.LabConfig(lab_dir=tmp_path / "lab-a", registry_port=outside_port)
        assert labregistry.start_registry(other) == "reused"
        assert labregistry.registry_info(other).kind == "external"
        assert lab.down(other) == []
        assert registry.ping(f"127.0.0.1:{outside_port}")

        ours_port = free_port()
        mine = lab.LabConfig(lab_dir=tmp_path / "lab-b", registry_port=ours_port)
        assert labregistry.start_registry(mine) == "started"
        info = labregistry.registry_info(mine)
        assert (info.kind, info.started_by_lab) == ("docker-registry + guard", True)
        stopped = lab.down(mine)
        assert len(stopped) == 1 and stopped[0].startswith("registry")
        assert not registry.ping(f"127.0.0.1:{ours_port}")
        assert registry.ping(f"127.0.0.1:{outside_port}")


def test_a_service_stops_as_printed_and_is_killed_when_it_ignores_the_request(tmp_path, capsys):
    """``commands.stop``, which stops the lab's registry, guard and engines: `kill PID`, then SIGKILL if need be."""
    polite = commands.start(["sleep", "60"], log=tmp_path / "polite.log", echo=False)
    assert commands.stop(polite.pid, what="a sleep") is True
    assert capsys.readouterr().out == f"$ kill {polite.pid}  # a sleep\n"
    assert not commands.alive(polite.pid)

    ignores = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); " \
              "time.sleep(60)"
    stubborn = commands.start([sys.executable, "-c", ignores], log=tmp_path / "stubborn.log", echo=False)
    deadline = time.monotonic() + 30
    while "ready" not in (tmp_path / "stubborn.log").read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    started = time.monotonic()
    assert commands.stop(stubborn.pid, echo=False, seconds=1) is True
    assert 1 <= time.monotonic() - started < 10 and not commands.alive(stubborn.pid)
    assert commands.stop(stubborn.pid) is False and capsys.readouterr().out == ""  # gone: nothing to print or do


def test_a_warm_up_proves_the_platforms_only_when_something_changed(lab_status, lab_config, capsys):
    first = lab.up(lab_config, check=True)  # asked: the proof containers run
    assert [r.machine for r in first.runs] == ["x86_64", "aarch64", "armv7l"] and all(r.ok for r in first.runs)
    assert capsys.readouterr().out.count("uname -m") == 3
    again = lab.up(lab_config)  # nothing changed: the earlier proof stands, no container starts
    assert again.proven_at == first.proven_at and [r.machine for r in again.runs] == [r.machine for r in first.runs]
    assert "uname -m" not in capsys.readouterr().out and again.actions == []
    proof = json.loads(lab_config.proof_file.read_text())
    proof["fingerprint"]["binfmt"] = "handlers as they were before a change"
    lab_config.proof_file.write_text(json.dumps(proof))
    changed = lab.up(lab_config)  # something changed: proven again
    assert capsys.readouterr().out.count("uname -m") == 3
    assert any("something changed" in a for a in changed.actions)


def test_a_second_lab_command_waits_for_the_first(tmp_path):
    """Two `lab up`/`lab down` on one lab folder take turns: the second says it waits, then does its work."""
    cfg = lab.LabConfig(lab_dir=tmp_path / "lab", registry_port=free_port())
    env = {"MULTIARCH_KIT_LAB": str(cfg.lab_dir), "MULTIARCH_KIT_REGISTRY_PORT": str(cfg.registry_port)}
    exe = Path(sys.executable).parent / "multiarch-kit"
    with lab.exclusive(cfg):
        second = subprocess.Popen([exe, "lab", "down"], env={**os.environ, **env}, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        time.sleep(3)
        assert second.poll() is None  # still waiting: this test holds the lab
    out, err = second.communicate(timeout=60)
    assert second.returncode == 0, err
    assert f"another 'lab up' or 'lab down' is at work on {cfg.lab_dir}: waiting for it" in err
    assert out.strip() == "stopped: nothing (the lab had started nothing)"


def test_an_unwritable_lab_folder_is_one_line(tmp_path):
    (tmp_path / "file").write_text("")
    line = one_line_error(kit_cli("lab", "down", env={"MULTIARCH_KIT_LAB": str(tmp_path / "file" / "lab")}))
    assert "cannot write the lab folder" in line and "MULTIARCH_KIT_LAB" in line


def environment_reads(package: Path) -> list[str]:
    """Every use of ``os.environ``, ``os.getenv`` or ``os.putenv`` in ``package`` (``from os import environ`` too),
    outside the settings module and the command line: ``file:line``."""
    import ast

    found = []
    for path in sorted(package.rglob("*.py")):
        where = path.relative_to(package).as_posix()
        if where == "core/settings.py" or where.startswith("cli/"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            used = (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os"
                    and node.attr in ("environ", "getenv", "putenv", "unsetenv", "environb"))
            imported = isinstance(node, ast.ImportFrom) and node.module == "os" and any(
                a.name in ("environ", "getenv", "putenv") for a in node.names)
            if used or imported:
                found.append(f"{where}:{node.lineno}")
    return found


def test_the_environment_is_read_in_the_settings_module_alone(tmp_path):
    assert environment_reads(ROOT / "multiarch_kit") == []
    # A read planted below the edge is seen, in either spelling.
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "profiling.py").write_text("import os\n\ndef f():\n    return os.environ.get('X')\n")
    (tmp_path / "bench" / "store.py").write_text("from os import getenv\n")
    assert environment_reads(tmp_path) == ["bench/profiling.py:4", "bench/store.py:1"]


def test_reading_the_lab_changes_nothing_in_a_read_only_lab_folder(lab_status, tmp_path, monkeypatch):
    """lab.read(), lab.status() and the doctor only look: on a copy of the lab folder that nobody may write, they
    answer, and the folder is byte for byte as it was."""
    import shutil
    import stat

    from multiarch_kit.lab import doctor

    copy = tmp_path / "lab"
    shutil.copytree(lab_status.config.lab_dir, copy, ignore=shutil.ignore_patterns(
        "registry", "nodes", "arm64-vm", "buildbase", "sources", "run", "logs", "*.lock",
        "newest-docker"), symlinks=True)  # a root filesystem: its /dev holds device nodes, which copying would read
    (copy / "registry").mkdir()
    shutil.copy(lab_status.config.lab_dir / "registry" / "started.json", copy / "registry" / "started.json")
    before = {p: p.read_bytes() for p in copy.rglob("*") if p.is_file()}
    modes = {p: p.stat().st_mode for p in [copy, *copy.rglob("*")]}
    for p in modes:
        p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    cfg = dataclasses.replace(lab_status.config, lab_dir=copy)
    try:
        assert lab.read(cfg).engine.engine_id == lab_status.engine.engine_id
        assert lab.status(cfg).builder.name == lab_status.builder.name
        assert {r.check for r in doctor.run_checks(cfg)} >= {"engine", "registry", "base image"}
    finally:
        for p, mode in modes.items():
            p.chmod(mode)
    assert {p: p.read_bytes() for p in copy.rglob("*") if p.is_file()} == before


def test_doctor_names_what_starts_a_stopped_lab_engine(tmp_path):
    from types import SimpleNamespace

    from multiarch_kit.lab import doctor

    for folder in ("node2", "node2-classic"):
        (tmp_path / "nodes" / folder).mkdir(parents=True)
    rows = {r.check: r for r in doctor._nodes(SimpleNamespace(lab_dir=tmp_path))}
    classic, plain = rows["engine multiarch-kit-node2-classic"], rows["engine multiarch-kit-node2"]
    # Stopped is how a lesson leaves its engine: nothing to fix, and the row says who starts it.
    assert (classic.status, classic.fix, plain.status, plain.fix) == (doctor.PASS, "", doctor.PASS, "")
    assert classic.detail == "stopped (notebooks 08 and 09 and the engine tests start it for the classic image " \
                             "store and stop it after)"
    assert plain.detail == "stopped ('multiarch-kit lab up --nodes N' starts it, 'lab down' stops it; notebook 10 " \
                           "and the engine tests start it and stop it after)"


def test_the_doctor_names_the_versions_each_part_reports_and_the_cli_trap_when_there_is_one(lab_status):
    """Five versions, each read from the part itself (docker version's client and server, buildx version, the
    builder's node), and the CLI-against-engine trap exactly when they are more than a major version apart."""
    reported = json.loads(commands.run(engine.docker("version", "--format", "{{json .}}"), echo=False).stdout)
    server = {c["Name"]: c["Version"] for c in reported["Server"]["Components"]}
    buildx = commands.run(engine.docker("buildx", "version"), echo=False).stdout.split()[1]
    inspected = commands.run(engine.docker("buildx", "inspect"), echo=False).stdout
    buildkit = next(line.split(":", 1)[1].strip() for line in inspected.splitlines()
                    if line.split(":")[0].strip().lower() in ("buildkit", "buildkit version"))
    rows = json.loads(kit_cli("doctor", "--format", "json").stdout)
    versions = next(r for r in rows if r["check"] == "versions")
    assert versions["detail"] == (
        f"engine {server['Engine']} (API {reported['Server']['ApiVersion']}), CLI {reported['Client']['Version']}, "
        f"buildx {buildx}, BuildKit {buildkit}, containerd {server['containerd']}")
    apart = abs(int(reported["Client"]["Version"].split(".")[0]) - int(server["Engine"].split(".")[0])) > 1
    traps = [r["detail"] for r in rows if r["check"] == "version trap"]
    # The lab engine has buildx 0.10+ and the containerd store: only the CLI can make a trap here.
    assert [t.split(" (")[0] for t in traps] == (["the docker CLI"] if apart else [])
