"""Inspect against real images: pushed by real buildx builds to the lab registry, or written as tars.

skopeo (containers/image) is the independent reference for bytes; the engine itself is the reference for
which entry a runtime pulls.
"""

import hashlib
import json
import subprocess
import tarfile
import uuid
from pathlib import Path

import pytest
import requests
from conftest import ROOT, free_port, kit_cli, one_line_error

from multiarch_kit import buildx, engine
from multiarch_kit.core import commands
from multiarch_kit.core.errors import KitError
from multiarch_kit.engine import images
from multiarch_kit.oci import manifests
from multiarch_kit.oci.platforms import AMD64, ARM64
from multiarch_kit.oci.registry import MANIFEST_TYPES

ACCEPT = ", ".join(MANIFEST_TYPES)

ARTICLE = ROOT / "notebooks" / "article"


def _skopeo_raw(ref: str) -> bytes:
    full = ref if ref.startswith(("oci:", "oci-archive:", "docker-archive:", "docker://")) else "docker://" + ref
    return subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", full],
                          capture_output=True, check=True).stdout


def _build(lab_status, **options):
    options = buildx.BuildOptions.of(build_contexts=lab_status.base.build_contexts, **options)
    commands.run(buildx.build_argv(ARTICLE, options, progress="quiet"), echo=False, timeout=600)


@pytest.fixture(scope="session")
def pushed(lab_status, lab_config):
    """Three real shapes in the lab registry: an OCI index with attestations, a Docker list, a single manifest."""
    reg = lab_config.registry_host
    refs = {"attested": f"{reg}/kit-test/attested:latest", "list": f"{reg}/kit-test/list:latest",
            "single": f"{reg}/kit-test/list:amd64"}
    _build(lab_status, platforms=[AMD64, ARM64], tags=[refs["attested"]], push=True)
    for p in (AMD64, ARM64):
        _build(lab_status, platforms=[p], provenance=False, tags=[f"{reg}/kit-test/list:{p.architecture}"], push=True)
    images.manifest_rm(refs["list"], echo=False)
    images.manifest_create(refs["list"], [f"{reg}/kit-test/list:amd64", f"{reg}/kit-test/list:arm64"], echo=False)
    images.manifest_push(refs["list"], echo=False)
    return refs


@pytest.fixture(scope="session")
def tars(lab_status, tmp_path_factory):
    out = tmp_path_factory.mktemp("tars")
    _build(lab_status, platforms=[ARM64], tags=["kit-test/docker-tar:arm64"],
           output=f"type=docker,dest={out / 'arm64-docker.tar'}")
    _build(lab_status, platforms=[AMD64, ARM64], output=f"type=oci,dest={out / 'multi-oci.tar'}")
    layout = out / "layout"
    with tarfile.open(out / "multi-oci.tar") as t:
        t.extractall(layout, filter="data")
    images.load(out / "arm64-docker.tar", echo=False)
    commands.run(engine.docker("save", "--output", out / "saved.tar", "kit-test/docker-tar:arm64"), echo=False)
    return out


def _head(ref: str, reference: str) -> str:
    host, repo = ref.split("/", 1)
    repo = repo.rsplit(":", 1)[0]
    resp = requests.head(f"http://{host}/v2/{repo}/manifests/{reference}", headers={"Accept": ACCEPT}, timeout=10)
    resp.raise_for_status()
    return resp.headers["Docker-Content-Digest"]


@pytest.mark.parametrize("shape, top_type, n_images, n_attest", [
    ("attested", manifests.OCI_INDEX, 2, 2), ("list", manifests.DOCKER_LIST, 2, 0),
    ("single", manifests.DOCKER_MANIFEST, 1, 0)])
def test_registry_shapes(pushed, shape, top_type, n_images, n_attest):
    ref = pushed[shape]
    result = manifests.inspect(ref)
    assert result.media_type == top_type
    assert result.raw == _skopeo_raw(ref)
    assert result.digest == _head(ref, ref.rsplit(":", 1)[1]) == "sha256:" + hashlib.sha256(result.raw).hexdigest()
    kinds = [e.kind for e in result.entries]
    assert kinds.count("image") == n_images and kinds.count("attestation") == n_attest
    for e in result.entries:
        if e.descriptor is not None:
            assert _head(ref, e.digest) == e.digest
        if e.kind == "image":  # the config says what the index entry claims
            assert (e.config.os, e.config.architecture) == (e.platform.os, e.platform.architecture)
        else:
            assert e.descriptor.attests in {i.digest for i in result.images()}
    platforms_seen = sorted(str(e.platform) for e in result.images())
    assert platforms_seen == (["linux/amd64", "linux/arm64"] if n_images == 2 else ["linux/amd64"])


def _engine_content() -> set[str]:
    """Digests in the engine's own content store (dockerd's containerd namespace 'moby')."""
    out = commands.run(["ctr", "--namespace", "moby", "content", "ls", "--quiet"], echo=False).stdout
    return set(out.split())


def _put(layout: Path, obj: dict) -> dict:
    raw = json.dumps(obj).encode()
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    (layout / "blobs" / "sha256" / digest[7:]).write_bytes(raw)
    return {"digest": digest, "size": len(raw)}


def _fresh_push(lab_config, tars, tmp_path, shape: str) -> str:
    """Push an index whose manifests the engine has never seen.

    The child manifests of a real buildx layout get one more annotation, so their digests are new while
    configs and layers stay the real ones; skopeo pushes the result.
    """
    import shutil

    from conftest import require

    require(bool(shutil.which("ctr")), "needs containerd's ctr to read the engine's content store (Linux)")
    tag = uuid.uuid4().hex[:12]
    layout = tmp_path / "layout"
    shutil.copytree(tars / "layout", layout)
    src = json.loads((layout / "index.json").read_text())["manifests"][0]["digest"]
    top = json.loads((layout / "blobs" / "sha256" / src[7:]).read_text())
    renamed = {}
    for d in top["manifests"]:  # images first, so attestations can point at their new digests
        body = json.loads((layout / "blobs" / "sha256" / d["digest"][7:]).read_text())
        body.setdefault("annotations", {})["kit-test"] = tag
        new = _put(layout, body)
        renamed[d["digest"]] = new["digest"]
        d.update(new)
    for d in top["manifests"]:
        ann = d.get("annotations") or {}
        if "vnd.docker.reference.digest" in ann:
            ann["vnd.docker.reference.digest"] = renamed[ann["vnd.docker.reference.digest"]]
    ref = f"{lab_config.registry_host}/kit-test/fresh-{shape}:{tag}"

    def push(entry: dict, name: str) -> None:
        (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))
        commands.run(["skopeo", "copy", "--all", "--dest-tls-verify=false", f"oci:{layout}",
                      f"docker://{lab_config.registry_host}/kit-test/fresh-{shape}:{name}"], echo=False, timeout=300)

    from multiarch_kit.engine import images as kit_images

    if shape == "attested":
        push({"mediaType": top["mediaType"], **_put(layout, top)}, tag)
    else:  # a Docker list made by `docker manifest` from the two images, each pushed on its own
        images = [d for d in top["manifests"] if d["platform"]["os"] != "unknown"]
        for d in images:
            push({k: v for k, v in d.items() if k != "platform"}, f"{tag}-{d['platform']['architecture']}")
        kit_images.manifest_create(ref, [f"{ref}-{d['platform']['architecture']}" for d in images], echo=False)
        kit_images.manifest_push(ref, echo=False)
    return ref


@pytest.mark.parametrize("shape", ["attested", "list"])
@pytest.mark.parametrize("platform", [AMD64, ARM64], ids=str)
def test_select_picks_what_the_engine_pulls(lab_config, tars, tmp_path, shape, platform):
    ref = _fresh_push(lab_config, tars, tmp_path, shape)
    result = manifests.inspect(ref)
    chosen = result.select(platform)
    children = {e.digest for e in result.entries}
    assert not children & _engine_content()  # the engine has none of them yet
    commands.run(engine.docker("pull", "--quiet", "--platform", platform, ref), echo=False, timeout=300)
    fetched = children & _engine_content()
    assert fetched == {chosen.digest}, (platform, fetched)


def test_docker_archive_from_buildx_type_docker(tars):
    ref = f"docker-archive:{tars / 'arm64-docker.tar'}"
    result = manifests.inspect(ref)
    assert result.raw == _skopeo_raw(ref)
    (entry,) = result.entries
    assert entry.platform == ARM64 and entry.config.architecture == "arm64"
    # The same tar read as an OCI layout holds the real stored manifest.
    as_layout = manifests.inspect(f"oci-archive:{tars / 'arm64-docker.tar'}")
    assert as_layout.raw == _skopeo_raw(f"oci-archive:{tars / 'arm64-docker.tar'}")
    assert as_layout.entries[0].config.digest == entry.config.digest


def test_oci_archive_and_layout_from_buildx_type_oci(tars):
    for ref in (f"oci-archive:{tars / 'multi-oci.tar'}", f"oci:{tars / 'layout'}"):
        result = manifests.inspect(ref)
        assert result.raw == _skopeo_raw(ref)
        assert result.media_type == manifests.OCI_INDEX
        images = result.images()
        assert sorted(e.config.architecture for e in images) == ["amd64", "arm64"]
        assert all(e.config.platform == e.platform for e in images)


def test_docker_save_tar(tars):
    ref = f"docker-archive:{tars / 'saved.tar'}"
    result = manifests.inspect(ref)
    assert result.raw == _skopeo_raw(ref)
    assert result.entries[0].config.architecture == "arm64"


# --- the CLI ---------------------------------------------------------------------------------------------

def test_cli_raw_is_byte_identical_to_skopeo(pushed):
    proc = subprocess.run([str(Path(kit_cli.__globals__["sys"].executable).with_name("multiarch-kit")), "inspect",
                           pushed["attested"], "--raw"], capture_output=True, check=True)
    assert proc.stdout == _skopeo_raw(pushed["attested"])


def test_cli_raw_platform_writes_the_chosen_child(pushed):
    exe = str(Path(kit_cli.__globals__["sys"].executable).with_name("multiarch-kit"))
    proc = subprocess.run([exe, "inspect", pushed["attested"], "--raw", "--platform", "linux/arm64"],
                          capture_output=True, check=True)
    chosen = manifests.inspect(pushed["attested"]).select(ARM64)
    name = pushed["attested"].rsplit(":", 1)[0]
    assert proc.stdout == _skopeo_raw(f"{name}@{chosen.digest}")
    assert "sha256:" + hashlib.sha256(proc.stdout).hexdigest() == chosen.digest


def test_cli_json_and_table(pushed):
    data = json.loads(kit_cli("inspect", pushed["attested"], "--format", "json").stdout)
    assert data["digest"] == manifests.inspect(pushed["attested"]).digest
    assert data["mediaType"] == manifests.OCI_INDEX
    assert [e["kind"] for e in data["entries"]] == ["image", "image", "attestation", "attestation"]
    assert all(e["layer bytes"] > 0 for e in data["entries"])
    table = kit_cli("inspect", pushed["attested"]).stdout
    assert "OCI index" in table and table.count("attestation") == 2


def test_engine_platform_is_what_docker_version_says(lab_status):
    out = commands.run(engine.docker("version", "--format", "{{.Server.Os}}/{{.Server.Arch}}"), echo=False).stdout
    assert str(engine.facts().platform) == out.strip() == str(lab_status.engine.platform)


# --- bad input -------------------------------------------------------------------------------------------

def _err(ref, *args):
    return one_line_error(kit_cli("inspect", ref, *args))


def test_404(lab_status, lab_config):
    assert "has no manifest nope (404)" in _err(f"{lab_config.registry_host}/kit-test/attested:nope")


def test_unreachable_registry():
    port = free_port()
    assert f"registry localhost:{port} does not answer" in _err(f"localhost:{port}/x/y:z")


@pytest.mark.parametrize("ref, message", [
    ("Upper/Case", "is not an image name"), ("a b", "is not an image name"), ("x:bad tag!", "is not a tag"),
    ("x@sha256:123", "is not a sha256 digest"), ("ftp://x/y", "unknown transport"), ("oci-archive:", "no path"),
])
def test_invalid_reference(ref, message):
    assert message in _err(ref)


def test_invalid_platform():
    assert "invalid platform" in _err("localhost:1/x", "--platform", "linux/arm64/v8/extra")


def test_missing_archive(tmp_path):
    assert "does not exist" in _err(f"oci-archive:{tmp_path / 'none.tar'}")


def test_unauthorized_registry(private_registry):
    """A real distribution registry with htpasswd auth answers 401; the kit says it wants credentials."""
    assert "refused manifest latest without credentials (401)" in _err(f"{private_registry}/private/image")


def test_digest_mismatch_from_a_tampered_registry(lab_status, lab_config):
    """Alter a manifest in the registry's own storage: the registry still serves it under the old digest."""
    ref = f"{lab_config.registry_host}/kit-test/tamper:latest"
    _build(lab_status, platforms=[AMD64], provenance=False, labels={"kit-test": str(uuid.uuid4())}, tags=[ref],
           push=True)
    digest = manifests.inspect(ref).digest
    data = lab_config.lab_dir / "registry" / "data" / "docker" / "registry" / "v2" / "blobs" / "sha256" / \
        digest[7:9] / digest[7:] / "data"
    data.write_bytes(data.read_bytes().replace(b'"schemaVersion": 2', b'"schemaVersion":  2'))
    with pytest.raises(KitError, match=f"digest mismatch for .*registry says {digest}, bytes hash to sha256:"):
        manifests.inspect(ref)
    assert "digest mismatch" in _err(ref)


def test_digest_mismatch_in_a_layout(tars, tmp_path):
    import shutil

    layout = tmp_path / "layout"
    shutil.copytree(tars / "layout", layout)
    index = json.loads((layout / "index.json").read_text())
    top = index["manifests"][0]["digest"]
    blob = layout / "blobs" / "sha256" / top[7:]
    blob.write_bytes(blob.read_bytes() + b" ")
    with pytest.raises(KitError, match="digest mismatch"):
        manifests.inspect(f"oci:{layout}")


def test_malformed_manifest_in_a_layout(tars, tmp_path):
    import shutil

    layout = tmp_path / "layout"
    shutil.copytree(tars / "layout", layout)
    garbage = b"{this is not json"
    digest = "sha256:" + hashlib.sha256(garbage).hexdigest()
    (layout / "blobs" / "sha256" / digest[7:]).write_bytes(garbage)
    index = json.loads((layout / "index.json").read_text())
    index["manifests"][0].update(digest=digest, size=len(garbage))
    (layout / "index.json").write_text(json.dumps(index))
    assert "malformed manifest" in _err(f"oci:{layout}")


def test_shared_blobs_of_a_platform_independent_layer(lab_status, lab_config, tmp_path):
    """COPY of the same file gives the same layer for every platform: stored once, used by both entries."""
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "hello.txt").write_text("the same bytes on every platform\n")
    (context / "Dockerfile").write_text("FROM scratch\nCOPY hello.txt /\n")
    ref = f"{lab_config.registry_host}/kit-test/shared:latest"
    buildx.build(context, platforms=[AMD64, ARM64], tags=[ref], push=True, provenance=False, echo=False)
    result = manifests.inspect(ref)
    shared = result.shared_blobs()
    layer = result.images()[0].manifest.layers[0]
    assert list(shared.digest) == [layer.digest] and shared.role.iloc[0] == "layer"
    assert shared["used by"].iloc[0] == "linux/amd64, linux/arm64"
