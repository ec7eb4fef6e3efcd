"""BuildKit's own distribution over the lab's two engines: one builder, linux/amd64 on this machine's engine and
linux/arm64 on the arm64 VM's (multiarch_kit/lab/multinode.py). Run by ``make test-arm64``; skipped elsewhere."""

from __future__ import annotations

import os
import platform as pyplatform
import subprocess
from pathlib import Path

import pytest

from multiarch_kit import buildx
from multiarch_kit.engine import images
from multiarch_kit.lab import multinode
from multiarch_kit.oci import manifests
from multiarch_kit.oci.platforms import Platform
from multiarch_kit.oci.references import parse_reference

pytestmark = pytest.mark.skipif(os.environ.get("MULTIARCH_KIT_REHEARSAL") != "arm64",
                                reason="only inside make test-arm64, with the arm64 VM up")

ARM64, AMD64 = Platform.parse("linux/arm64"), Platform.parse("linux/amd64")
ARTICLE = Path(__file__).resolve().parents[2] / "notebooks" / "article"


def test_one_build_sends_each_platform_to_its_native_node(lab_status, tmp_path):
    builder = lab_status.multinode_builder()
    assert [(n.name, n.status) for n in builder.nodes] == [(f"{multinode.NAME}-amd64", "running"),
                                                          (f"{multinode.NAME}-arm64", "running")]
    listed = subprocess.run(["docker", "buildx", "ls"], capture_output=True, text=True, check=True).stdout
    assert f"{multinode.NAME}-amd64" in listed and f"{multinode.NAME}-arm64" in listed
    # The article's Dockerfile, and the kernel of whatever ran its RUN step.
    (tmp_path / "Dockerfile").write_text((ARTICLE / "Dockerfile").read_text() + "RUN uname -r > /kernel\n")
    ref = parse_reference(f"{lab_status.config.registry_host}/multiarch-kit/multinode:test")
    result = buildx.build(tmp_path, platforms=[AMD64, ARM64], tags=[ref.docker], push=True, builder=multinode.NAME,
                          base=lab_status.base)
    index = manifests.inspect(ref)
    assert index.digest == result.digest and [e.platform for e in index.images()] == [AMD64, ARM64]
    read = {p: {f: images.run(p, ref.at(index.select(p).digest).docker, "cat", f, context=multinode.HERE
                              ).stdout.strip() for f in ("/log", "/kernel")} for p in (AMD64, ARM64)}
    # BUILDPLATFORM is the node's own platform: arm64 was not emulated here
    assert multinode.built_on(read[ARM64]["/log"]) == ARM64 and multinode.built_on(read[AMD64]["/log"]) == AMD64
    # ... and its RUN step ran on the VM's kernel, amd64's on this machine's
    assert read[ARM64]["/kernel"] == lab_status.engine.kernel != pyplatform.release()
    assert read[AMD64]["/kernel"] == pyplatform.release()
    # Removed again: a builder whose VM node is down later shows as an error in every `docker buildx ls`.
    assert multinode.remove(lab_status.config, echo=False) and multinode.find() is None
