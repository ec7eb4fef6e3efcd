"""The engine's facts come through docker-py, from the engine the docker CLI would reach, and print nothing."""

import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import require

from multiarch_kit import engine
from multiarch_kit.core.errors import KitError


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
    assert engine.context_name() == "kit-same"
    assert engine.facts().engine_id == lab_status.engine.engine_id
    monkeypatch.setenv("DOCKER_CONTEXT", "kit-gone")
    assert engine.answers() is False
    with pytest.raises(KitError, match=r"the engine of docker context 'kit-gone' \(unix:///nonexistent/docker.sock\)"
                                       r" does not answer"):
        engine.facts()
    # DOCKER_HOST wins over any context, as with the CLI
    monkeypatch.setenv("DOCKER_HOST", f"unix://{engine.DEFAULT_SOCKET}")
    assert engine.context_name() is None and engine.facts().engine_id == lab_status.engine.engine_id


def test_a_context_that_does_not_exist_is_one_line(docker_config):
    with pytest.raises(KitError, match=r"the engine of docker context 'kit-none' \(context kit-none\) does not "
                                       r"answer: start it, or check the context"):
        engine.client("kit-none")


def test_a_tls_context_gives_the_api_client_its_certificates(docker_config, tmp_path):
    require(shutil.which("openssl") is not None, "needs openssl")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=kit",
                    "-keyout", str(tmp_path / "key.pem"), "-out", str(tmp_path / "cert.pem")], check=True,
                   capture_output=True, timeout=60)
    shutil.copy(tmp_path / "cert.pem", tmp_path / "ca.pem")
    _cli("context", "create", "kit-tls", "--docker",
         f"host=tcp://127.0.0.1:2376,ca={tmp_path / 'ca.pem'},cert={tmp_path / 'cert.pem'},"
         f"key={tmp_path / 'key.pem'}")
    found = engine.daemon._context_endpoint("kit-tls")
    assert found.host == "tcp://127.0.0.1:2376" and found.tls.verify is not False
    cert, key = found.tls.cert
    stored = [Path(p).read_text() for p in (cert, key, found.tls.ca_cert)]
    assert stored == [(tmp_path / name).read_text() for name in ("cert.pem", "key.pem", "ca.pem")]


def test_an_engine_no_context_names_yet_is_asked_at_its_socket(lab_status, tmp_path):
    assert engine.answers(host=f"unix://{engine.DEFAULT_SOCKET}") is True
    assert engine.answers(host=f"unix://{tmp_path / 'no-engine.sock'}") is False
