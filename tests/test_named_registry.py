"""A lab registry two machines can reach: ``MULTIARCH_KIT_REGISTRY=HOST:PORT`` in place of ``localhost:<port>``.

The settings and their one-line errors need no engine; the engine tests serve a registry on this machine's own
non-loopback address, show the engine's refusal before it trusts that name, and push through it after.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import free_port, kit_cli, one_line_error, require

from multiarch_kit import engine, lab
from multiarch_kit.core import commands
from multiarch_kit.core.errors import KitError
from multiarch_kit.core.settings import Settings
from multiarch_kit.engine.daemon import facts_from
from multiarch_kit.lab import local_registry, trust
from multiarch_kit.oci import registry

ENV = "MULTIARCH_KIT_REGISTRY"


def _settings(value: str, **more: str) -> Settings:
    return Settings.from_env({ENV: value, "MULTIARCH_KIT_LAB": "/tmp/unused", **more})


def test_a_named_registry_carries_its_host_and_port_into_every_reference():
    given = _settings("Mac-Mini.local:5001")
    assert (given.registry_name, given.registry_port) == ("mac-mini.local", 5001)
    cfg = lab.LabConfig.of(given)
    assert cfg.named and cfg.port_from_env
    assert cfg.registry_host == "mac-mini.local:5001" == cfg.registry_address
    default = lab.LabConfig.of(Settings.from_env({"MULTIARCH_KIT_LAB": "/tmp/unused"}))
    assert not default.named and default.registry_host == "localhost:5000"
    assert default.registry_address == "127.0.0.1:5000" == default.listen_address()
    assert not lab.LabConfig.of(_settings("127.0.0.1:5002")).named  # loopback by number stays the default


@pytest.mark.parametrize("value, words", [
    ("mac-mini.local", "has no port"),
    ("http://192.168.1.20:5000", "no scheme, no path"),
    ("192.168.1.20:5000/v2", "no scheme, no path"),
    ("192.168.1.20:99999", "'99999' is not a port number"),
    ("192.168.1.20:five", "'five' is not a port number"),
    (":5000", "has no port"),
    ("my_host:5000", "is not a host name or IPv4 address"),
])
def test_a_bad_registry_setting_is_one_line_before_any_command_runs(value, words):
    with pytest.raises(KitError) as caught:
        _settings(value)
    assert words in str(caught.value) and "HOST:PORT" in str(caught.value)
    proc = kit_cli("inspect", "localhost:5000/x", env={ENV: value})
    line = one_line_error(proc)
    assert words in line and f"export {ENV}=" in line


def test_the_two_port_settings_must_agree():
    with pytest.raises(KitError, match="name two ports"):
        _settings("192.168.1.20:5000", MULTIARCH_KIT_REGISTRY_PORT="5001")
    assert _settings("192.168.1.20:5001", MULTIARCH_KIT_REGISTRY_PORT="5001").registry_port == 5001


def test_a_name_that_does_not_resolve_or_is_not_this_machines_is_one_line():
    with pytest.raises(KitError, match="does not resolve here"):
        lab.LabConfig.of(_settings("no-such-host.invalid:5000")).listen_address()
    with pytest.raises(KitError, match=r"203\.0\.113\.9 is not an address of this machine"):
        lab.LabConfig.of(_settings("203.0.113.9:5000")).listen_address()  # TEST-NET-3: nobody's address


def test_a_named_registry_that_does_not_answer_is_one_line():
    port = free_port()
    proc = kit_cli("inspect", f"127.0.0.2:{port}/multiarch-kit/x:1", env={ENV: f"127.0.0.2:{port}"})
    assert f"registry 127.0.0.2:{port} does not answer" in one_line_error(proc)


def test_an_engine_trusts_a_registry_by_name_or_by_network():
    info = {"ServerVersion": "28.5.2", "RegistryConfig": {
        "InsecureRegistryCIDRs": ["::1/128", "127.0.0.0/8", "192.168.0.0/16"],
        "IndexConfigs": {"docker.io": {"Name": "docker.io", "Secure": True},
                         "mac-mini.local:5000": {"Name": "mac-mini.local:5000", "Secure": False}}}}
    facts = facts_from(info, {}, "unix:///var/run/docker.sock")
    assert facts.insecure_registries == ("mac-mini.local:5000",)
    assert facts.trusts("mac-mini.local:5000") and facts.trusts("192.168.1.20:5000")
    assert facts.trusts("localhost:5000") and facts.trusts("127.0.0.1:5000")
    assert not facts.trusts("mac-mini.local:5001") and not facts.trusts("10.0.0.5:5000")
    assert not facts.trusts("docker.io")


def test_a_registry_is_added_to_daemon_json_once_keeping_every_other_setting():
    config = {"features": {"containerd-snapshotter": True}, "insecure-registries": ["10.0.0.5:5000"]}
    added = trust.with_registry(config, "192.168.1.20:5000")
    assert added == {"features": {"containerd-snapshotter": True},
                     "insecure-registries": ["10.0.0.5:5000", "192.168.1.20:5000"]}
    assert trust.with_registry(added, "192.168.1.20:5000") is None
    line = trust.fix_line("192.168.1.20:5000")
    assert '{"insecure-registries": ["192.168.1.20:5000"]}' in line and "Docker Engine" in line


# --- with the engine -------------------------------------------------------------------------------------


def this_machines_address() -> str | None:
    """This machine's first non-loopback IPv4 address, as ``make test-arm64`` picks it (``hostname -I``)."""
    try:
        listed = subprocess.run(["hostname", "-I"], capture_output=True, text=True, timeout=10).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return None
    return next((a for a in listed if a.count(".") == 3 and not a.startswith("127.")), None)


@pytest.fixture()
def named_lab(lab_status, tmp_path):
    """A second lab folder whose registry is named by this machine's address, served there; the engine's
    daemon.json put back as it was afterwards."""
    ip = this_machines_address()
    require(ip is not None, "this machine has no non-loopback IPv4 address")
    require(os.geteuid() == 0 and Path(trust.LAB_DAEMON_JSON).exists() and lab_status.engine.where.uses_default_socket
            and (lab_status.config.paths.run / "dockerd.pid").exists(),
            "the engine is not one the lab provisioned (root, /etc/docker/daemon.json)")
    cfg = lab.LabConfig.of(Settings.from_env({"MULTIARCH_KIT_LAB": str(tmp_path / "lab"),
                                              ENV: f"{ip}:{free_port()}"}))
    # The provisioning script's record of the dockerd it started is what lets the lab edit that engine's daemon.json.
    cfg.paths.run.mkdir(parents=True)
    shutil.copy(lab_status.config.paths.run / "dockerd.pid", cfg.paths.run / "dockerd.pid")
    before = Path(trust.LAB_DAEMON_JSON).read_bytes()
    try:
        yield cfg
    finally:
        local_registry.stop_registry(cfg)
        Path(trust.LAB_DAEMON_JSON).write_bytes(before)
        pid = (lab_status.config.paths.run / "dockerd.pid").read_text().strip()
        os.kill(int(pid), signal.SIGHUP)


@pytest.mark.engine
def test_an_engine_refuses_a_named_plain_http_registry_until_told_then_pushes_to_it(named_lab, lab_status):
    cfg, eng = named_lab, lab_status.engine
    assert local_registry.start_registry(cfg) == "started"
    ip, port = cfg.listen_address().split(":")
    assert registry.ping(f"{ip}:{port}") and not registry.ping(f"127.0.0.1:{port}")  # served where named only
    registry.use_plain_http(cfg.registry_host)
    ref = f"{cfg.registry_host}/multiarch-kit/named:1"
    commands.run(eng.docker("tag", lab_status.base.pinned, ref), echo=False)
    try:
        assert not eng.trusts(cfg.registry_host)
        refused = commands.run(eng.docker("push", ref), echo=False, check=False, timeout=120)
        assert refused.returncode != 0
        assert "server gave HTTP response to HTTPS client" in refused.stderr  # the engine's own words
        said = trust.ensure(cfg, eng, echo=False)
        assert said == f"told the engine {eng.name} to trust {cfg.registry_host} (insecure-registries, reloaded)"
        assert cfg.registry_host in json.loads(Path(trust.LAB_DAEMON_JSON).read_text())["insecure-registries"]
        assert trust.ensure(cfg, engine.connect(where=eng.where), echo=False) is None  # once is enough
        commands.run(eng.docker("push", ref), echo=False, timeout=300)
        ours = registry.Registry(cfg.registry_host, "multiarch-kit/named").get_manifest("1")
        raw = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
                             capture_output=True, check=True).stdout
        assert ours.digest == registry.sha256_digest(raw)
    finally:
        commands.run(eng.docker("rmi", ref), echo=False, check=False)


@pytest.mark.engine
def test_the_lab_registry_moves_to_the_named_address_and_back_keeping_its_images(named_lab, lab_status):
    cfg = named_lab
    loopback = lab.LabConfig(lab_dir=cfg.lab_dir, registry_port=cfg.registry_port, port_from_env=True)
    assert local_registry.start_registry(loopback) == "started"
    assert registry.ping(loopback.registry_address)
    assert local_registry.start_registry(cfg) == "started"  # the same storage, now on the named address
    deadline = time.monotonic() + 5
    while registry.ping(loopback.registry_address) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert registry.ping(cfg.listen_address()) and not registry.ping(loopback.registry_address)
    assert json.loads(cfg.state_file.read_text())["listen"] == cfg.listen_address()
    assert local_registry.start_registry(cfg) == "reused"
    assert Path(cfg.registry_socket).exists()


def test_an_engine_the_lab_does_not_run_gets_the_json_to_add(tmp_path):
    cfg = lab.LabConfig.of(Settings.from_env({"MULTIARCH_KIT_LAB": str(tmp_path), ENV: "192.0.2.77:5000"}))
    facts = facts_from({"ServerVersion": "29.0.1", "OperatingSystem": "Docker Desktop"}, {}, "unix:///x.sock")
    desktop = engine.Engine(**{f: getattr(facts, f) for f in facts.__dataclass_fields__},
                            kind=engine.daemon.Kind.DESKTOP)
    with pytest.raises(KitError) as caught:
        trust.ensure(cfg, desktop)
    line = str(caught.value)
    assert "does not trust the plain-HTTP registry 192.0.2.77:5000" in line
    assert '{"insecure-registries": ["192.0.2.77:5000"]}' in line and "\n" not in line
