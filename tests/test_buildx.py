"""Parsing `docker buildx inspect` (recorded from this lab's engine, and read live)."""

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
