"""The Docker Desktop rehearsal's own checks: the shape is what it claims, and the kit copes with it.

Run by ``make test-desktop`` (``scripts/rehearse_desktop.py``) as a non-root reader, in a network namespace
whose engine the reader did not start, with port 5000 held and Docker Hub's stand-in as the engine's mirror;
skipped anywhere else. They run before the notebooks: the first test brings the lab up the way a reader's
first command does.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import kit_cli

from multiarch_kit import engine, lab
from multiarch_kit.core import commands, settings
from multiarch_kit.engine import docker
from multiarch_kit.lab import extra_engines as engines
from multiarch_kit.lab import generation
from multiarch_kit.lab import local_registry as labregistry
from multiarch_kit.oci import registry
from multiarch_kit.oci.platforms import Platform

pytestmark = pytest.mark.skipif(os.environ.get("MULTIARCH_KIT_REHEARSAL") != "desktop",
                                reason="only inside make test-desktop's Docker Desktop rehearsal")

HIDDEN = ("dockerd", "containerd", "runc", "docker-registry", "skopeo", "mmdebstrap", "qemu-aarch64-static",
          "qemu-arm-static", "qemu-aarch64", "qemu-arm")
C = Path(__file__).resolve().parents[2] / "multiarch_kit" / "workloads" / "c"


@pytest.fixture(scope="module")
def first_up():
    """``multiarch-kit lab up``, the reader's first command, and what it printed."""
    proc = kit_cli("lab", "up", timeout=900)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout + proc.stderr


def test_the_reader_is_not_root_and_has_no_engine_tools():
    assert os.geteuid() != 0
    assert {t: shutil.which(t) for t in HIDDEN} == {t: None for t in HIDDEN}
    here = engine.locate(settings.read())  # DOCKER_HOST's engine, over TCP: not a socket the lab may provision
    assert not here.uses_default_socket and not lab.can_provision("Linux", os.geteuid() == 0, here)
    ok, why = engines.can_start()
    assert not ok and "root" in why


def test_the_engine_the_cli_and_buildx_are_docker_desktops_generation():
    """Debian's newest Docker, from a root filesystem of its own: engine and CLI 28.5+, buildx 0.29+, containerd
    2, and the engine reads its own /etc/os-release (sid's), not this machine's."""
    reported = json.loads(commands.run(docker("version", "--format", "{{json .}}"), echo=False).stdout)
    server = {c["Name"]: c["Version"] for c in reported["Server"]["Components"]}
    buildx = commands.run(docker("buildx", "version"), echo=False).stdout.split()[1]
    assert generation.number(server["Engine"]) >= (28, 5), server
    assert generation.number(reported["Client"]["Version"]) >= (28, 5), reported["Client"]
    assert generation.number(buildx) >= (0, 29) and generation.number(server["containerd"])[0] == 2
    assert shutil.which("docker") != "/usr/bin/docker"  # the root's CLI, not this machine's 26.1
    here = engine.facts()
    this_machine = dict(line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line)
    assert here.operating_system != this_machine["PRETTY_NAME"].strip('"') and "sid" in here.operating_system


def test_port_5000_is_held_by_a_program_that_is_not_a_registry():
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen("http://127.0.0.1:5000/v2/", timeout=5)
    assert refused.value.code == 403 and refused.value.headers["Server"].startswith("AirTunes/")
    assert not registry.ping("127.0.0.1:5000")


def test_lab_up_moves_to_5001_says_so_in_one_line_and_serves_the_registry_container(first_up):
    moved = [line for line in first_up.splitlines() if "port 5000 on 127.0.0.1 is taken" in line]
    assert len(moved) == 1 and "AirPlay" in moved[0] and "uses port 5001" in moved[0]
    assert "provisioning" not in first_up
    cfg = lab.LabConfig.from_env()
    assert cfg.registry_port == 5001 and cfg.registry_host == "localhost:5001"
    info = labregistry.registry_info(cfg)
    assert (info.kind, info.started_by_lab, info.answers) == (labregistry.CONTAINER, True, True)
    name = f"{labregistry.REGISTRY_CONTAINER}-5001"
    done = commands.run(docker("inspect", "--format", "{{.Config.Image}} {{json .HostConfig.PortBindings}}", name),
                        echo=False)
    image, ports = done.stdout.split(" ", 1)
    assert image == "registry:2" and '"HostIp":"127.0.0.1","HostPort":"5001"' in ports


def test_no_guard_and_no_engine_of_the_readers_own(first_up):
    mine = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if proc.stat().st_uid == os.geteuid():
                    mine.append((proc / "cmdline").read_bytes())
            except OSError:
                continue
    assert not [c for c in mine if b"multiarch_kit.oci.guard" in c or b"dockerd" in c.split(b"\0")[0]]
    assert engines.known(lab.LabConfig.from_env().lab_dir) == []


def test_the_engine_is_elsewhere_so_handlers_are_read_through_a_container(first_up):
    here = lab.read()
    assert here.engine.endpoint.startswith("tcp://") and not here.engine.shares_this_kernel
    assert here.engine.containerd_store and here.engine.kind is engine.Kind.REMOTE  # read once, as a Mac's is
    names = {h.name for h in here.handlers}
    assert {"qemu-aarch64", "qemu-arm"} <= names
    assert here.emulator_for(Platform.parse("linux/amd64")) == "native"
    assert here.emulator_for(Platform.parse("linux/arm64")) == "qemu"
    assert here.emulator_for(Platform.parse("linux/arm/v7")) == "qemu"


def test_docker_hub_images_are_like_docker_hubs(first_up):
    here = lab.read()
    assert here.base.source == "docker-hub" and here.base.build_contexts == {}
    assert here.build_base().build_contexts == {}
    gcc = commands.run(docker("run", "--rm", "debian:bookworm", "sh", "-c", "command -v gcc || echo none"), echo=False)
    assert gcc.stdout.strip() == "none"
    go = commands.run(docker("run", "--rm", "--platform", "linux/arm64", "golang:1.19-bookworm", "sh", "-c",
                             "command -v go; go version"), echo=False)
    assert go.stdout.split("\n")[0] == "/usr/local/go/bin/go" and "go1.19" in go.stdout and "linux/arm64" in go.stdout


@pytest.mark.parametrize(("target", "platform", "compiler"), [
    ("toolchain", "linux/arm64", "gcc"),  # apt-get install in the target platform's image, under QEMU
    ("cross-toolchain", "linux/arm/v7", "arm-linux-gnueabihf-gcc"),  # apt-get install of a cross compiler
])
def test_the_workloads_apt_steps_install_the_compilers(first_up, target, platform, compiler):
    tag = f"desktop-rehearsal/{target}:{Platform.parse(platform).tag_suffix}"
    commands.run(docker("buildx", "build", "--platform", platform, "--target", target, "--load", "-t", tag, C),
                 echo=False, timeout=1800)
    # The image is stored under the platform asked for, even the cross toolchain's, which holds amd64 files.
    found = commands.run(docker("run", "--rm", "--platform", platform, tag, "sh", "-c",
                                f"command -v {compiler}; uname -m"), echo=False, check=False)
    where, machine = found.stdout.split()
    assert where.endswith(f"/{compiler}"), found.stderr
    # The cross toolchain's stage runs on the build platform: its files are amd64 whatever the target, so the
    # container runs natively; the target's own toolchain runs under QEMU.
    assert machine == ("x86_64" if target == "cross-toolchain" else Platform.parse(platform).arch.uname)
    assert engine.facts().platform == Platform.parse("linux/amd64")
