"""The arm64 VM's pieces that need no VM: its QEMU command line, its SSH settings, the files it is made with.

The VM itself (boot, engine, registry, doctor, notebooks, split build) is tested by ``make test-arm64``
(``tests/arm64/``), against the running VM.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from multiarch_kit.lab import armvm, armvm_guest


def test_qemu_forwards_only_ssh_and_only_on_loopback(tmp_path):
    machine = armvm.vm(tmp_path)
    argv = armvm.qemu_argv(machine, armvm.Levers(cpu="cortex-a72", smp=2, threads="multi"), 40022, 5001)
    netdev = argv[argv.index("-netdev") + 1]
    assert netdev == "user,id=net0,hostfwd=tcp:127.0.0.1:40022-:22"
    assert argv.count("-netdev") == 1 and "hostfwd" not in " ".join(a for a in argv if a != netdev)
    assert argv[argv.index("-monitor") + 1] == "none"  # no QEMU monitor anyone could reach
    assert argv[argv.index("-cpu") + 1] == "cortex-a72"
    assert argv[argv.index("-accel") + 1] == "tcg,thread=multi"
    assert argv[argv.index("-smp") + 1] == "2"
    append = argv[argv.index("-append") + 1].split()
    assert f"{armvm.REGISTRY_ARG}=5001" in append and "root=/dev/vda" in append


def test_default_levers_avoid_the_slow_pointer_authentication():
    levers = armvm.Levers()
    assert levers.cpu == "max,pauth-impdef=on"
    assert levers.smp == (os.cpu_count() or 1)
    assert levers.describe() == f"-cpu max,pauth-impdef=on -smp {levers.smp} -accel tcg,thread=multi"


def test_ssh_config_is_included_once_at_the_top(tmp_path):
    machine = armvm.vm(tmp_path / "lab")
    machine.folder.mkdir(parents=True)
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "config").write_text("Host build\n  HostName 192.0.2.7\n")
    assert armvm.write_ssh_config(machine, 40022, home=home) == [
        f"added 'Include {machine.ssh_config}' to {home / '.ssh' / 'config'}"]
    assert armvm.write_ssh_config(machine, 40023, home=home) == []  # a new port changes the lab's file only
    lines = (home / ".ssh" / "config").read_text().splitlines()
    assert lines[1] == f"Include {machine.ssh_config}" and lines[2] == "Host build"  # before any Host block
    assert lines.count(f"Include {machine.ssh_config}") == 1
    ours = machine.ssh_config.read_text()
    assert "Port 40023" in ours and f"IdentityFile {machine.key}" in ours and "StrictHostKeyChecking yes" in ours
    assert oct(machine.ssh_config.stat().st_mode & 0o777) == "0o600"
    assert oct((home / ".ssh" / "config").stat().st_mode & 0o777) == "0o600"


def test_ssh_reads_the_kits_settings(tmp_path):
    """``ssh -G`` (how ssh resolves a host) gives the VM's port, key and known hosts through the Include."""
    if not shutil.which("ssh"):
        pytest.skip("no ssh client here")
    machine = armvm.vm(tmp_path / "lab")
    machine.folder.mkdir(parents=True)
    armvm.write_ssh_config(machine, 40022, home=tmp_path)
    out = subprocess.run(["ssh", "-F", str(tmp_path / ".ssh" / "config"), "-G", armvm.CONTEXT],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert "hostname 127.0.0.1" in out and "port 40022" in out and "user root" in out
    assert f"identityfile {machine.key}" in out and "hostkeyalias multiarch-kit-arm64" in out


def test_registry_forwarder_reads_the_port_from_the_kernel_command_line(tmp_path):
    """The script the VM runs at boot, run here with a fake /proc/cmdline and socat replaced by echo."""
    script = armvm_guest.guest_files(armvm.CONTEXT)["usr/local/sbin/multiarch-kit-registry-forward"]
    cmdline = tmp_path / "cmdline"
    cmdline.write_text(f"root=/dev/vda rw quiet {armvm.REGISTRY_ARG}=5001\n")
    runnable = script.replace("/proc/cmdline", str(cmdline)).replace("exec socat", "exec echo socat")
    out = subprocess.run(["sh", "-c", runnable], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["socat", "TCP-LISTEN:5001,bind=127.0.0.1,fork,reuseaddr", "TCP:10.0.2.2:5001"]


def test_engine_uses_the_containerd_store_and_the_recipe_names_it():
    guest = armvm_guest.guest_files(armvm.CONTEXT)
    assert guest["etc/docker/daemon.json"] == '{"features": {"containerd-snapshotter": true}}\n'
    assert "PasswordAuthentication no" in guest["etc/ssh/sshd_config.d/multiarch-kit.conf"]
    assert armvm.recipe() == armvm.recipe() and len(armvm.recipe()) == 64


def test_current_wants_every_file_and_the_same_recipe(tmp_path):
    machine = armvm.vm(tmp_path)
    machine.folder.mkdir()
    for p in (machine.disk, machine.kernel, machine.initrd, machine.key):
        p.write_text("x")
    assert not armvm.current(machine)  # no record yet
    machine.record.write_text(json.dumps({"recipe": armvm.recipe()}))
    assert armvm.current(machine)
    machine.record.write_text('{"recipe": "older"}')
    assert not armvm.current(machine)
    machine.record.write_text(json.dumps({"recipe": armvm.recipe()}))
    machine.initrd.unlink()
    assert not armvm.current(machine)


def test_the_root_filesystem_is_trixie_arm64_with_the_lab_engines_packages(tmp_path):
    argv = armvm.mmdebstrap_argv(tmp_path / "root", tmp_path / "setup", "http://mirror.invalid/debian")
    assert argv[:3] == ["mmdebstrap", "--variant=apt", "--architectures=arm64"]
    assert argv[-3:] == ["trixie", str(tmp_path / "root"), "http://mirror.invalid/debian"]
    included = next(a for a in argv if a.startswith("--include=")).removeprefix("--include=").split(",")
    assert {"linux-image-arm64", "docker.io", "docker-cli", "containerd", "docker-buildx", "qemu-user-static",
            "openssh-server"} <= set(included)
    assert f"--setup-hook=sync-in {tmp_path / 'setup'} /" in argv  # the initramfs settings, before the kernel


def test_the_setup_files_keep_the_initramfs_small(tmp_path):
    armvm._write_tree(tmp_path, armvm_guest.setup_files())
    assert (tmp_path / "etc/initramfs-tools/conf.d/multiarch-kit").read_text() == "MODULES=list\n"
    hook = tmp_path / "etc/initramfs-tools/hooks/multiarch-kit"
    assert "manual_add_modules virtio_pci virtio_blk ext4 virtio_net" in hook.read_text()
    assert hook.stat().st_mode & 0o777 == 0o755
    assert subprocess.run(["sh", str(hook), "prereqs"], capture_output=True, text=True, check=True).stdout == ""


def test_a_recorded_pid_of_another_program_is_not_the_vm(tmp_path):
    machine = armvm.vm(tmp_path)
    machine.folder.mkdir()
    machine.pid_file.write_text(f"{os.getpid()}\n")  # alive, but python, not qemu-system-aarch64
    assert not machine.running
    assert armvm.stop(machine) is False  # nothing of ours to stop, and this process is left alone
