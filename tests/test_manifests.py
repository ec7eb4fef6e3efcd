"""Parsing manifests, indexes and configs from recorded JSON (the registry tests use live data)."""

import json

import pytest
from conftest import DATA

from multiarch_kit.core.errors import KitError
from multiarch_kit.oci import manifests
from multiarch_kit.oci.manifests import Descriptor, ImageManifest, Index
from multiarch_kit.oci.platforms import Platform
from multiarch_kit.oci.registry import DOCKER_CONFIG, sha256_digest

# Pushed by `docker buildx build --platform linux/amd64,linux/arm64 --push` to this lab's registry.
ATTESTED = (DATA / "buildx-index-with-attestations.json").read_bytes()
AMD64 = "sha256:7742e56a87b0e86461d955b4b72f80c26869261ca0e0bb9a66f4098402624122"
ARM64 = "sha256:d88c233dc4eba4d5f2639644f9fa00395245c274b80d5a699fd75b58d6d1cb6e"


def test_buildx_index_labels_attestations_with_what_they_attest():
    index = manifests.parse(ATTESTED)
    assert isinstance(index, Index) and index.media_type == manifests.OCI_INDEX
    assert index.digest == sha256_digest(ATTESTED)
    kinds = [(str(d.platform), d.is_attestation, d.attests) for d in index.manifests]
    assert kinds == [("linux/amd64", False, None), ("linux/arm64", False, None),
                     ("unknown/unknown", True, AMD64), ("unknown/unknown", True, ARM64)]


def test_select_on_recorded_index_skips_attestations():
    index = manifests.parse(ATTESTED)
    assert manifests.select(index.manifests, Platform.parse("linux/arm64")).digest == ARM64
    assert manifests.select(index.manifests, Platform.parse("linux/amd64")).digest == AMD64


def test_article_goreleaser_list_and_who_gets_what():
    ex = manifests.article_example(live=False)
    assert ex.recorded["date"] == "2023-09-10" and ex.source.startswith("recorded")
    entries = ex.index.manifests
    assert ex.index.media_type == manifests.DOCKER_LIST
    m2 = manifests.select(entries, Platform.parse("linux/arm64"))  # an M2 Mac's Docker Desktop engine
    intel = manifests.select(entries, Platform.parse("linux/amd64"))  # an Intel Mac's
    assert m2.digest == "sha256:8bbc939928d0c06c05208004c0f013957ff4d7669f25b5b850f63524f8c67e99"
    assert intel.digest == "sha256:b2c31539d194880b293399c7ac98bc032cb9bbb098c512b0abaa55c8c1541d34"
    with pytest.raises(KitError, match=r"no image for linux/arm/v7 .*\(it has: linux/amd64, linux/arm64\)"):
        manifests.select(entries, Platform.parse("linux/arm/v7"))  # a 32-bit Raspberry Pi OS


def test_index_without_media_type_is_recognised_by_its_manifests():
    body = json.loads(ATTESTED)
    del body["mediaType"]
    parsed = manifests.parse(json.dumps(body).encode())
    assert isinstance(parsed, Index) and len(parsed.manifests) == 4


def test_image_manifest_sizes():
    raw = json.dumps({
        "schemaVersion": 2, "mediaType": manifests.DOCKER_MANIFEST,
        "config": {"mediaType": DOCKER_CONFIG, "size": 1748, "digest": "sha256:" + "0" * 64},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 1000,
                    "digest": "sha256:" + "1" * 64},
                   {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 24,
                    "digest": "sha256:" + "2" * 64}],
    }).encode()
    m = manifests.parse(raw)
    assert isinstance(m, ImageManifest) and m.layer_bytes == 1024 and m.config.size == 1748


def test_config():
    cfg = manifests.parse_config(json.dumps({"os": "linux", "architecture": "arm", "variant": "v7",
                                             "config": {"Labels": {"a": "b"}},
                                             "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "3" * 64]}}).encode())
    assert str(cfg.platform) == "linux/arm/v7" and cfg.labels == {"a": "b"}


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"{not json", "malformed manifest: the manifest is not JSON"),
        (b"[1, 2]", "malformed manifest: the manifest is not a JSON object"),
        (b'{"schemaVersion": 2, "mediaType": "application/vnd.example+json"}', "unknown manifest media type"),
        (b'{"schemaVersion": 1, "name": "x"}', "Docker schema 1 manifest"),
        (b'{"mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []}', "schemaVersion is None"),
        (b'{"schemaVersion": 2, "manifests": [{"digest": "nope", "size": 1}]}', "manifests[0] has no valid digest"),
        (b'{"schemaVersion": 2, "manifests": [{"digest": "sha256:' + b"a" * 64 + b'", "size": -1}]}',
         "manifests[0] has no valid size"),
        (b'{"schemaVersion": 2, "manifests": "x"}', "an index needs a 'manifests' list"),
        (b'\xff\xfe', "malformed manifest"),
    ],
)
def test_bad_manifests_are_kit_errors(raw, message):
    with pytest.raises(KitError) as err:
        manifests.parse(raw)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_descriptor_attestation_by_annotation_alone():
    d = Descriptor.from_json({"mediaType": manifests.OCI_MANIFEST, "digest": "sha256:" + "a" * 64, "size": 1,
                              "annotations": {"vnd.docker.reference.type": "attestation-manifest",
                                              "vnd.docker.reference.digest": AMD64}}, "x")
    assert d.is_attestation and d.attests == AMD64


def test_skopeo_raw_says_in_one_line_when_skopeo_is_absent_and_returns_none(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH without skopeo, as on a Mac that did not install it
    assert manifests.skopeo_raw("localhost:5000/none:x") is None
    said = capsys.readouterr().out.strip()
    assert said == manifests.SKOPEO_ABSENT and "\n" not in said and "brew install skopeo" in said
