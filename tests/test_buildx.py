"""Parsing `docker buildx inspect` (recorded from this lab's engine, and read live)."""

import json

import pytest

from conftest import DATA
from multiarch_kit import buildx
from multiarch_kit.errors import KitError


def test_parse_default_builder_recorded_on_debian():
    b = buildx.parse_inspect((DATA / "buildx-inspect-default.txt").read_text())
    assert (b.name, b.driver) == ("default", "docker")
    assert [n.name for n in b.nodes] == ["default"]
    node = b.nodes[0]
    assert node.status == "running"
    assert [str(p) for p in node.platforms[:2]] == ["linux/amd64", "linux/amd64/v2"]
    assert "linux/arm64" in map(str, b.platforms)


@pytest.mark.parametrize("text", ["Usage: docker buildx inspect [NAME]", "", "Nodes:\nName: x\n"])
def test_parse_rejects_other_text(text):
    with pytest.raises(KitError, match="not the output of `docker buildx inspect`"):
        buildx.parse_inspect(text)


def test_parse_names_an_unreadable_platform():
    with pytest.raises(KitError, match="listed a platform the kit cannot read"):
        buildx.parse_inspect("Name: b\nDriver: docker\n\nNodes:\nName: n\nPlatforms: linux/amd64, linux//x\n")


def test_live_builder_matches_engine(lab_status):
    b = buildx.inspect()
    assert b.driver == "docker"
    assert lab_status.engine.platform in b.platforms


def test_the_digest_is_what_the_build_exported_not_what_the_tag_held_afterwards():
    """Recorded in a race of two engines on one tag: buildx (docker driver) read the tag back after pushing and
    found another engine's arm64 manifest there; the descriptor names the index this build pushed."""
    raced = json.loads((DATA / "buildx-metadata-docker-driver-race.json").read_text())
    assert raced["containerimage.digest"].startswith("sha256:461ca328")
    assert buildx.built_digest(raced) == "sha256:b934641fd7742b6df4cc5441a5618bba728055d26b58f96d552442b22af0edc2"


def test_the_classic_store_digest_is_the_one_buildx_read_back():
    classic = json.loads((DATA / "buildx-metadata-classic-store.json").read_text())
    assert "containerimage.descriptor" not in classic
    assert buildx.built_digest(classic) == "sha256:f3a0a1736828878e0a15b096924d068538d093ebba1be825cff4c2f6f8f9fb01"
    config_only = {**classic, "containerimage.descriptor": {  # a config is not what was pushed
        "mediaType": "application/vnd.docker.container.image.v1+json", "digest": classic["containerimage.config.digest"]}}
    assert buildx.built_digest(config_only) == classic["containerimage.digest"]
    assert buildx.built_digest({}) is None
