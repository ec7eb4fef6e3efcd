"""Fuzzing (hypothesis, fixed example budget): whatever the input, only the kit's own error type escapes."""

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import DATA
from multiarch_kit import manifests, platforms, references
from multiarch_kit.errors import KitError

# A fixed budget and a fixed seed: `make test` runs the same examples every time.
BUDGET = settings(max_examples=400, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])

leaves = (st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True) | st.text(max_size=12)
          | st.sampled_from(["sha256:" + "a" * 64, "application/vnd.oci.image.index.v1+json",
                             "application/vnd.docker.distribution.manifest.v2+json", "linux", "arm64", "v7",
                             "unknown", "attestation-manifest", "vnd.docker.reference.type"]))
VOCABULARY = ["schemaVersion", "mediaType", "manifests", "config", "layers", "digest", "size", "platform",
              "annotations", "os", "architecture", "variant", "os.version", "os.features", "rootfs", "diff_ids",
              "vnd.docker.reference.digest", "vnd.docker.reference.type", "Labels"]
shaped = st.recursive(leaves, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.sampled_from(VOCABULARY) | st.text(max_size=6), inner, max_size=6),
                      max_leaves=40)


def _only_kit_errors(fn, *args):
    try:
        return fn(*args)
    except KitError:
        return None


def _exercise(parsed):
    """Use what parsed the way the kit does: tables, selection, explanation."""
    if isinstance(parsed, manifests.Index):
        for want in ("linux/arm64", "linux/arm/v7", "linux/amd64"):
            _only_kit_errors(platforms.select, parsed.manifests, want)
            platforms.explain(parsed.manifests, want)
        platforms.who_gets(parsed.manifests)
        for d in parsed.manifests:
            d.is_attestation, d.attests  # evaluated for their exceptions


@BUDGET
@given(st.binary(max_size=300))
def test_manifest_bytes(raw):
    _exercise(_only_kit_errors(manifests.parse, raw))


@BUDGET
@given(shaped, st.sampled_from(["", "application/vnd.oci.image.index.v1+json",
                                "application/vnd.docker.distribution.manifest.v2+json"]))
def test_manifest_shapes(obj, header):
    raw = json.dumps(obj, allow_nan=True).encode()
    _exercise(_only_kit_errors(manifests.parse, raw, header))
    _only_kit_errors(manifests.parse_config, raw)


REAL = json.loads((DATA / "buildx-index-with-attestations.json").read_bytes())


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


PATHS = [p for p in _paths(REAL) if p]


@BUDGET
@given(st.sampled_from(PATHS), shaped)
def test_mutated_real_index(path, value):
    obj = json.loads(json.dumps(REAL))
    target = obj
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    _exercise(_only_kit_errors(manifests.parse, json.dumps(obj, allow_nan=True).encode()))


@BUDGET
@given(st.text(max_size=60) | st.from_regex(r"(docker://|oci:|oci-archive:|docker-archive:)?[a-zA-Z0-9:/@._-]{0,60}",
                                            fullmatch=True))
def test_references(text):
    ref = _only_kit_errors(references.parse_reference, text)
    if ref is not None:
        assert references.parse_reference(str(ref)) == ref  # what parses prints back to itself


@BUDGET
@given(st.text(max_size=40) | st.from_regex(r"[a-z0-9()+./_-]{0,30}", fullmatch=True))
def test_platforms(text):
    p = _only_kit_errors(platforms.parse, text)
    if p is not None:
        platforms.only(p).match(p)
        assert platforms.only(p).match(platforms.parse(platforms.format(p)))
