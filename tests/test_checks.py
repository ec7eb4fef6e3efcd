"""One test per check that `make mutants` removes from a copy of the package (scripts/mutants.py): each passes on the
package and fails without its check, so none of them can pass by accident. Pure values: no engine, no network."""

import json

import pytest

from multiarch_kit.bench import stats
from multiarch_kit.core.errors import InvalidPlatform, KitError
from multiarch_kit.oci import manifests, matching, model
from multiarch_kit.oci.platforms import ARM64, Platform
from multiarch_kit.oci.references import parse_reference
from multiarch_kit.verify import elf

DIGEST = "sha256:" + "a" * 64


# --- references --------------------------------------------------------------------------------------------

def test_a_tag_docker_would_refuse_is_refused():
    with pytest.raises(KitError, match="'-bad' is not a tag"):
        parse_reference("localhost:5000/app:-bad")


def test_a_digest_that_is_not_sha256_is_refused():
    with pytest.raises(KitError, match="'sha256:abc' is not a sha256 digest"):
        parse_reference("localhost:5000/app@sha256:abc")


def test_an_upper_case_repository_is_refused():
    with pytest.raises(KitError, match="'localhost:5000/App' is not an image name"):
        parse_reference("localhost:5000/App:1")


# --- platforms and matching ---------------------------------------------------------------------------------

def test_a_platform_has_at_most_three_parts():
    with pytest.raises(InvalidPlatform, match="at most three parts"):
        Platform.parse("linux/arm/v7/extra")


def test_a_wildcard_is_refused_as_a_wildcard():
    with pytest.raises(InvalidPlatform, match="wildcards are not supported"):
        Platform.parse("linux/*")


def test_a_lone_word_must_be_an_architecture_the_table_knows():
    with pytest.raises(InvalidPlatform, match="unknown operating system or architecture"):
        Platform.parse("potato")


def test_arm64_v9_runs_what_v8_5_runs():
    assert matching.only(Platform("linux", "arm64", "v9.0")).match(Platform("linux", "arm64", "v8.5"))


def test_amd64_v3_runs_amd64_v2():
    assert matching.only(Platform("linux", "amd64", "v3")).match(Platform("linux", "amd64", "v2"))


# --- the manifest model and selection -----------------------------------------------------------------------

def test_a_descriptor_with_a_negative_size_is_refused():
    with pytest.raises(KitError, match=r"has no valid size \(-1\)"):
        model.Descriptor.from_json({"mediaType": model.OCI_MANIFEST, "digest": DIGEST, "size": -1}, "manifests[0]")


def test_content_whose_length_is_not_its_descriptors_is_refused():
    stated = model.Descriptor(model.OCI_MANIFEST, DIGEST, 4)
    with pytest.raises(KitError, match="is 3 bytes, but its descriptor says 4"):
        model.check_size(b"abc", stated, "entry x")
    assert model.check_size(b"abcd", stated, "entry x") == b"abcd"


def test_only_schema_version_2_is_read():
    with pytest.raises(KitError, match="schemaVersion is 3, expected 2"):
        model.parse(json.dumps({"schemaVersion": 3, "manifests": []}).encode())


def test_an_attestation_is_never_what_a_runtime_takes():
    unknown = Platform("unknown", "unknown")
    attestation = model.Descriptor(model.OCI_MANIFEST, DIGEST, 10, unknown,
                                   {"vnd.docker.reference.type": "attestation-manifest"})
    with pytest.raises(KitError, match="no image for unknown/unknown"):
        manifests.select([attestation], unknown)


# --- verify --------------------------------------------------------------------------------------------------

def test_a_binary_of_another_architecture_is_named():
    found = elf.ElfInfo("EM_X86_64", 64, True, "ET_EXEC")
    assert elf.judge(found, ARM64) == "amd64 binary in a linux/arm64 image"


def test_an_armv7_binary_in_an_arm_v6_image_needs_a_newer_cpu():
    found = elf.ElfInfo("EM_ARM", 32, True, "ET_EXEC", arm_version=7)
    assert elf.judge(found, Platform("linux", "arm", "v6")) == "ARMv7 binary in a linux/arm/v6 image (needs a newer CPU)"


def test_test_data_of_a_source_tree_is_expected_elsewhere():
    found = elf.ElfInfo("EM_S390", 64, False, "ET_EXEC")
    assert elf.expected_elsewhere("usr/lib/go/src/debug/elf/testdata/go-relocation-test", found).startswith("test data")


# --- statistics ----------------------------------------------------------------------------------------------

def test_identical_times_give_an_interval_of_no_width():
    r = stats.unpaired_ratio([10.0] * 5, [2.0] * 5)
    assert r.low == r.value == r.high == pytest.approx(5.0) and r.method is stats.Method.WELCH_T
