"""The arm64 VM's own checks: an arm64 engine on this amd64 machine, reached and used the way a Mac's is.

Run by ``make test-arm64`` (``scripts/rehearse_arm64.py``) after ``lab up --arm64-vm``, with
``DOCKER_CONTEXT=multiarch-kit-arm64`` so the kit's every command goes to the VM; skipped anywhere else.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from multiarch_kit import engine
from multiarch_kit.core import commands
from multiarch_kit.engine import docker
from multiarch_kit.lab import armvm, doctor
from multiarch_kit.oci import manifests, registry
from multiarch_kit.oci.platforms import Platform
from multiarch_kit.oci.references import parse_reference
from multiarch_kit.scale import split

pytestmark = pytest.mark.skipif(os.environ.get("MULTIARCH_KIT_REHEARSAL") != "arm64",
                                reason="only inside make test-arm64, against the arm64 VM")

ARM64, AMD64, ARMV7 = Platform.parse("linux/arm64"), Platform.parse("linux/amd64"), Platform.parse("linux/arm/v7")
ARTICLE = Path(__file__).resolve().parents[2] / "notebooks" / "article"


def test_every_command_goes_to_the_vm():
    found = engine.facts()
    assert (found.context, found.kind, found.is_arm64_vm) == (armvm.CONTEXT, engine.Kind.ARM64_VM, True)
    assert found.endpoint.startswith(f"ssh://{armvm.CONTEXT}")


def test_the_engine_is_arm64():
    """The issue's first check, as typed: docker --context multiarch-kit-arm64 info --format ..."""
    out = commands.run(docker("info", "--format", "{{.Architecture}}", context=armvm.CONTEXT)).stdout.strip()
    assert out == "aarch64"
    facts = engine.facts()
    assert facts.platform == ARM64 and facts.containerd_store
    assert facts.server_version.startswith("26.1") and facts.containerd_version.startswith("1.7")


def test_a_native_container_prints_aarch64(lab_status):
    done = commands.run(docker("run", "--rm", "--platform", "linux/arm64", lab_status.base.pinned, "uname", "-m"))
    assert done.stdout.strip() == "aarch64"
    assert lab_status.emulator_for(ARM64) == "native"
    assert lab_status.emulator_for(AMD64) == "qemu" and lab_status.emulator_for(ARMV7) == "qemu"


def test_doctor_says_arm64_native_and_amd64_qemu(lab_config):
    rows = {r.check: r for r in doctor.run_checks(lab_config)}
    assert rows["engine"].detail.startswith("Debian GNU/Linux 13") and "linux/arm64" in rows["engine"].detail
    assert rows["run linux/arm64"].status == doctor.PASS
    assert rows["run linux/arm64"].detail == "native: uname -m = aarch64 (expected aarch64)"
    assert rows["run linux/amd64"].detail == "qemu: uname -m = x86_64 (expected x86_64)"
    assert rows["run linux/arm/v7"].detail == "qemu: uname -m = armv7l (expected armv7l)"
    assert rows["arm64 VM"].status == doctor.PASS


def test_one_reference_names_one_image_on_both_engines(lab_status):
    """The VM pushes to the lab registry's name (this machine's address in the tier), and this machine's registry
    holds that very manifest."""
    ref = parse_reference(f"{lab_status.config.registry_host}/multiarch-kit/arm64-vm-probe:pushed")
    commands.run(docker("tag", lab_status.base.pinned, ref.docker))
    pushed = commands.run(docker("push", ref.docker))
    digest = next(w for w in pushed.stdout.split() if w.startswith("sha256:"))
    # Read from the registry on this machine, not through the VM.
    assert registry.head_manifest(lab_status.config.registry_address, "multiarch-kit/arm64-vm-probe", "pushed").digest == digest


def test_nothing_of_the_vm_listens_beyond_loopback(lab_config):
    machine = armvm.vm(lab_config.lab_dir)
    out = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, check=True).stdout
    mine = [line.split()[3] for line in out.splitlines() if f"pid={machine.pid}," in line]
    state = json.loads(machine.state.read_text())
    assert mine == [f"127.0.0.1:{state['ssh_port']}"]
    assert oct(machine.key.stat().st_mode & 0o777) == "0o600"


def test_split_build_takes_arm64_from_the_vm(lab_status, tmp_path):
    """arm64 built natively on the VM, amd64 on this machine's engine, merged into one tag."""
    ref = parse_reference(f"{lab_status.config.registry_host}/multiarch-kit/arm64-vm-split:test")
    result = split.build(ARTICLE, ref, [AMD64, ARM64], {ARM64: armvm.CONTEXT, AMD64: "default"},
                         here=lab_status, base=lab_status.base)
    by_platform = {b.platform: b for b in result.builds}
    assert by_platform[ARM64].node == armvm.CONTEXT and by_platform[ARM64].engine_platform == ARM64
    assert by_platform[ARM64].emulator == "native"
    assert by_platform[AMD64].engine_platform == AMD64 and by_platform[AMD64].emulator == "native"
    index = manifests.inspect(ref)
    for p in (ARM64, AMD64):  # each node pushed its image with its attestation; the tag holds that very image
        pushed = manifests.inspect(ref.at(by_platform[p].digest))
        assert index.select(p).digest == pushed.select(p).digest


def test_bench_rows_say_they_come_from_the_emulated_vm(lab_status, lab_config, tmp_path):
    """A small bench with arm64 as the build platform: native arm64, amd64 emulated and cross-compiled *from*
    arm64 (the build base made for an arm64 build platform carries x86_64-linux-gnu-gcc); every row is the VM's."""
    from multiarch_kit import bench
    from multiarch_kit.bench import hostinfo, plans
    from multiarch_kit.lab import buildbase

    plan = plans.Plan.matrix(["c"], [AMD64], ARM64, sizes={"c": 1}, repeats=1, warmup=0,
                             host_id=hostinfo.host_id(lab_config, lab_status.engine))
    df = bench.run(plan, tmp_path, lab_status, progress=False)
    assert list(zip(df.strategy, df.platform)) == [
        ("native", "linux/arm64"), ("emulated", "linux/amd64"), ("cross", "linux/amd64")]
    assert list(df.emulator) == ["native", "qemu", "native"]  # cross: the compiler runs natively
    assert set(df.host_id) == {plan.host_id} and plan.host_id.endswith("-arm64-vm")
    assert all(hostinfo.SYSTEM_VM in h for h in df.host_os) and all(c.startswith("QEMU TCG") for c in df.cpu_model)
    assert set(df.engine_platform) == {"linux/arm64"}
    assert (tmp_path / f"{plan.host_id}.csv").exists()
    base = buildbase.standin(ARM64).current(lab_config, buildbase.recipe(ARM64, lab_config.platforms))
    assert base is not None and base.ref.endswith(":bookworm-build-arm64")
