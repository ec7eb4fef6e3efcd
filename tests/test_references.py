"""References as values: parsed once, then moved to a digest or another tag, and written for the docker CLI."""

import pytest

from multiarch_kit.core.errors import KitError
from multiarch_kit.oci.references import Reference, parse_reference

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize("text, name, tag, docker", [
    ("localhost:5000/app", "localhost:5000/app", "latest", "localhost:5000/app:latest"),  # no tag: latest
    ("localhost:5000/app:v1", "localhost:5000/app", "v1", "localhost:5000/app:v1"),
    ("docker://localhost:5000/team/app:v1", "localhost:5000/team/app", "v1", "localhost:5000/team/app:v1"),
    (f"localhost:5000/app@{DIGEST}", "localhost:5000/app", "", f"localhost:5000/app@{DIGEST}"),
    ("127.0.0.1:5001/a/b/c", "127.0.0.1:5001/a/b/c", "latest", "127.0.0.1:5001/a/b/c:latest"),
    ("alpine:3.18", "alpine", "3.18", "alpine:3.18"),
])
def test_parsed_once_then_written_for_the_docker_cli(text, name, tag, docker):
    ref = parse_reference(text)
    assert (ref.transport, ref.name, ref.tag) == ("docker", name, tag)
    assert ref.docker == docker and not ref.docker.startswith("docker://")
    assert parse_reference(ref.docker) == ref and parse_reference(ref) is ref  # a value passes through as it is


@pytest.mark.parametrize("text, repository", [
    ("localhost:5000/app", "localhost:5000/app"),  # the bug: cutting at the last ':' gave "localhost"
    ("localhost:5000/app:v1", "localhost:5000/app"),
    (f"localhost:5000/app:v1@{DIGEST}", "localhost:5000/app"),
    ("[::1]:5000/app", "[::1]:5000/app"),
    ("alpine", "alpine"),
])
def test_at_a_digest_keeps_the_repository_and_host_with_its_port(text, repository):
    other = "sha256:" + "cd" * 32
    at = parse_reference(text).at(other)
    assert at == Reference("docker", repository, "", other)
    assert at.docker == f"{repository}@{other}" and at.registry_ref == other
    assert parse_reference(at.docker) == at


@pytest.mark.parametrize("text, docker", [
    ("localhost:5000/app", "localhost:5000/app:v1-split-amd64"),
    (f"localhost:5000/app@{DIGEST}", "localhost:5000/app:v1-split-amd64"),  # the digest goes with the old name
    ("localhost:5000/app:old", "localhost:5000/app:v1-split-amd64"),
])
def test_with_tag_names_another_tag_of_the_repository(text, docker):
    ref = parse_reference(text).with_tag("v1-split-amd64")
    assert (ref.tag, ref.digest, ref.docker) == ("v1-split-amd64", "", docker)


@pytest.mark.parametrize("call, message", [
    (lambda r: r.at("sha256:123"), "is not a sha256 digest"),
    (lambda r: r.at(""), "is not a sha256 digest"),
    (lambda r: r.with_tag("bad tag"), "is not a tag"),
    (lambda r: r.with_tag("-x"), "is not a tag"),
])
def test_bad_digests_and_tags_are_refused(call, message):
    with pytest.raises(KitError, match=message):
        call(parse_reference("localhost:5000/app:v1"))


@pytest.mark.parametrize("text", ["oci-archive:out.tar", "docker-archive:out.tar:app:v1", "oci:layout"])
def test_archives_have_no_docker_form_nor_digests(text):
    ref = parse_reference(text)
    for call in (lambda: ref.docker, lambda: ref.at(DIGEST), lambda: ref.with_tag("v1")):
        with pytest.raises(KitError, match="is not in a registry"):
            call()
