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
    assert node.platforms[:2] == ["linux/amd64", "linux/amd64/v2"]
    assert "linux/arm64" in b.platforms


def test_parse_rejects_other_text():
    with pytest.raises(KitError, match="not the output of `docker buildx inspect`"):
        buildx.parse_inspect("Usage: docker buildx inspect [NAME]")


def test_live_builder_matches_engine(lab_status):
    b = buildx.inspect()
    assert b.driver == "docker"
    assert f"linux/{lab_status.engine.architecture}" in b.platforms
