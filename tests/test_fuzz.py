"""Fuzzing (hypothesis, fixed example budget): whatever the input, only the kit's own error type escapes.

Manifests, configs, references and platforms from text; image archives and OCI layouts built on disk
(truncated, wrong types, missing blobs, symbolic links and names that leave the archive).
"""

import hashlib
import io
import json
import tarfile
from pathlib import PurePosixPath

import pytest
from conftest import DATA
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from multiarch_kit.core.errors import KitError
from multiarch_kit.lab import article
from multiarch_kit.oci import manifests, matching, platforms, references
from multiarch_kit.oci.platforms import Platform

# The budget and the seed are the profile's (tests/conftest.py): `make test` runs the same examples every time,
# `make fuzz` explores. An example fuzzing found, once understood, is kept here as an @example.
BUDGET = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])

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


def _refused(says: tuple[str, ...], fn, *args):
    """``fn(*args)``, or None when the kit refuses with a KitError whose message starts with one of ``says``.

    Any other exception, or a refusal that says something else, fails the test: each input has its own reason.
    """
    try:
        return fn(*args)
    except KitError as exc:
        expected = tuple(" ".join(x.split()) for x in says)  # a KitError's message is one line, spaces folded
        assert exc.message.startswith(expected), exc.message
        return None


# What a manifest parser may say when it refuses bytes.
NOT_A_MANIFEST = ("malformed manifest: ", "this is a Docker schema 1 manifest", "unknown manifest media type")


def _exercise(parsed):
    """Use what parsed the way the kit does: tables, selection, explanation."""
    if isinstance(parsed, manifests.Index):
        for want in platforms.LAB_PLATFORMS:
            _refused((f"no image for {want} in this index",), manifests.select, parsed.manifests, want)
            manifests.explain(parsed.manifests, want)
        manifests.who_gets(parsed.manifests, article.DEVICES)
        for d in parsed.manifests:
            d.is_attestation, d.attests  # evaluated for their exceptions


@BUDGET
@given(st.binary(max_size=300))
def test_manifest_bytes(raw):
    _exercise(_refused(NOT_A_MANIFEST, manifests.parse, raw))


@BUDGET
@given(shaped, st.sampled_from(["", "application/vnd.oci.image.index.v1+json",
                                "application/vnd.docker.distribution.manifest.v2+json"]))
def test_manifest_shapes(obj, header):
    raw = json.dumps(obj, allow_nan=True).encode()
    _exercise(_refused(NOT_A_MANIFEST, manifests.parse, raw, header))
    _refused(NOT_A_MANIFEST, manifests.parse_config, raw)


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
    _exercise(_refused(NOT_A_MANIFEST, manifests.parse, json.dumps(obj, allow_nan=True).encode()))


@BUDGET
@given(st.text(max_size=60) | st.from_regex(r"(docker://|oci:|oci-archive:|docker-archive:)?[a-zA-Z0-9:/@._-]{0,60}",
                                            fullmatch=True))
def test_references(text):
    # Not the whole text: after a transport the message quotes what follows it ('docker://' names '').
    ref = _refused(("invalid reference ",), references.parse_reference, text)
    if ref is not None:
        assert references.parse_reference(str(ref)) == ref  # what parses prints back to itself


@BUDGET
@given(st.text(max_size=40) | st.from_regex(r"[a-z0-9()+./_-]{0,30}", fullmatch=True))
def test_platforms(text):
    p = _refused((f"invalid platform {text!r}: ",), platforms.parse, text)
    if p is not None:
        matching.only(p).match(p)
        assert matching.only(p).match(platforms.parse(platforms.format(p)))
        assert Platform.parse(str(p)) == p  # the kit's spelling reads back as itself


# --- archives and layouts --------------------------------------------------------------------------------

def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _layout_files(index_obj, blobs: dict[str, bytes]) -> dict[str, bytes]:
    files = {"oci-layout": b'{"imageLayoutVersion": "1.0.0"}', "index.json": json.dumps(index_obj).encode()}
    files.update({f"blobs/sha256/{d.removeprefix('sha256:')}": b for d, b in blobs.items()})
    return files


def _valid_layout() -> dict[str, bytes]:
    config = json.dumps({"architecture": "arm64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": _digest(config), "size": len(config)}, "layers": []}).encode()
    index = {"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                                "digest": _digest(manifest), "size": len(manifest),
                                                "platform": {"os": "linux", "architecture": "arm64"}}]}
    return _layout_files(index, {_digest(config): config, _digest(manifest): manifest})


def _tar(files: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return buf.getvalue()


def _names_the_archive(path, fn, *args):
    """``fn(*args)``, or None when the kit refuses with a KitError that names the archive at fault."""
    try:
        return fn(*args)
    except KitError as exc:
        assert str(path) in exc.message, exc.message
        return None


def _read_every_way(tmp, data: bytes) -> dict[str, list[str] | None]:
    """Per transport, the platforms the archive holds, or None where the kit refused it (naming the file)."""
    path = tmp / "image.tar"
    path.write_bytes(data)
    read = {}
    for transport in ("oci-archive", "docker-archive"):
        ref = f"{transport}:{path}"
        result = _names_the_archive(path, manifests.inspect, ref)
        if result is not None:
            result.table(), result.tree()
        _names_the_archive(path, manifests.raw, ref)  # reads only the top manifest, so it may succeed alone
        read[transport] = None if result is None else [str(e.platform) for e in result.images()]
    return read


# The valid layout read each way: an OCI archive with one linux/arm64 image, and no manifest.json for docker load.
VALID = {"oci-archive": ["linux/arm64"], "docker-archive": None}


def test_the_valid_layout_reads(tmp_path):
    (tmp_path / "image.tar").write_bytes(_tar(_valid_layout()))
    assert [str(e.platform) for e in manifests.inspect(f"oci-archive:{tmp_path / 'image.tar'}").images()] == \
        ["linux/arm64"]


@BUDGET
@given(st.integers(0, 10_000))
def test_truncated_archives(tmp_path_factory, cut):
    data = _tar(_valid_layout())
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = tar.getmembers()
    last_byte = max(m.offset_data + m.size for m in members)
    last_block = -(-last_byte // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
    cut %= len(data)
    read = _read_every_way(tmp_path_factory.mktemp("cut"), data[:cut])
    if cut < last_byte:  # a member lost bytes: refused, naming the file
        assert read == {"oci-archive": None, "docker-archive": None}
    elif cut >= last_block:  # only the end-of-archive zeros are gone: nothing is lost
        assert read == VALID


@BUDGET
@given(st.sampled_from(["index.json", "manifest.json", "oci-layout"]), shaped)
def test_wrong_types_in_archive_json(tmp_path_factory, name, value):
    files = _valid_layout()
    files[name] = json.dumps(value, allow_nan=True).encode()
    read = _read_every_way(tmp_path_factory.mktemp("types"), _tar(files))
    # Only index.json matters to an OCI archive (oci-layout is not read); a docker archive is refused either way.
    assert read == ({"oci-archive": None, "docker-archive": None} if name == "index.json" else VALID)


@BUDGET
@given(st.lists(st.sampled_from(sorted(_valid_layout())), max_size=3, unique=True))
def test_missing_blobs_and_files(tmp_path_factory, missing):
    files = {k: v for k, v in _valid_layout().items() if k not in missing}
    read = _read_every_way(tmp_path_factory.mktemp("missing"), _tar(files))
    needed = set(missing) - {"oci-layout"}  # index.json and every blob are read; oci-layout is not
    assert read == ({"oci-archive": None, "docker-archive": None} if needed else VALID)


NAMES = st.sampled_from(["../../../etc/passwd", "/etc/passwd", "blobs/../../x", "a\u0000b", "", "..",
                         "blobs/sha256/../../../etc/hostname", "./../x", "config.json", "layer.tar"]) | st.text(max_size=20)

# A docker-archive image of another platform: what a reader that followed the names given would find.
LAYER = _tar({"hello": b"hi\n"})
ELSEWHERE = json.dumps({"architecture": "s390x", "os": "linux",
                        "rootfs": {"type": "layers", "diff_ids": [_digest(LAYER)]}}).encode()


def _leaves(name: str) -> bool:
    """The rule, spelled out: a member name that is absolute, climbs with `..` or hides a NUL leaves the archive."""
    pure = PurePosixPath(name.removeprefix("./"))
    return pure.is_absolute() or ".." in pure.parts or "\0" in name


@BUDGET
@given(NAMES, NAMES)
# Found by Hypothesis: a layer named index.json is the archive's own member, not one planted by the test. The kit
# reads it as any member (it is inside the archive); the test used to expect a refusal for names it had not planted.
@example(config_name="config.json", layer_name="index.json")
@example(config_name="index.json", layer_name="layer.tar")
@example(config_name="config.json", layer_name="\x80/")  # tar keeps the member as "\x80", docker load finds it
def test_docker_archive_names_that_leave_the_archive(tmp_path_factory, config_name, layer_name):
    files = _valid_layout()
    files["manifest.json"] = json.dumps([{"Config": config_name, "RepoTags": ["x:y"], "Layers": [layer_name]}]).encode()
    # Each name is also a member holding a good image, so following a name that leaves would read it, not fail.
    planted = {n: data for n, data in ((layer_name, LAYER), (config_name, ELSEWHERE))
               if n and "\0" not in n and n not in files}
    path = tmp_path_factory.mktemp("names") / "image.tar"
    path.write_bytes(_tar({**files, **planted}))
    bad = next((n for n in (config_name, layer_name) if not n or _leaves(n)), None)
    if bad is not None:
        with pytest.raises(KitError) as caught:
            manifests.inspect(f"docker-archive:{path}")
        why = "is not text" if bad == "" else "points outside the archive"
        assert caught.value.message == f"{path}: file name {bad!r} {why}"
        return
    # A name is followed as docker load follows it: cleaned (`a/`, `a//b`, `./a` name the member `a`, `a/b`); the
    # members are the archive's regular files as tar reads them back.
    with tarfile.open(path) as tar:
        members = {m.name: m for m in tar.getmembers() if m.isfile()}
    config, layer = (str(PurePosixPath(n.removeprefix("./"))) for n in (config_name, layer_name))
    if {config, layer} <= members.keys():  # both are members: their image is read
        with tarfile.open(path) as tar:
            holds_elsewhere = tar.extractfile(members[config]).read() == ELSEWHERE
        if holds_elsewhere:
            assert [str(e.platform) for e in manifests.inspect(f"docker-archive:{path}").images()] == ["linux/s390x"]
        else:  # the config is one of the layout's own files: read as a config, it may not be one
            try:
                manifests.inspect(f"docker-archive:{path}")
            except KitError as exc:
                assert "outside" not in exc.message
    else:  # names that are not members are missing, never looked for elsewhere
        with pytest.raises(KitError) as caught:
            manifests.inspect(f"docker-archive:{path}")
        assert str(path) in caught.value.message and "outside" not in caught.value.message


def test_symlinks_never_stand_in_for_blobs(tmp_path):
    files = _valid_layout()
    index = json.loads(files["index.json"])
    target = index["manifests"][0]["digest"].removeprefix("sha256:")
    del files[f"blobs/sha256/{target}"]
    (tmp_path / "image.tar").write_bytes(_tar(files, links={f"blobs/sha256/{target}": "/etc/passwd"}))
    with pytest.raises(KitError) as caught:  # a symbolic link is never read as a blob
        manifests.inspect(f"oci-archive:{tmp_path / 'image.tar'}")
    assert "is missing" in caught.value.message


def test_layout_directory_link_leaving_the_layout(tmp_path):
    layout = tmp_path / "layout"
    for name, data in _valid_layout().items():
        (layout / name).parent.mkdir(parents=True, exist_ok=True)
        (layout / name).write_bytes(data)
    digest = json.loads((layout / "index.json").read_text())["manifests"][0]["digest"].removeprefix("sha256:")
    outside = tmp_path / "outside"
    outside.write_bytes((layout / "blobs" / "sha256" / digest).read_bytes())
    (layout / "blobs" / "sha256" / digest).unlink()
    (layout / "blobs" / "sha256" / digest).symlink_to(outside)
    with pytest.raises(KitError) as caught:  # a link out of the layout is never followed
        manifests.inspect(f"oci:{layout}")
    assert "outside the layout" in caught.value.message
