"""Notebooks 08's and 09's errors come from real commands: each one is produced here again, on the real engines.

The kit prints these messages as the engine or the registry wrote them; none of them is a string of the kit's
(the last test reads the package's source to be sure).
"""

import uuid

import pytest
from conftest import ROOT, require

from multiarch_kit import buildx, engine, verify
from multiarch_kit.core import commands
from multiarch_kit.engine import emulation, images
from multiarch_kit.lab import article
from multiarch_kit.oci import manifests
from multiarch_kit.oci.platforms import AMD64, ARM64

# The engines' and registry's own words, as notebooks 08 and 09 show them.
CONTAINERD_MISSING = "no match for platform in manifest"
CLASSIC_MISSING = "no matching manifest for linux/arm64/v8 in the manifest list entries"
CLASSIC_LOAD = "docker exporter does not currently support exporting manifest lists"
NO_EMULATOR = "exec format error"
MISMATCH = "does not match the detected host platform"
NOT_AN_IMAGE = "is a manifest list"
DOCKER_DRIVER = "Multi-platform build is not supported for the docker driver"


@pytest.fixture(scope="module")
def amd64_only(lab_status, lab_config):
    name = f"{lab_config.registry_host}/kit-test/breaks"
    buildx.build(ROOT / "notebooks" / "article", platforms=[AMD64], tags=[f"{name}:amd64"], push=True,
                 provenance=False, base=lab_status.base, echo=False)
    ref = f"{name}:amd64-only-{uuid.uuid4().hex[:6]}"
    images.manifest_create(ref, [f"{name}:amd64"], echo=False)
    images.manifest_push(ref, echo=False)
    return ref


def test_no_image_for_the_platform_in_both_stores(amd64_only, classic_node):
    containerd = images.pull(amd64_only, ARM64, check=False, echo=False)
    assert containerd.returncode != 0 and CONTAINERD_MISSING in containerd.stderr
    old = commands.run(engine.docker("pull", "--platform", "linux/arm64/v8", amd64_only, context=classic_node),
                       check=False, echo=False)
    assert old.returncode != 0 and CLASSIC_MISSING in old.stderr


def test_arm64_v8_is_arm64_to_both_stores(lab_status, lab_config, classic_node):
    ref = f"{lab_config.registry_host}/kit-test/breaks:index"
    buildx.build(ROOT / "notebooks" / "article", platforms=[AMD64, ARM64], tags=[ref], push=True,
                 base=lab_status.base, echo=False)
    for context in (None, classic_node):  # /log says which platform the image that ran was built for
        done = commands.run(engine.docker("run", "--rm", "--platform", "linux/arm64/v8", ref, "cat", "/log",
                                          context=context), echo=False)
        assert done.stdout.strip().endswith(" for linux/arm64")


def test_the_classic_store_keeps_one_platform_per_tag(lab_status, lab_config, classic_node):
    ref = f"{lab_config.registry_host}/kit-test/breaks:index"
    buildx.build(ROOT / "notebooks" / "article", platforms=[AMD64, ARM64], tags=[ref], push=True,
                 base=lab_status.base, echo=False)
    images.pull(ref, AMD64, context=classic_node, echo=False)
    assert images.platform_of(ref, context=classic_node, echo=False) == AMD64
    ran = images.run(ARM64, ref, "uname", "-m", context=classic_node, echo=False)
    assert ran.stdout.strip() == "aarch64" and images.platform_of(ref, context=classic_node, echo=False) == ARM64


def test_a_base_without_the_platform_stops_the_build_before_any_step(amd64_only):
    folder = ROOT / "notebooks" / article.BASE_LACKS_PLATFORM
    both = buildx.attempt(folder, platforms=[AMD64, ARM64], build_args={"BASE": amd64_only}, output="type=cacheonly",
                          progress="plain", echo=False)
    assert both.returncode != 0 and CONTAINERD_MISSING in both.stderr
    # The base's own platform builds: the list is fine, it only lacks arm64.
    alone = buildx.attempt(folder, platforms=[AMD64], build_args={"BASE": amd64_only}, output="type=cacheonly",
                           progress="plain", echo=False)
    assert alone.returncode == 0, alone.stderr


def test_a_build_that_copies_the_build_machines_binary_succeeds_and_verify_names_it(lab_status, lab_config):
    """The quiet one (notebook 07): no error at build time; verify finds the one foreign file; in the other
    platform's container the image's own busybox is that platform's, the copied one this machine's."""
    here = lab_status.engine.platform
    other = AMD64 if here == ARM64 else ARM64
    ref = f"{lab_config.registry_host}/kit-test/breaks:prebuilt-{uuid.uuid4().hex[:6]}"
    buildx.build(ROOT / "notebooks" / article.PREBUILT_TOOL, platforms=[AMD64, ARM64], tags=[ref], push=True,
                 base=lab_status.base, echo=False)
    report = verify.verify(ref, echo=False)
    found = report.findings()
    assert list(found.path) == ["usr/local/bin/busybox"] and list(found.platform) == [str(other)]
    assert list(found.problem) == [f"{here.architecture} binary in a {other} image"]
    assert [e.ok for e in report.entries] == [p == here for p in (AMD64, ARM64)]
    own = images.run(other, ref, "/bin/busybox", "uname", "-m", echo=False).stdout.strip()
    copied = images.run(other, ref, "/usr/local/bin/busybox", "uname", "-m", echo=False).stdout.strip()
    assert (own, copied) == (other.arch.uname, here.arch.uname)


def test_two_platforms_with_the_docker_driver_on_the_classic_store(lab_status, classic_node):
    """What the engine's own builder says when its engine keeps images the classic way, for a push."""
    done = buildx.attempt(ROOT / "notebooks" / "article", platforms=[AMD64, ARM64], base=lab_status.base,
                          tags=["localhost:5000/kit-test/never-pushed:x"], push=True, context_name=classic_node,
                          progress="plain", echo=False)
    assert done.returncode != 0 and DOCKER_DRIVER in done.stderr


def test_exec_format_error_where_the_kernel_has_no_emulator(lab_status, lab_config):
    """An M2's image on an amd64 server: this engine with the other platform's handler switched off, then on."""
    require(emulation.can_switch(lab_status.engine), "the engine's kernel is not this machine's, or not root")
    other = AMD64 if lab_status.engine.platform == ARM64 else ARM64
    image = lab_status.base.pinned
    with emulation.switched_off(lab_status.engine, other, echo=False) as handler:
        state = (emulation.BINFMT / handler).read_text().splitlines()[0]
        at_run = images.run(other, image, "uname", "-m", check=False, echo=False)
        at_build = buildx.attempt(ROOT / "notebooks" / "article", platforms=[other], base=lab_status.base,
                                  no_cache=True, output="type=cacheonly", progress="plain", echo=False)
    assert state == "disabled" and (emulation.BINFMT / handler).read_text().splitlines()[0] == "enabled"
    assert at_run.returncode != 0 and f"exec /bin/uname: {NO_EMULATOR}" in at_run.stderr
    assert at_build.returncode != 0 and f"exec /bin/sh: {NO_EMULATOR}" in at_build.stderr
    # On again: the same image runs, under QEMU.
    assert images.run(other, image, "uname", "-m", echo=False).stdout.strip() == other.arch.uname


def test_an_emulator_comes_back_on_when_the_block_fails(lab_status):
    require(emulation.can_switch(lab_status.engine), "the engine's kernel is not this machine's, or not root")
    other = AMD64 if lab_status.engine.platform == ARM64 else ARM64
    with pytest.raises(RuntimeError), emulation.switched_off(lab_status.engine, other, echo=False) as handler:
        raise RuntimeError("interrupted")
    assert (emulation.BINFMT / handler).read_text().splitlines()[0] == "enabled"


def test_running_the_other_platform_warns_and_runs(lab_status, lab_config):
    other = AMD64 if lab_status.engine.platform == ARM64 else ARM64
    ref = f"{lab_config.registry_host}/kit-test/breaks:{other.tag_suffix}-only"
    buildx.build(ROOT / "notebooks" / "article", platforms=[other], tags=[ref], push=True, provenance=False,
                 base=lab_status.base, echo=False)
    images.pull(ref, other, echo=False)
    done = images.run(None, ref, "uname", "-m", check=False, echo=False)
    assert done.returncode == 0 and MISMATCH in done.stderr and done.stdout.strip() == other.arch.uname


def _one_platform(lab_status, lab_config, tag: str, **options) -> tuple[str, buildx.BuildResult]:
    """Push one platform, this engine's own, as notebook 09 does; its reference and the build."""
    ref = f"{lab_config.registry_host}/kit-test/breaks:{tag}-{uuid.uuid4().hex[:6]}"
    built = buildx.build(ROOT / "notebooks" / "article", platforms=[lab_status.engine.platform], tags=[ref],
                         push=True, base=lab_status.base, echo=False, **options)
    return ref, built


def test_one_platform_pushed_with_default_provenance_is_an_index_docker_manifest_refuses(lab_status, lab_config):
    ref, _ = _one_platform(lab_status, lab_config, "provenance")
    pushed = manifests.inspect(ref)  # read from the registry
    assert pushed.is_index and [e.kind for e in pushed.entries] == ["image", "attestation"]
    image, attestation = pushed.entries
    assert image.platform == lab_status.engine.platform and attestation.descriptor.attests == image.digest
    assert attestation.descriptor.annotations["vnd.docker.reference.type"] == "attestation-manifest"
    done = images.manifest_create(f"{ref}-joined", [ref], check=False, echo=False)
    assert done.returncode != 0 and f"{ref} {NOT_AN_IMAGE}" in done.stderr


def test_provenance_false_pushes_a_plain_manifest_docker_manifest_takes(lab_status, lab_config):
    ref, built = _one_platform(lab_status, lab_config, "bare", provenance=False)
    pushed = manifests.inspect(ref)
    assert not pushed.is_index and pushed.digest == built.digest
    assert pushed.entries[0].platform == lab_status.engine.platform
    joined = f"{ref}-joined"
    images.manifest_create(joined, [ref], echo=False)
    assert images.manifest_push(joined, echo=False) == manifests.inspect(joined).digest
    assert [e.digest for e in manifests.inspect(joined).entries] == [built.digest]


def test_imagetools_create_merges_the_index_and_keeps_the_attestation(lab_status, lab_config):
    ref, _ = _one_platform(lab_status, lab_config, "kept")
    images.imagetools_create(f"{ref}-merged", [ref], echo=False)
    pushed, merged = manifests.inspect(ref), manifests.inspect(f"{ref}-merged")
    assert [(e.kind, e.digest) for e in merged.entries] == [(e.kind, e.digest) for e in pushed.entries]
    assert [e.kind for e in merged.entries] == ["image", "attestation"]


def test_the_classic_store_refuses_to_load_two_platforms(lab_status, classic_node):
    done = buildx.attempt(ROOT / "notebooks" / "article", platforms=[AMD64, ARM64], base=lab_status.base,
                          output="type=docker", context_name=classic_node, progress="plain", echo=False)
    assert done.returncode != 0 and CLASSIC_LOAD in done.stderr


def test_none_of_these_words_is_the_kits():
    source = "".join(p.read_text() for p in (ROOT / "multiarch_kit").rglob("*.py"))
    for words in (CONTAINERD_MISSING, CLASSIC_MISSING, MISMATCH, NOT_AN_IMAGE, CLASSIC_LOAD):
        assert words not in source, words
    assert article.REPOSITORY
