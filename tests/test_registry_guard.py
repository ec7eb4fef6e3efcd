"""The lab registry never answers 500 to a push: the guard in front of distribution, proven under load.

Distribution rewrites a tag's link file in place, so a HEAD on the tag during a PUT to it can read an empty
file and answer ``500 invalid checksum digest format``; BuildKit's multi-platform push does exactly that
to itself. These tests hammer the race directly over HTTP (through the guard: no error), then push real
multi-platform builds in a row and two at once to one tag, and check every index the registry holds.
"""

import subprocess
import sys
import time
import uuid

import pytest
import requests
from conftest import ROOT, free_port, require

sys.path.insert(0, str(ROOT / "scripts"))
import registry_race

from multiarch_kit import buildx, lab
from multiarch_kit.lab import local_registry as labregistry
from multiarch_kit.oci import manifests, registry
from multiarch_kit.oci.guard import GUARD_HEADER
from multiarch_kit.oci.platforms import AMD64, ARM64

ARTICLE = ROOT / "notebooks" / "article"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture
def guarded(tmp_path):
    """A lab registry of the test's own (distribution on a Unix socket behind the guard), stopped afterwards."""
    import shutil

    require(bool(shutil.which("docker-registry")), "needs Debian's docker-registry")
    cfg = lab.LabConfig(lab_dir=tmp_path / "lab", registry_port=free_port())
    assert labregistry.start_registry(cfg) == "started"
    assert labregistry.registry_info(cfg).kind == labregistry.GUARDED
    try:
        yield cfg
    finally:
        lab.down(cfg)


def test_heads_racing_puts_on_one_tag_never_fail(guarded):
    """Two writers re-tag, two readers HEAD the tag, all at once: without the guard this gives 500s. The race is
    `make bench`'s own (scripts/registry_race.py), which measures it on distribution alone too."""
    failures, heads = registry_race.race(guarded.registry_address, "stress/hammer", puts=150)
    assert heads > 100 and failures == []


def _complete(ref: str, digest: str) -> None:
    """The tag holds ``digest``: an index of exactly amd64 and arm64, each with its attestation, all fetchable."""
    inspection = manifests.inspect(ref)
    assert inspection.digest == digest
    assert sorted(str(e.platform) for e in inspection.images()) == ["linux/amd64", "linux/arm64"]
    attested = {e.descriptor.attests for e in inspection.entries if e.kind == "attestation"}
    assert attested == {e.digest for e in inspection.images()}
    assert all(e.config is not None and e.config.platform.architecture == e.platform.architecture
               for e in inspection.images())


def test_thirty_multi_platform_pushes_in_a_row(lab_status, lab_config):
    name = f"{lab_config.registry_host}/kit-stress/row"
    for i in range(30):
        tag = f"{name}:{uuid.uuid4().hex[:10]}"
        result = buildx.build(ARTICLE, platforms=[AMD64, ARM64], tags=[tag], push=True, base=lab_status.base,
                              labels={"kit-stress": f"{i}-{uuid.uuid4().hex}"}, echo=False)
        _complete(tag, result.digest)


def test_a_stranded_guard_names_itself_and_the_lab_replaces_it(tmp_path):
    """A guard whose registry has gone answers 502 with its pid; `start_registry` replaces it, and only it."""
    import shutil

    require(bool(shutil.which("docker-registry")), "needs Debian's docker-registry")
    port = free_port()
    stranded = subprocess.Popen([sys.executable, "-m", "multiarch_kit.oci.guard", "--listen",
                                 f"127.0.0.1:{port}", "--upstream", f"unix:{tmp_path}/gone.sock"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if registry.stranded_guard(f"localhost:{port}") == stranded.pid:
                break
            time.sleep(0.05)
        answer = requests.get(f"http://127.0.0.1:{port}/v2/", timeout=5)
        assert answer.status_code == 502 and answer.headers[GUARD_HEADER] == str(stranded.pid)
        assert "does not answer" in answer.text
        cfg = lab.LabConfig(lab_dir=tmp_path / "lab", registry_port=port)
        assert labregistry.start_registry(cfg) == "started"
        assert stranded.wait(timeout=30) is not None  # stopped by the lab
        assert registry.ping(f"localhost:{port}") and labregistry.registry_info(cfg).kind == labregistry.GUARDED
        lab.down(cfg)
    finally:
        if stranded.poll() is None:
            stranded.kill()
