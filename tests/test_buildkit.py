"""The lab's BuildKit image and its docker-container builder (multiarch_kit/lab/buildkit.py).

The unit tests check the command lines and the config as a reader would type them; the engine tests make the
builder for real and check what it does that the engine's own builder cannot: a reproducible push, read back from
the registry and compared with skopeo's digest, and several platforms in one build.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from multiarch_kit import buildx, engine
from multiarch_kit.buildx.argv import BuildOptions
from multiarch_kit.buildx.runner import _reproducible
from multiarch_kit.core.errors import KitError
from multiarch_kit.lab import article, buildkit, multinode
from multiarch_kit.oci import manifests, registry
from multiarch_kit.oci.platforms import Platform
from multiarch_kit.verify import elf

AMD64, ARM64 = Platform.parse("linux/amd64"), Platform.parse("linux/arm64")


def test_config_marks_the_lab_registry_plain_http_and_carries_the_engines_mirrors():
    assert buildkit.buildkitd_config("localhost:5000") == '[registry."localhost:5000"]\n  http = true\n'
    text = buildkit.buildkitd_config("localhost:5001", ("http://10.0.0.1:5000/", "https://mirror.example:443"))
    assert text.splitlines() == [
        '[registry."localhost:5001"]', "  http = true",
        '[registry."10.0.0.1:5000"]', "  http = true",
        '[registry."docker.io"]', '  mirrors = ["10.0.0.1:5000", "mirror.example:443"]']


def _engine(context: str | None) -> engine.Engine:
    facts = engine.facts_from({"ServerVersion": "26.1.5", "Architecture": "x86_64", "ID": "e"}, {}, "unix:///x")
    return engine.Engine(**vars(facts), context=context, named=context is not None)


def test_create_line_is_the_one_a_reader_types():
    where = _engine(None)
    argv = buildkit.create_argv("b", Path("/lab/buildkitd.toml"), "localhost:5000/x@sha256:" + "0" * 64, where)
    assert argv == ["docker", "buildx", "create", "--name", "b", "--driver", "docker-container",
                    "--driver-opt", "image=localhost:5000/x@sha256:" + "0" * 64, "--driver-opt", "network=host",
                    "--buildkitd-config", "/lab/buildkitd.toml", "--bootstrap"]
    hub = buildkit.create_argv("b", Path("c.toml"), None, where)
    assert not any(a.startswith("image=") for a in hub)  # Docker Hub's moby/buildkit, the driver's default
    assert buildkit.create_argv("b", Path("c.toml"), None, _engine("vm"))[:3] == ["docker", "--context", "vm"]


def test_binaries_are_built_for_every_platform_from_the_source_package():
    argv = buildkit.binaries_argv("http://mirror.invalid/debian", Path("/out"))
    assert argv[-2:] == ["deb http://mirror.invalid/debian trixie main", "deb-src http://mirror.invalid/debian trixie main"]
    assert '--customize-hook=chroot "$1" sh /build-buildkit.sh /out amd64 arm64' in argv
    assert "--customize-hook=sync-out /out /out" in argv
    script = buildkit.BUILD_SCRIPT.read_text()
    assert "GOARCH=$arch go build" in script and "CGO_ENABLED=0" in script


def test_runtime_root_is_unpacked_only_so_no_emulator_runs():
    argv = buildkit.runtime_argv(ARM64, "http://mirror.invalid/debian", Path("/r.tar"))
    assert "--variant=extract" in argv and "--architectures=arm64" in argv and "--include=runc" in argv
    assert "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr" in argv  # /lib/ld-linux-*.so resolves


def test_a_binary_of_the_wrong_architecture_is_refused(tmp_path):
    true = Path(shutil.which("true")).resolve()
    with open(true, "rb") as f:
        here = elf.read_elf(f).architecture
    for p in buildkit.PLATFORMS:
        (tmp_path / p.architecture).mkdir()
        for name in ("buildkitd", "buildctl"):
            shutil.copy(true, tmp_path / p.architecture / name)
    other = next(p for p in buildkit.PLATFORMS if p.architecture != here)
    with pytest.raises(KitError, match=f"{here} binary in a {other} image"):
        buildkit.check_binaries(tmp_path)


def test_a_reproducible_push_of_one_tag_becomes_an_image_output():
    o = BuildOptions.of(platforms=[AMD64], tags=["localhost:5000/a/b:c"], push=True)
    r = _reproducible(o)
    assert (r.push, r.tags) == (False, ())
    assert r.output == "type=image,name=localhost:5000/a/b:c,push=true,rewrite-timestamp=true"
    with pytest.raises(KitError, match="a push of one tag"):
        _reproducible(BuildOptions.of(platforms=[AMD64], tags=["r/a:1", "r/a:2"], push=True))


# --- on the engine ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def container_builder(lab_status):
    return lab_status.container_builder(echo=False)


def test_the_builder_runs_buildkit_in_a_container(container_builder, lab_status):
    b = container_builder.builder
    assert (b.name, b.driver) == (buildkit.BUILDER, "docker-container")
    assert [n.status for n in b.nodes] == ["running"]
    assert {AMD64, ARM64} <= set(b.platforms)
    inspect = subprocess.run(["docker", "buildx", "inspect", buildkit.BUILDER], capture_output=True, text=True,
                             check=True).stdout
    assert "docker-container" in inspect
    if lab_status.base.source == "stand-in":  # the image the node runs is the lab's stand-in, pinned
        assert container_builder.image.startswith(buildkit.STANDIN.ref(lab_status.registry.host) + "@sha256:")


def test_the_standin_holds_buildkit_for_each_platform(lab_status, container_builder):
    if lab_status.base.source != "stand-in":
        pytest.skip("Docker Hub's moby/buildkit is used here")
    found = manifests.inspect(buildkit.STANDIN.ref(lab_status.registry.host))
    assert sorted(str(e.platform) for e in found.images()) == ["linux/amd64", "linux/arm64"]
    skopeo = json.loads(subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", "--raw", f"docker://{buildkit.STANDIN.ref(lab_status.registry.host)}"],
        capture_output=True, text=True, check=True).stdout)
    assert sorted(m["platform"]["architecture"] for m in skopeo["manifests"]) == ["amd64", "arm64"]


def test_a_reproducible_push_gives_the_same_index_twice(lab_status, container_builder):
    name = f"{lab_status.registry.host}/kit-test/reproducible"
    digests = []
    for i in (1, 2):
        r = buildx.build(article.context(), platforms=[AMD64, ARM64], tags=[f"{name}:{i}"], push=True,
                         builder=container_builder.name, base=lab_status.base, reproducible=True, no_cache=True,
                         provenance=False, echo=False)
        head = registry.head_manifest(lab_status.registry.address, "kit-test/reproducible", str(i))
        assert r.digest == head.digest
        digests.append(head.digest)
    assert digests[0] == digests[1]
    # skopeo reads the same bytes: the index's digest is their sha256
    raw = subprocess.run(["skopeo", "inspect", "--tls-verify=false", "--raw", f"docker://{name}:1"],
                         capture_output=True, check=True).stdout
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == digests[0]


def test_the_engines_builder_refuses_the_same_push(lab_status):
    name = f"{lab_status.registry.host}/kit-test/reproducible"
    refused = buildx.attempt(article.context(), platforms=[AMD64], tags=[f"{name}:refused"], push=True,
                             base=lab_status.base, reproducible=True, echo=False)
    assert refused.returncode != 0
    assert 'exporter option "rewrite-timestamp" conflicts with "unpack"' in refused.stderr


def test_multinode_lines_create_then_append_each_node_on_its_context():
    argvs = multinode.create_argvs("mn", multinode.nodes("vm"), Path("/c.toml"), "reg/bk@sha256:" + "1" * 64)
    image = "image=reg/bk@sha256:" + "1" * 64
    assert argvs == [
        ["docker", "buildx", "create", "--name", "mn", "--node", "multiarch-kit-multinode-amd64", "--platform",
         "linux/amd64", "--driver", "docker-container", "--driver-opt", image, "--driver-opt", "network=host",
         "--buildkitd-config", "/c.toml", "default"],
        ["docker", "buildx", "create", "--append", "--name", "mn", "--node", "multiarch-kit-multinode-arm64",
         "--platform", "linux/arm64", "--driver-opt", image, "--driver-opt", "network=host",
         "--buildkitd-config", "/c.toml", "vm"]]


def test_the_node_a_platform_was_built_on_is_read_from_the_articles_log():
    assert multinode.built_on("Building on linux/arm64 for linux/arm64") == ARM64
    assert multinode.built_on("Building on linux/amd64 for linux/arm/v7") == AMD64
    with pytest.raises(KitError, match="not the article's /log"):
        multinode.built_on("aarch64")
