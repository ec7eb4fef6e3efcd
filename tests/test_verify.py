"""Verify: each platform's image holds binaries for that platform; rebuilds reproduce; references compare."""

import gzip
import hashlib
import io
import json
import subprocess
import sys
import tarfile
import uuid
from pathlib import Path

import pytest
from conftest import ROOT, kit_cli, require

from multiarch_kit import buildx, verify
from multiarch_kit.core.errors import KitError
from multiarch_kit.engine import images
from multiarch_kit.lab import base
from multiarch_kit.oci.platforms import AMD64, ARM64, LAB_PLATFORMS, parse

ARTICLE = ROOT / "notebooks" / "article"


# --- hand-made layouts from Debian's real busybox binaries -------------------------------------------------

@pytest.fixture(scope="session")
def debs(lab_config):
    """Debian's busybox-static packages the lab downloads (skipped where the lab was never up, except in CI)."""
    folder = lab_config.lab_dir / "base" / "debs"
    try:
        found = base.find_debs(folder, LAB_PLATFORMS)
    except KitError as exc:
        require(False, f"the lab's busybox packages are not there ({exc.message}): run 'multiarch-kit lab up'")
    return {str(p): deb for p, deb in found.items()}


def _blob(layout: Path, data: bytes) -> dict:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (layout / "blobs" / "sha256" / digest[7:]).write_bytes(data)
    return {"digest": digest, "size": len(data)}


def _tar(entries: list[tuple]) -> bytes:
    """A layer tar from (name, kind, data-or-linkname) tuples."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, kind, payload in entries:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size, info.mode = len(payload), 0o755
                t.addfile(info, io.BytesIO(payload))
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, payload
                t.addfile(info)
            elif kind == "dir":
                info.type = tarfile.DIRTYPE
                t.addfile(info)
    return buf.getvalue()


def _layout(tmp: Path, images_: list[tuple[str, str, list[bytes]]]) -> str:
    """An OCI layout whose index lists (claimed platform, config platform, layers) images."""
    layout = tmp / f"layout-{uuid.uuid4().hex[:6]}"
    manifests = []
    for claimed, actual, layers in images_:
        pa = parse(actual)
        config = {"os": pa.os, "architecture": pa.architecture, **({"variant": pa.variant} if pa.variant else {}),
                  "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(x).hexdigest() for x in layers]},
                  "config": {}}
        layer_descs = [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **_blob(layout, gzip.compress(x))}
                       for x in layers]
        m = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
             "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **_blob(layout, json.dumps(config).encode())},
             "layers": layer_descs}
        pc = parse(claimed)
        manifests.append({"mediaType": m["mediaType"], **_blob(layout, json.dumps(m).encode()),
                          "platform": {"os": pc.os, "architecture": pc.architecture,
                                       **({"variant": pc.variant} if pc.variant else {})}})
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests}
    top = _blob(layout, json.dumps(index).encode())
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": index["mediaType"], **top}]}))
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return f"oci:{layout}"


def _rootfs(debs, platform: str) -> bytes:
    return _tar([("bin", "dir", None), ("bin/busybox", "file", base.busybox_from_deb(debs[platform])),
                 ("bin/sh", "symlink", "busybox"), ("bin/ls", "symlink", "/bin/busybox")])


EXTRAS = _tar([("etc", "dir", None), ("etc/motd", "file", b"hello\n"),
               ("usr/local/bin/run.sh", "file", b"#!/bin/sh\necho hi\n"),
               ("opt/fake.so", "file", b"\x7fELF truncated, not a real ELF"),
               ("etc/.wh.removed", "file", b"")])
EMPTY = _tar([])


def test_correct_layout_with_symlinks_scripts_and_an_empty_layer_passes(debs, tmp_path):
    ref = _layout(tmp_path, [(p, p, [_rootfs(debs, p), EXTRAS, EMPTY]) for p in ("linux/amd64", "linux/arm64", "linux/arm/v7")])
    report = verify.verify(ref)
    assert report.ok and [str(e.platform) for e in report.entries] == ["linux/amd64", "linux/arm64", "linux/arm/v7"]
    first = report.entries[0].layers
    assert (first[0].files, first[0].elf, first[0].links) == (1, 1, 2)
    assert (first[1].files, first[1].elf, first[1].other) == (4, 0, 4)  # script, data, fake ELF, whiteout
    assert (first[2].files, first[2].elf) == (0, 0)


def test_amd64_binaries_under_an_arm64_entry_are_named(debs, tmp_path):
    ref = _layout(tmp_path, [("linux/arm64", "linux/arm64", [_rootfs(debs, "linux/amd64"), EXTRAS])])
    report = verify.verify(ref)
    assert not report.ok and report.entries[0].config_ok
    (finding,) = report.entries[0].findings
    assert (finding.layer, finding.path) == (0, "bin/busybox")
    assert finding.problem == "amd64 binary in a linux/arm64 image" and finding.found.startswith("amd64, ELF64 LE")


def test_armv7_binary_in_an_arm_v6_image(debs, tmp_path):
    ref = _layout(tmp_path, [("linux/arm/v6", "linux/arm/v6", [_rootfs(debs, "linux/arm/v7")])])
    (finding,) = verify.verify(ref).entries[0].findings
    assert finding.problem == "ARMv7 binary in a linux/arm/v6 image (needs a newer CPU)"


def test_config_that_disagrees_with_its_entry(debs, tmp_path):
    ref = _layout(tmp_path, [("linux/arm64", "linux/amd64", [EMPTY])])
    entry = verify.verify(ref).entries[0]
    assert not entry.config_ok and str(entry.config_platform) == "linux/amd64" and not entry.ok


def test_corrupt_layer_is_a_digest_mismatch(debs, tmp_path):
    ref = _layout(tmp_path, [("linux/amd64", "linux/amd64", [_rootfs(debs, "linux/amd64")])])
    layout = Path(ref[4:])
    manifest_blobs = sorted((layout / "blobs" / "sha256").iterdir(), key=lambda p: p.stat().st_size)
    layer = manifest_blobs[-1]  # the biggest blob is the busybox layer
    data = bytearray(layer.read_bytes())
    data[len(data) // 2] ^= 0xFF
    layer.write_bytes(bytes(data))
    with pytest.raises(KitError, match="digest mismatch|not a readable tar"):
        verify.verify(ref)


# --- real images -------------------------------------------------------------------------------------------

def test_mislabelled_index_made_with_docker_manifest_fails(lab_status, lab_config):
    reg = lab_config.registry_host
    tag = uuid.uuid4().hex[:8]
    amd64 = f"{reg}/kit-test/wrong:amd64-{tag}"
    buildx.build(ARTICLE, platforms=[AMD64], tags=[amd64], push=True, provenance=False, base=lab_status.base,
                 echo=False)
    wrong = f"{reg}/kit-test/wrong:list-{tag}"
    images.manifest_create(wrong, [amd64], echo=False)
    images.manifest_annotate(wrong, amd64, arch="arm64", echo=False)
    images.manifest_push(wrong, echo=False)
    report = verify.verify(wrong)
    assert not report.ok
    (entry,) = report.entries
    assert (str(entry.platform), str(entry.config_platform)) == ("linux/arm64", "linux/amd64")
    assert [(f.layer, f.path, f.problem) for f in entry.findings] == [(0, "bin/busybox", "amd64 binary in a linux/arm64 image")]
    proc = kit_cli("verify", wrong)
    assert proc.returncode == 1 and "bin/busybox" in proc.stdout and "NOT verified" in proc.stdout


def test_standin_and_article_images_verify_for_all_three_platforms(lab_status, lab_config):
    three = list(LAB_PLATFORMS)
    ref = f"{lab_config.registry_host}/kit-test/article-three:latest"
    buildx.build(ARTICLE, platforms=three, tags=[ref], push=True, base=lab_status.base, echo=False)
    for reference in (lab_status.base.ref, ref):
        report = verify.verify(reference, run=True, echo=False)
        assert report.ok, report.table()
        assert sorted(map(str, (e.platform for e in report.entries))) == sorted(map(str, three))
        assert all(sum(layer.elf for layer in e.layers) >= 1 for e in report.entries)  # busybox was really checked
        assert {str(e.platform): e.machine for e in report.entries} == {
            "linux/amd64": "x86_64", "linux/arm64": "aarch64", "linux/arm/v7": "armv7l"}


def test_archives_verify(lab_status, tmp_path):
    buildx.build(ARTICLE, platforms=[ARM64], tags=["kit-test/verify:arm64"],
                 output=f"type=docker,dest={tmp_path / 'a.tar'}", base=lab_status.base, echo=False)
    for ref in (f"docker-archive:{tmp_path / 'a.tar'}", f"oci-archive:{tmp_path / 'a.tar'}"):
        report = verify.verify(ref)
        assert report.ok and report.entries[0].platform == ARM64 and report.entries[0].layers[0].elf == 1
    with pytest.raises(KitError, match="run check needs a registry reference"):
        verify.verify(f"oci-archive:{tmp_path / 'a.tar'}", run=True)


def test_reproducible_rebuild_compares_equal(lab_status, tmp_path):
    same = verify.rebuild(ARTICLE, [AMD64, ARM64], lab_status.base, tmp_path / "r")
    assert list(same.platform) == ["linux/amd64", "linux/arm64"] and list(same.difference) == ["same", "same"]


def test_a_rebuild_that_differs_names_config_fields_and_files(lab_status, tmp_path):
    """A step that writes a fresh UUID can never reproduce: compare names the file, the layer and the config fields."""
    context = tmp_path / "stamp"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM alpine:3.18\nRUN cat /proc/sys/kernel/random/uuid > /stamp\n")
    differs = verify.rebuild(context, [AMD64], lab_status.base, tmp_path / "p", reproducible=False)
    rows = set(zip(differs["where"], differs["path"]))
    assert ("layer 1", "stamp") in rows
    assert "content" in differs[differs.path == "stamp"].difference.iloc[0]
    assert ("config", "created") in rows


def test_diff_of_a_manifest_list_and_an_index(lab_status, lab_config):
    reg = lab_config.registry_host
    name = f"{reg}/kit-test/diff"
    for p in (AMD64, ARM64):
        buildx.build(ARTICLE, platforms=[p], tags=[f"{name}:{p.architecture}"], push=True, provenance=False,
                     base=lab_status.base, echo=False)
    images.manifest_rm(f"{name}:list")
    images.manifest_create(f"{name}:list", [f"{name}:amd64", f"{name}:arm64"])
    images.manifest_push(f"{name}:list")
    buildx.build(ARTICLE, platforms=[AMD64, ARM64], tags=[f"{name}:index"], push=True,
                 base=lab_status.base, echo=False)
    d = verify.diff(f"{name}:list", f"{name}:index").set_index("aspect")
    assert d.loc["media type", "a"] == "Docker manifest list" and d.loc["media type", "b"] == "OCI index"
    assert d.loc["platforms", "same"] and d.loc["platforms", "a"] == "linux/amd64, linux/arm64"
    assert (d.loc["attestations", "a"], d.loc["attestations", "b"]) == ("0", "2")
    same_content = verify.compare(f"{name}:list", f"{name}:index")
    assert list(same_content.difference) == [
        "same config and layers; the manifests differ: Docker manifest vs OCI manifest"] * 2


_MEASURE = """
import resource, sys
from multiarch_kit import verify
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
report = verify.verify(sys.argv[1])
print(report.entries[0].layers[-1].files, before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def test_a_100_mb_layer_is_streamed(lab_status, tmp_path):
    context = tmp_path / "big"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM alpine:3.18\nRUN head -c 104857600 /dev/urandom > /big\n")
    buildx.build(context, platforms=[AMD64], output=f"type=oci,dest={tmp_path / 'big.tar'}",
                 base=lab_status.base, echo=False)
    assert (tmp_path / "big.tar").stat().st_size > 100_000_000
    out = subprocess.run([sys.executable, "-c", _MEASURE, f"oci-archive:{tmp_path / 'big.tar'}"], capture_output=True,
                         text=True, check=True).stdout.split()
    files, before_kb, peak_kb = (int(x) for x in out)
    assert files == 1  # the layer holding /big was read
    assert peak_kb - before_kb < 30 * 1024, (before_kb, peak_kb)  # far below the layer's 100 MB: it was streamed
