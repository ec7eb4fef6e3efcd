"""containerd's documented platform semantics, as tables, plus hypothesis round trips."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from multiarch_kit.core.errors import KitError
from multiarch_kit.lab import article
from multiarch_kit.oci import manifests
from multiarch_kit.oci import platforms as pf
from multiarch_kit.oci.matching import only, only_strict, runs_natively
from multiarch_kit.oci.platforms import Platform


@pytest.mark.parametrize(
    "text, expected",
    [
        ("linux/amd64", ("linux", "amd64", "")),
        ("linux/x86_64", ("linux", "amd64", "")),
        ("linux/x86-64", ("linux", "amd64", "")),
        ("linux/amd64/v1", ("linux", "amd64", "")),
        ("linux/amd64/v3", ("linux", "amd64", "v3")),
        ("linux/i386", ("linux", "386", "")),
        ("linux/aarch64", ("linux", "arm64", "")),
        ("linux/arm64", ("linux", "arm64", "")),
        ("linux/arm64/v8", ("linux", "arm64", "")),  # parsed values are normalised: v8 is arm64's default
        ("linux/aarch64/8", ("linux", "arm64", "")),
        ("linux/arm64/v9.0", ("linux", "arm64", "v9")),
        ("linux/arm", ("linux", "arm", "v7")),  # and arm's default v7 is written out
        ("linux/arm/v7", ("linux", "arm", "v7")),
        ("linux/arm/7", ("linux", "arm", "v7")),
        ("linux/arm/6", ("linux", "arm", "v6")),
        ("linux/armhf", ("linux", "arm", "v7")),
        ("linux/armel", ("linux", "arm", "v6")),
        ("Linux/AMD64", ("linux", "amd64", "")),
        ("macos/arm64", ("darwin", "arm64", "")),
        ("aarch64", ("linux", "arm64", "")),  # a lone architecture: linux
        ("armhf", ("linux", "arm", "v7")),
        ("arm64", ("linux", "arm64", "")),
        ("windows(10.0.17763+win32k)/amd64", ("windows", "amd64", "")),
    ],
)
def test_parse(text, expected):
    p = pf.parse(text)
    assert (p.os, p.architecture, p.variant) == expected


def test_parse_os_version_and_features():
    p = pf.parse("windows(10.0.17763+win32k+foo)/amd64")
    assert (p.os_version, p.os_features) == ("10.0.17763", ("win32k", "foo"))


def test_lone_os_takes_this_process_architecture():
    p = pf.parse("linux")
    assert p.os == "linux" and p.architecture in pf.KNOWN_ARCH


@pytest.mark.parametrize(
    "text",
    ["", "/", "/linux/amd64", "linux/amd64/", "linux//amd64", "linux/amd 64", "linux/amd64&", "linux/arm/v7/x",
     "linux/*", "nonsense", " linux/amd64", "linux/am$d64"],
)
def test_parse_rejects(text):
    with pytest.raises(ValueError):
        pf.parse(text)


@pytest.mark.parametrize(
    "raw, normalized",
    [
        (Platform("linux", "aarch64", "v8"), "linux/arm64"),
        (Platform("linux", "arm64", "v8.0"), "linux/arm64"),
        (Platform("linux", "arm64", "9"), "linux/arm64/v9"),
        (Platform("linux", "arm", ""), "linux/arm/v7"),
        (Platform("linux", "arm", "5"), "linux/arm/v5"),
        (Platform("linux", "armhf", ""), "linux/arm/v7"),
        (Platform("LINUX", "x86_64", "v1"), "linux/amd64"),
        (Platform("linux", "i386", "v9"), "linux/386"),
    ],
)
def test_a_platform_is_normalised_when_made(raw, normalized):
    assert pf.format(raw) == normalized


def test_format():
    assert pf.format(Platform("linux", "arm", "v7")) == "linux/arm/v7"
    assert pf.format(Platform("", "amd64")) == "unknown"


def _fmt(matcher):
    return [pf.format(w) for w in matcher.wanted]


@pytest.mark.parametrize(
    "want, vector",
    [
        ("linux/amd64", ["linux/amd64", "linux/386"]),
        ("linux/amd64/v3", ["linux/amd64/v3", "linux/amd64/v2", "linux/amd64", "linux/386"]),
        ("linux/arm/v7", ["linux/arm/v7", "linux/arm/v6", "linux/arm/v5"]),
        ("linux/arm/v5", ["linux/arm/v5"]),
        ("linux/arm64", ["linux/arm64", "linux/arm/v8", "linux/arm/v7", "linux/arm/v6", "linux/arm/v5"]),
        ("linux/arm64/v8.2", ["linux/arm64/v8.2", "linux/arm64/v8.1", "linux/arm64", "linux/arm/v8", "linux/arm/v7",
                              "linux/arm/v6", "linux/arm/v5"]),
        ("linux/arm64/v9.1", ["linux/arm64/v9.1", "linux/arm64/v9", "linux/arm64/v8.6", "linux/arm64/v8.5",
                              "linux/arm64/v8.4", "linux/arm64/v8.3", "linux/arm64/v8.2", "linux/arm64/v8.1",
                              "linux/arm64", "linux/arm/v8", "linux/arm/v7", "linux/arm/v6", "linux/arm/v5"]),
        ("linux/riscv64", ["linux/riscv64"]),
    ],
)
def test_only_vector(want, vector):
    assert _fmt(only(pf.parse(want))) == vector


@pytest.mark.parametrize(
    "want, candidate, ok",
    [
        ("linux/arm64", "linux/arm64/v8", True),
        ("linux/arm64", "linux/aarch64", True),
        ("linux/arm64", "linux/arm/v7", True),
        ("linux/arm64", "linux/amd64", False),
        ("linux/amd64", "linux/386", True),
        ("linux/amd64", "linux/arm64", False),
        ("linux/arm/v7", "linux/arm/v6", True),
        ("linux/arm/v6", "linux/arm/v7", False),
        ("linux/arm/v7", "linux/arm64", False),
        ("linux/amd64", "windows/amd64", False),
    ],
)
def test_only_match(want, candidate, ok):
    assert only(pf.parse(want)).match(pf.parse(candidate)) is ok


def test_only_strict_matches_only_itself_after_normalisation():
    m = only_strict(pf.parse("linux/arm64"))
    assert m.match(pf.parse("linux/aarch64/v8"))
    assert not m.match(pf.parse("linux/arm/v7"))
    assert not only_strict(pf.parse("linux/amd64")).match(pf.parse("linux/386"))


def test_ranking_prefers_the_exact_platform():
    m = only(pf.parse("linux/arm64"))
    assert [m.rank(pf.parse(p)) for p in ("linux/arm64", "linux/arm/v7", "linux/arm/v6", "linux/amd64")] == [0, 2, 3, None]


def test_windows_os_version_must_match_build():
    m = only(pf.parse("windows(10.0.17763)/amd64"))
    assert m.match(Platform("windows", "amd64", os_version="10.0.17763.1234"))
    assert not m.match(Platform("windows", "amd64", os_version="10.0.20348.1"))


# --- select / explain -------------------------------------------------------------------------------

def _d(platform, digest, attestation_of=None) -> manifests.Descriptor:
    os_, arch, *var = platform.split("/")
    d = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": 1,
         "platform": {"os": os_, "architecture": arch, **({"variant": var[0]} if var else {})}}
    if attestation_of:
        d["annotations"] = {"vnd.docker.reference.type": "attestation-manifest",
                            "vnd.docker.reference.digest": attestation_of}
    return manifests.Descriptor.from_json(d, "test entry")


INDEX = [_d("linux/amd64", "sha256:a"), _d("linux/arm/v6", "sha256:b6"), _d("linux/arm/v7", "sha256:b7"),
         _d("linux/arm64", "sha256:c"), _d("unknown/unknown", "sha256:att", attestation_of="sha256:a")]
P = Platform.parse


@pytest.mark.parametrize(
    "want, digest",
    [("linux/amd64", "sha256:a"), ("linux/arm64", "sha256:c"), ("linux/arm/v7", "sha256:b7"),
     ("linux/arm/v6", "sha256:b6"), ("linux/arm/v8", "sha256:b7")],
)
def test_select(want, digest):
    assert manifests.select(INDEX, P(want)).digest == digest


def test_select_falls_back_to_32_bit_arm_on_arm64():
    index = [_d("linux/amd64", "sha256:a"), _d("linux/arm/v6", "sha256:b6"), _d("linux/arm/v7", "sha256:b7")]
    assert manifests.select(index, P("linux/arm64")).digest == "sha256:b7"


def test_select_keeps_index_order_between_equal_ranks():
    index = [_d("linux/arm64", "sha256:first"), _d("linux/arm64/v8", "sha256:second")]
    assert manifests.select(index, P("linux/arm64")).digest == "sha256:first"


def test_select_never_picks_attestations_and_lists_what_is_there():
    with pytest.raises(KitError) as err:
        manifests.select([_d("linux/amd64", "sha256:a"), _d("unknown/unknown", "sha256:att", "sha256:a")],
                         P("linux/s390x"))
    assert "no image for linux/s390x" in err.value.message and "(it has: linux/amd64)" in err.value.message


def test_bad_platform_text_is_a_kit_error():
    with pytest.raises(KitError, match="invalid platform"):
        P("linux//arm64")


def test_explain():
    df = manifests.explain(INDEX, P("linux/arm64"))
    assert list(df.platform) == ["linux/amd64", "linux/arm/v6", "linux/arm/v7", "linux/arm64", "unknown/unknown"]
    assert list(df.match) == [False, True, True, True, False]
    assert list(df["rank"].astype(object).where(df["rank"].notna(), None)) == [None, 3, 2, 0, None]
    assert list(df.chosen) == [False, False, False, True, False]
    assert df.reason[4].startswith("attestation")


# --- hypothesis: parse/format round trips and only ValueError escapes -----------------------------------

ARCH_VARIANTS = [("amd64", ""), ("amd64", "v2"), ("amd64", "v3"), ("386", ""), ("arm64", ""), ("arm64", "v8.2"),
                 ("arm64", "v9"), ("arm", "v5"), ("arm", "v6"), ("arm", "v7"), ("arm", "v8"), ("riscv64", ""),
                 ("s390x", ""), ("ppc64le", "")]
normalized_platforms = st.builds(
    lambda os_, av: Platform(os_, *av), st.sampled_from(sorted(pf.KNOWN_OS)), st.sampled_from(ARCH_VARIANTS)
)


@settings(max_examples=300, deadline=None)
@given(normalized_platforms)
def test_format_then_parse_round_trips(p):
    assert pf.parse(pf.format(p)) == p
    assert pf.format(pf.parse(pf.format(p))) == pf.format(p)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="linuxarm64dw/v7._-( )+*&", max_size=30))
def test_parse_raises_only_value_error(text):
    try:
        p = pf.parse(text)
    except ValueError:
        return
    # Whatever parses formats to text that parses back to the same os/architecture/variant.
    again = pf.parse(pf.format(p))
    assert (again.os, again.architecture, again.variant) == (p.os, p.architecture, p.variant)


def test_who_gets():
    df = manifests.who_gets(INDEX[:1] + INDEX[3:], article.DEVICES)  # amd64, arm64 and an attestation
    got = dict(zip(df.device, df.gets))
    assert got["M2 Mac (Docker Desktop)"] == "linux/arm64"
    assert got["Intel Mac (Docker Desktop)"] == "linux/amd64"
    assert got["Raspberry Pi 3, 32-bit OS"] == "nothing (no matching manifest)"
    assert list(df.digest)[:2] == ["sha256:c", "sha256:a"]


# --- the kit's one spelling, and the one architecture table --------------------------------------------

@pytest.mark.parametrize("text, canonical", [
    ("linux/arm", "linux/arm/v7"), ("linux/arm/v7", "linux/arm/v7"), ("linux/armhf", "linux/arm/v7"),
    ("linux/arm64/v8", "linux/arm64"), ("linux/aarch64", "linux/arm64"), ("linux/x86_64", "linux/amd64"),
    ("arm64", "linux/arm64")])
def test_one_spelling_per_platform(text, canonical):
    assert str(Platform.parse(text)) == canonical
    assert Platform.parse(text) == Platform.parse(canonical)


@pytest.mark.parametrize("text, uname, qemu, debian, elf, gnu", [
    ("linux/amd64", "x86_64", "qemu-x86_64", "amd64", "EM_X86_64", "x86_64-linux-gnu"),
    ("linux/aarch64", "aarch64", "qemu-aarch64", "arm64", "EM_AARCH64", "aarch64-linux-gnu"),
    ("linux/arm", "armv7l", "qemu-arm", "armhf", "EM_ARM", "arm-linux-gnueabihf"),
])
def test_architecture_table(text, uname, qemu, debian, elf, gnu):
    a = Platform.parse(text).arch
    assert (a.uname, a.qemu, a.debian, a.elf_machine, a.gnu) == (uname, qemu, debian, elf, gnu)
    assert pf.from_uname(uname) == Platform.parse(text)


def test_architecture_table_is_unique_per_platform_and_for_elf():
    platforms = [str(a.platform) for a in pf.ARCHITECTURES]
    assert len(platforms) == len(set(platforms))
    for a in pf.ARCHITECTURES:
        assert pf.architecture_for_elf(a.elf_machine, a.elf_class, a.little_endian) == a.architecture


def test_unknown_architecture_is_a_kit_error():
    with pytest.raises(KitError, match="no architecture table entry for linux/sparc64"):
        P("linux/sparc64").arch


def test_parse_list_refuses_a_platform_given_twice():
    assert pf.parse_list("linux/amd64, linux/arm/v7") == [pf.AMD64, pf.ARMV7]
    with pytest.raises(KitError, match="linux/arm64 is given twice"):
        pf.parse_list("linux/arm64,linux/aarch64")


# --- one value per platform, however containerd lets it be spelled ---------------------------------------

ONE_PLATFORM = settings(max_examples=300, deadline=None, derandomize=True)
# Every spelling containerd accepts for one platform: text for parse, an OCI platform object, a uname -m.
SPELLINGS = {
    "linux/arm64": ["linux/arm64", "linux/arm64/v8", "linux/arm64/8", "linux/arm64/v8.0", "linux/aarch64",
                    "linux/aarch64/v8", "arm64", "aarch64", {"os": "linux", "architecture": "arm64", "variant": "v8"},
                    {"os": "linux", "architecture": "arm64", "variant": "8"},
                    {"os": "linux", "architecture": "arm64", "variant": ""}, {"os": "linux", "architecture": "arm64"},
                    {"os": "linux", "architecture": "aarch64", "variant": "v8"}, ("uname", "aarch64")],
    "linux/arm/v7": ["linux/arm/v7", "linux/arm", "linux/armhf", "arm", "armhf", "linux/arm/7",
                     {"os": "linux", "architecture": "arm", "variant": "v7"},
                     {"os": "linux", "architecture": "arm", "variant": "7"}, {"os": "linux", "architecture": "arm"},
                     ("uname", "armv7l")],
    "linux/amd64": ["linux/amd64", "linux/amd64/v1", "linux/x86_64", "linux/x86-64", "amd64", "x86_64", "x86-64",
                    {"os": "linux", "architecture": "amd64"}, {"os": "linux", "architecture": "amd64", "variant": "v1"},
                    {"os": "linux", "architecture": "x86_64", "variant": ""}, ("uname", "x86_64")],
}


def _make(spelling, upper: list[bool]) -> Platform:
    def case(text: str) -> str:  # containerd ignores case in OS, architecture and variant
        return "".join(c.upper() if up else c for c, up in zip(text, upper + [False] * len(text)))

    if isinstance(spelling, dict):
        return Platform.from_oci({k: case(v) for k, v in spelling.items()})
    if isinstance(spelling, tuple):
        return pf.from_uname(case(spelling[1]))
    return Platform.parse(case(spelling))


@ONE_PLATFORM
@given(st.sampled_from(sorted(SPELLINGS)).flatmap(lambda c: st.tuples(st.just(c), st.sampled_from(SPELLINGS[c]))),
       st.lists(st.booleans(), max_size=20))
def test_every_spelling_of_a_platform_is_one_value(canonical_and_spelling, upper):
    canonical, spelling = canonical_and_spelling
    p, want = _make(spelling, upper), Platform.parse(canonical)
    assert p == want and hash(p) == hash(want)
    assert str(p) == canonical and {want: "found"}[p] == "found"
    assert (p.os, p.architecture, p.variant) == (want.os, want.architecture, want.variant)


@ONE_PLATFORM
@given(st.sampled_from(sorted(SPELLINGS)), st.sampled_from(sorted(SPELLINGS)))
def test_different_platforms_stay_different(a, b):
    assert (Platform.parse(a) == Platform.parse(b)) is (a == b)


def test_from_oci_and_parse_agree_on_arm64_v8():
    oci = Platform.from_oci({"os": "linux", "architecture": "arm64", "variant": "v8"})
    assert oci == Platform.parse("linux/arm64") and hash(oci) == hash(Platform.parse("linux/arm64"))
    assert oci.variant == "" and Platform("linux", "aarch64", "v8") == pf.ARM64


@pytest.mark.parametrize("engine, platform, native", [
    ("linux/amd64", "linux/amd64", True),
    ("linux/amd64", "linux/386", True),  # containerd's amd64 vector ends with 386
    ("linux/amd64", "linux/arm64", False),
    ("linux/amd64", "linux/arm/v7", False),
    ("linux/arm64", "linux/arm64", True),
    ("linux/arm64", "linux/aarch64/v8", True),
    ("linux/arm64", "linux/arm/v7", True),  # and arm64's takes 32-bit arm up to v8
    ("linux/arm64", "linux/arm/v8", True),
    ("linux/arm64", "linux/amd64", False),
    ("linux/arm/v7", "linux/arm64", False),
    ("linux/arm/v7", "linux/arm/v6", True),
])
def test_runs_natively(engine, platform, native):
    assert runs_natively(P(engine), P(platform)) is native
