"""The engine's facts come through docker-py, from the engine the docker CLI would reach, and print nothing."""

import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import require

from multiarch_kit import engine
from multiarch_kit.core import settings
from multiarch_kit.core.errors import KitError
from multiarch_kit.engine import contexts


def _cli(*args: str, env: dict[str, str] | None = None) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True, timeout=60,
                          env=env).stdout.strip()


def test_facts_through_the_api_are_what_the_cli_reports_and_nothing_is_printed(lab_status, capsys):
    facts = engine.facts()
    assert capsys.readouterr().out == ""  # the kit's own question, never shown as a command line
    version, api = _cli("version", "--format", "{{.Server.Version}} {{.Server.APIVersion}}").split()
    engine_id, driver, arch = _cli("info", "--format", "{{.ID}} {{.Driver}} {{.Architecture}}").split()
    assert (facts.server_version, facts.api_version, facts.engine_id, facts.storage_driver) == (
        version, api, engine_id, driver)
    assert facts.platform == lab_status.engine.platform and arch in ("x86_64", "aarch64", "armv7l")


@pytest.fixture
def docker_config(tmp_path, monkeypatch):
    """An empty Docker client configuration of the test's own (no config.json: docker-py cannot see its
    contexts, the CLI can)."""
    require(shutil.which("docker") is not None, "needs the docker CLI")
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    return tmp_path / "docker-config"


def test_the_current_context_is_the_one_the_cli_uses(lab_status, docker_config, monkeypatch):
    _cli("context", "create", "kit-same", "--docker", f"host=unix://{engine.DEFAULT_SOCKET}")
    _cli("context", "create", "kit-gone", "--docker", "host=unix:///nonexistent/docker.sock")
    monkeypatch.setenv("DOCKER_CONTEXT", "kit-same")
    same = engine.facts()
    assert (same.context, same.named, same.engine_id) == ("kit-same", False, lab_status.engine.engine_id)
    assert same.docker("info") == ["docker", "info"]  # the CLI finds DOCKER_CONTEXT's engine by itself
    monkeypatch.setenv("DOCKER_CONTEXT", "kit-gone")
    assert engine.answers() is False
    with pytest.raises(KitError, match=r"the engine of docker context 'kit-gone' \(unix:///nonexistent/docker.sock\)"
                                       r" does not answer"):
        engine.facts()
    # DOCKER_HOST wins over any context, as with the CLI
    monkeypatch.setenv("DOCKER_HOST", f"unix://{engine.DEFAULT_SOCKET}")
    found = engine.facts()
    assert found.context is None and found.name == "default" and found.engine_id == lab_status.engine.engine_id


def test_a_context_that_does_not_exist_is_one_line(docker_config):
    with pytest.raises(KitError, match=r"there is no Docker context 'kit-none' here: create it"):
        engine.facts("kit-none")
    assert engine.answers("kit-none") is False


def test_reading_an_engine_through_a_context_inspects_it_once(lab_status, docker_config, monkeypatch):
    """ARCHITECTURE.md: the edge reads the engine once; a named context costs one `docker context inspect`."""
    from multiarch_kit.core import commands

    _cli("context", "create", "kit-count", "--description", contexts.LAB_NODE, "--docker",
         f"host=unix://{engine.DEFAULT_SOCKET}")
    ran = []
    real = commands.run
    monkeypatch.setattr(commands, "run", lambda argv, **kw: ran.append(list(argv)) or real(argv, **kw))
    node = engine.connect(settings.read(), "kit-count")
    assert ran == [["docker", "context", "inspect", "kit-count"]]  # and the API, which runs no command
    assert (node.kind, node.named, node.engine_id) == (engine.Kind.LAB_NODE, True, lab_status.engine.engine_id)
    assert node.docker("info") == ["docker", "--context", "kit-count", "info"]


def test_a_tls_context_gives_the_api_client_its_certificates(docker_config, tmp_path):
    require(shutil.which("openssl") is not None, "needs openssl")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=kit",
                    "-keyout", str(tmp_path / "key.pem"), "-out", str(tmp_path / "cert.pem")], check=True,
                   capture_output=True, timeout=60)
    shutil.copy(tmp_path / "cert.pem", tmp_path / "ca.pem")
    _cli("context", "create", "kit-tls", "--docker",
         f"host=tcp://127.0.0.1:2376,ca={tmp_path / 'ca.pem'},cert={tmp_path / 'cert.pem'},"
         f"key={tmp_path / 'key.pem'}")
    found = contexts.inspect("kit-tls")
    assert found.host == "tcp://127.0.0.1:2376" and found.tls.verify is not False
    cert, key = found.tls.cert
    stored = [Path(p).read_text() for p in (cert, key, found.tls.ca_cert)]
    assert stored == [(tmp_path / name).read_text() for name in ("cert.pem", "key.pem", "ca.pem")]


def test_an_engine_no_context_names_yet_is_asked_at_its_socket(lab_status, tmp_path):
    assert engine.answers(engine.Where(None, f"unix://{engine.DEFAULT_SOCKET}")) is True
    assert engine.answers(engine.Where(None, f"unix://{tmp_path / 'no-engine.sock'}")) is False


def _context(description: str, host: str = "ssh://multiarch-kit-arm64:2222") -> dict:
    """One entry of `docker context inspect`, as the CLI prints it."""
    return {"Name": "some-context", "Metadata": {"Description": description},
            "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": False}}, "TLSMaterial": {},
            "Storage": {"MetadataPath": "/x", "TLSPath": "/y"}}


@pytest.mark.parametrize(("description", "operating_system", "kernel", "kind"), [
    (contexts.ARM64_VM, "Debian GNU/Linux 13 (trixie)", "6.12.0-arm64", engine.Kind.ARM64_VM),
    (contexts.LAB_NODE, "Debian GNU/Linux 12 (bookworm)", "6.1.0", engine.Kind.LAB_NODE),
    ("", "Docker Desktop", "6.10.14-linuxkit", engine.Kind.DESKTOP),
    ("my M2", "Debian GNU/Linux 13 (trixie)", "6.12.0-arm64", engine.Kind.REMOTE),
])
def test_an_engines_kind_is_read_once_from_its_context_and_its_answers(description, operating_system, kernel, kind):
    found = contexts.parse(_context(description))
    where = engine.Where(found.name, found.host, found.tls, found.description, named=True)
    facts = engine.facts_from({"ServerVersion": "29.0.1", "Architecture": "aarch64", "OperatingSystem": operating_system,
                               "KernelVersion": kernel}, {}, where.host)
    assert engine.kind_of(where, facts) is kind


def test_a_context_without_a_docker_host_is_none():
    assert contexts.parse({"Name": "k8s-only", "Endpoints": {}}) is None
    assert contexts.parse("not an object") is None
