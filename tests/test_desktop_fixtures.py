"""Docker Desktop's real output, recorded from public reports (tests/data/desktop/README.md names each source),
read by the same code that reads a live engine: no engine needed.

The kit asks the engine through the API; reports carry the CLI's text, so two small readers below turn the
text of ``docker info`` and ``docker version`` into the API's dicts (the CLI prints those same fields under
labels). ``docker info -f json`` needs no reader: it is the API's dict.
"""

import json

import pytest
from conftest import DATA

from multiarch_kit import buildx, engine
from multiarch_kit.engine import emulation
from multiarch_kit.engine.emulation import BinfmtHandler
from multiarch_kit.oci.platforms import AMD64, ARM64, ARMV7, Platform

DESKTOP = DATA / "desktop"

# `docker info` labels of the Server section -> the API's /info keys the kit reads.
INFO_KEYS = {"Server Version": "ServerVersion", "Storage Driver": "Driver", "Kernel Version": "KernelVersion",
             "Operating System": "OperatingSystem", "OSType": "OSType", "Architecture": "Architecture", "ID": "ID"}


def info_from_text(text: str) -> dict:
    """The /info fields the kit reads, from `docker info` text: the Server section's top-level lines, and the
    lines under "Storage Driver" as DriverStatus pairs (where `driver-type` names a containerd snapshotter)."""
    info: dict = {"DriverStatus": []}
    server = text.split("\nServer:\n", 1)[1]
    under_driver = False
    for line in server.splitlines():
        label, _, value = line.strip().partition(": ")
        if line.startswith(" ") and not line.startswith("  "):
            under_driver = label == "Storage Driver"
            if label in INFO_KEYS:
                info[INFO_KEYS[label]] = value
        elif under_driver and line.startswith("  ") and value:
            info["DriverStatus"].append([label, value])
    return info


def server_from_version_text(text: str) -> tuple[dict, str, Platform]:
    """The /version fields the kit reads (ApiVersion, containerd's Version) from `docker version` text, with the
    product the Server line names and the engine's OS/Arch."""
    server = text.split("\nServer:", 1)[1]
    product = server.splitlines()[0].strip()
    section, fields = "", {}
    for line in server.splitlines()[1:]:
        if line.startswith(" ") and not line.startswith("  "):
            section = line.strip().rstrip(":")
            continue
        label, _, value = line.strip().partition(":")
        fields[(section, label)] = value.strip()
    api = fields[("Engine", "API version")].split()[0]  # "1.48 (minimum version 1.24)"
    version = {"ApiVersion": api, "Components": [{"Name": "containerd", "Version": fields[("containerd", "Version")]}]}
    return version, product, Platform.parse(fields[("Engine", "OS/Arch")])


def json_excerpt(text: str) -> dict:
    """The complete top-level fields of a JSON object whose stored copy was cut inside a field."""
    lines = text.rstrip("\n").splitlines()
    assert not lines[-1].endswith((",", "}")), "the excerpt is no longer cut: read it with json.loads"
    return json.loads("\n".join(lines[:-1]).rstrip(",") + "\n}")


def test_apple_silicon_info_json_is_an_arm64_engine_with_the_containerd_store():
    info = json_excerpt((DESKTOP / "apple-silicon-docker-info-json-excerpt.txt").read_text())
    facts = engine.facts_from(info, {}, "unix:///Users/me/.docker/run/docker.sock")
    assert facts.platform == ARM64 and str(facts.platform) == "linux/arm64"
    assert facts.operating_system == "Docker Desktop"
    assert facts.kernel == "6.10.4-linuxkit"
    assert (facts.storage_driver, facts.containerd_store) == ("overlayfs", True)
    assert facts.image_store == "containerd"
    assert facts.engine_id == "40a1ced4-6624-4167-8120-aa947723c84e"


def test_intel_info_text_is_an_amd64_engine_with_the_classic_store():
    info = info_from_text((DESKTOP / "intel-docker-info.txt").read_text())
    facts = engine.facts_from(info, {}, "unix:///var/run/docker.sock")
    assert facts.platform == AMD64
    assert facts.operating_system == "Docker Desktop"
    assert facts.server_version == "20.10.13" and facts.kernel == "5.10.104-linuxkit"
    assert (facts.storage_driver, facts.containerd_store) == ("overlay2", False)
    assert facts.image_store == "classic (overlay2)"


def test_the_info_text_reader_finds_a_containerd_snapshotter():
    """The reader above must not make every text engine classic: the containerd store's line is read too."""
    text = "Server:\n Storage Driver: overlayfs\n  driver-type: io.containerd.snapshotter.v1\n Architecture: aarch64\n"
    facts = engine.facts_from(info_from_text("Client:\n" + text), {}, "x")
    assert facts.containerd_store and facts.platform == ARM64


@pytest.mark.parametrize("name, product, platform, api, containerd", [
    ("apple-silicon-m1pro-docker-version.txt", "Docker Desktop 4.39.0 (184744)", ARM64, "1.48", "1.7.25"),
    ("intel-docker-version.txt", "Docker Desktop 4.38.0 (181591)", AMD64, "1.47", "1.7.25"),
])
def test_version_text_gives_the_engine_platform_api_and_containerd(name, product, platform, api, containerd):
    server, said, engine_platform = server_from_version_text((DESKTOP / name).read_text())
    assert said == product and engine_platform == platform
    facts = engine.facts_from({"Architecture": platform.architecture}, server, "x")
    assert (facts.api_version, facts.containerd_version) == (api, containerd)


def desktop_handlers(name: str = "apple-silicon-binfmt-status.json") -> list[BinfmtHandler]:
    """The enabled handlers tonistiigi/binfmt listed in Docker Desktop's VM on Apple silicon (it lists the names
    of the enabled entries only, so interpreter and flags are not known). Its JSON may follow its own
    "installing: ..." lines, as posted."""
    text = (DESKTOP / name).read_text()
    status = json.loads(text[text.index("{"):])
    return [BinfmtHandler(name, True, "", "") for name in status["emulators"]]


def test_desktop_handler_names_map_to_architectures():
    by_name = {h.name: h.architecture for h in desktop_handlers()}
    assert by_name["rosetta"] == "amd64" and by_name["x86_64"] == "amd64"
    assert by_name["arm"] == "arm" and by_name["i386"] == "386" and by_name["riscv64"] == "riscv64"
    assert by_name["rosetta-wrapper"] is None  # not a handler of its own architecture


@pytest.mark.parametrize("platform, expected", [
    (AMD64, "rosetta"),  # Rosetta wins over the x86_64 QEMU handler beside it
    (ARMV7, "qemu"),  # Apple silicon has no 32-bit mode: arm/v7 always goes through QEMU
    (ARM64, "native"),
    (Platform.parse("linux/riscv64"), "qemu"),
])
def test_apple_silicon_emulator_per_platform(platform, expected):
    info = json_excerpt((DESKTOP / "apple-silicon-docker-info-json-excerpt.txt").read_text())
    engine_platform = engine.facts_from(info, {}, "x").platform
    assert emulation.emulator_for(platform, engine_platform, desktop_handlers()) == expected


def test_older_desktop_names_its_handlers_qemu_and_rosetta_still_wins():
    """An older Docker Desktop kept tonistiigi/binfmt's names (qemu-x86_64) beside its rosetta handler."""
    handlers = desktop_handlers("apple-silicon-binfmt-install-qemu-names.txt")
    assert {h.name: h.architecture for h in handlers}["qemu-x86_64"] == "amd64"
    assert [emulation.emulator_for(p, ARM64, handlers) for p in (AMD64, ARMV7, ARM64, Platform.parse("linux/386"))] \
        == ["rosetta", "qemu", "native", "qemu"]


@pytest.mark.parametrize("name, builder, driver, node, endpoint, buildkit, count", [
    # the docker driver: the engine's own BuildKit, what the kit builds with on Docker Desktop
    ("apple-silicon-buildx-inspect-default-0.11.txt", "default", "docker", "default", "default",
     "v0.11.6+616c3f613b54", 10),
    # a docker-container builder on the Desktop context (`docker buildx create`)
    ("apple-silicon-buildx-inspect-container-0.13.txt", "nginx-builder", "docker-container", "nginx-builder0",
     "desktop-linux", "v0.13.1", 11),
])
def test_apple_silicon_buildx_inspect_gives_driver_node_and_platforms(name, builder, driver, node, endpoint,
                                                                      buildkit, count):
    b = buildx.parse_inspect((DESKTOP / name).read_text())
    assert (b.name, b.driver) == (builder, driver)
    (only,) = b.nodes
    # buildx 0.13 and older label the version "Buildkit:", later ones "BuildKit version:"
    assert (only.name, only.endpoint, only.status, only.buildkit) == (node, endpoint, "running", buildkit)
    assert len(only.platforms) == count
    assert only.platforms[0] == ARM64  # the node's own platform first: hostinfo takes it as the native one
    assert {AMD64, ARMV7, Platform.parse("linux/amd64/v2")} <= set(b.platforms)


def test_desktop_docker_driver_may_list_amd64_last():
    """On this Mac the docker driver listed amd64 after arm/v6: order says nothing of speed, only the first
    entry (the engine's own) is native."""
    b = buildx.parse_inspect((DESKTOP / "apple-silicon-buildx-inspect-default-0.11.txt").read_text())
    assert [str(p) for p in b.platforms[-3:]] == ["linux/arm/v6", "linux/amd64", "linux/amd64/v2"]


def ls_platforms(text: str) -> dict[str, list[Platform]]:
    """Each builder node's platforms in `docker buildx ls` text (node rows are the indented ones)."""
    nodes = {}
    for line in text.splitlines()[1:]:
        if line.startswith(" ") and "linux/" in line:
            name = line.replace("\\_", " ").split()[0]
            listed = line[line.index("linux/"):]
            nodes[name] = [Platform.parse(p.strip()) for p in listed.split(",") if p.strip()]
    return nodes


@pytest.mark.parametrize("name, count", [("apple-silicon-buildx-ls-0.11.txt", 11),
                                         ("apple-silicon-buildx-ls-0.13.txt", 8)])
def test_apple_silicon_builder_lists_arm64_first_and_amd64(name, count):
    nodes = ls_platforms((DESKTOP / name).read_text())
    assert set(nodes) == {"default", "desktop-linux"}
    platforms = nodes["desktop-linux"]
    assert len(platforms) == count and platforms[0] == ARM64 and platforms[1] == AMD64
    assert Platform.parse("linux/amd64/v2") in platforms


def test_apple_silicon_builder_may_leave_out_arm_v7():
    """BuildKit v0.13.2 on Docker Desktop left arm/v7 out of its list (docker/for-mac#7293), though the VM had the
    arm handler: the builder's list is not the kit's test of what runs."""
    nodes = ls_platforms((DESKTOP / "apple-silicon-buildx-ls-0.13.txt").read_text())
    assert ARMV7 not in nodes["desktop-linux"]
    assert ARMV7 in ls_platforms((DESKTOP / "apple-silicon-buildx-ls-0.11.txt").read_text())["desktop-linux"]


def test_intel_builder_lists_amd64_first_and_emulated_arm():
    text = (DESKTOP / "intel-buildkit-platforms.txt").read_text()
    platforms = [Platform.parse(p.strip().rstrip(",")) for p in text.splitlines() if p.strip()]
    assert platforms[0] == AMD64 and len(platforms) == 12
    assert {ARM64, ARMV7} <= set(platforms)
    assert str(platforms[2]) == "linux/amd64/v3"
