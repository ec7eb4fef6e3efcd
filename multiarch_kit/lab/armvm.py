"""An arm64 Docker engine on an amd64 machine: a Debian arm64 system VM under ``qemu-system-aarch64``.

An M2's Docker Desktop is a Linux arm64 VM running dockerd, reached through a socket. To run the kit's arm64-native
paths on an amd64 Linux box, ``lab up --arm64-vm`` builds and boots the same shape from Debian packages alone:

- **Made once, kept.** ``mmdebstrap`` makes a Debian 13 (trixie) arm64 root filesystem from this machine's own
  mirror (its apt sources), running the package scripts through the lab's QEMU user emulation; it holds the kernel
  and initrd of ``linux-image-arm64``, the lab engine's versions (docker.io 26.1, containerd 1.7, buildx, the
  containerd image store turned on) and ``qemu-user-static`` for amd64 and arm/v7. ``mkfs.ext4 -d`` turns it into
  a disk image in the lab folder; a warm ``lab up --arm64-vm`` only boots it.
- **A system VM, emulated.** The whole arm64 machine is emulated by QEMU's TCG (this machine has no hardware
  virtualisation), so its numbers are a full-system-emulated VM's and never an arm64 machine's.
- **Reached like any remote engine.** An SSH Docker context, :data:`CONTEXT`, with a key kept in the lab folder; the
  VM's SSH is forwarded to this machine's loopback only, and nothing else of the VM is reachable from outside it.
  The kit's ``ssh_config`` (host alias, key, known host, a shared connection) is included from ``~/.ssh/config``,
  the one place both the docker CLI and docker-py read SSH settings from.
- **One registry name on both engines.** Inside the VM a forwarder listens on ``localhost:<lab port>`` and
  connects to the lab registry on the host (QEMU's user network reaches the host's loopback as 10.0.2.2), so
  ``localhost:5000/...`` names the same image on both engines, as on Docker Desktop.

Everything here needs root (mmdebstrap's root mode, the ext4 image) and Debian: the same machine the lab provisions.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from .. import engine
from ..core import commands, files
from ..core.errors import CommandError, KitError
from ..engine import contexts
from . import armvm_guest, buildbase, standins
from .armvm_guest import REGISTRY_ARG
from .config import LabPaths

CONTEXT = "multiarch-kit-arm64"
DESCRIPTION = contexts.ARM64_VM  # its context says what it is: the engine read through it is of that kind
SUITE = "trixie"  # Debian 13: docker.io 26.1 and containerd 1.7, the lab engine's versions
PACKAGES = ("systemd-sysv", "udev", "linux-image-arm64", "openssh-server", "docker.io", "docker-cli", "containerd", "docker-buildx",
            "qemu-user-static", "socat", "iproute2", "iptables", "ca-certificates")
DISK_SIZE = "24G"  # sparse: what the engine's images and build cache use, not the whole size
MEMORY_MB = 6144
# The default CPU model: "max" with the cheap implementation-defined pointer-authentication algorithm instead of
# QARMA5, which TCG spends much of its time on (QEMU's docs on its Arm CPU models).
DEFAULT_CPU = "max,pauth-impdef=on"



@dataclass(frozen=True)
class Levers:
    """How QEMU runs the VM: the speed levers ``make bench`` compares."""

    cpu: str = DEFAULT_CPU
    smp: int = os.cpu_count() or 1
    threads: str = "multi"  # TCG: one host thread per virtual CPU ("multi") or one for all ("single")

    def describe(self) -> str:
        return f"-cpu {self.cpu} -smp {self.smp} -accel tcg,thread={self.threads}"


@dataclass(frozen=True)
class ArmVm:
    """The VM's files in the lab folder."""

    folder: Path

    disk = property(lambda self: self.folder / "disk.raw")
    kernel = property(lambda self: self.folder / "vmlinuz")
    initrd = property(lambda self: self.folder / "initrd.img")
    key = property(lambda self: self.folder / "id_ed25519")
    ssh_config = property(lambda self: self.folder / "ssh_config")
    known_hosts = property(lambda self: self.folder / "known_hosts")
    pid_file = property(lambda self: self.folder / "qemu.pid")
    console = property(lambda self: self.folder / "console.log")
    making_log = property(lambda self: self.folder / "make-image.log")  # mmdebstrap's full output, and its command
    record = property(lambda self: self.folder / "image.json")  # what the disk image was made from
    state = property(lambda self: self.folder / "running.json")  # the running VM: port, levers, boot time

    @property
    def pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    @property
    def running(self) -> bool:
        """Whether the recorded QEMU runs (after a reboot its pid may be another program's: checked by name)."""
        return commands.runs(self.pid, "qemu-system-aarch64")


def vm(lab_dir: Path) -> ArmVm:
    return ArmVm(LabPaths(lab_dir).arm64_vm)


def recipe() -> str:
    """A digest of what the disk image is made of; a different one makes it again."""
    files_ = {**armvm_guest.setup_files(), **armvm_guest.guest_files(CONTEXT)}
    return standins.recipe_digest([SUITE, *PACKAGES, *buildbase.DPKG_OPTIONS, DISK_SIZE,
                                   *(f"{k}={v}" for k, v in sorted(files_.items()))])


# --- the disk image, made once -------------------------------------------------------------------------


def current(machine: ArmVm) -> bool:
    """Whether the disk image, kernel and initrd are there and made from this recipe."""
    made = files.read_json(machine.record)
    return (isinstance(made, dict) and made.get("recipe") == recipe()
            and all(p.exists() for p in (machine.disk, machine.kernel, machine.initrd, machine.key)))


def make_image(machine: ArmVm, *, echo: bool = True) -> float:
    """Make the disk image, kernel and initrd (minutes: the arm64 package scripts run under QEMU); returns seconds.

    The root filesystem is made in a folder, given the kit's files and the SSH key, and written into an ext4 image
    by ``mkfs.ext4 -d``; the folder is removed afterwards. An interrupted run leaves no image behind.
    """
    if os.geteuid() != 0 or not shutil.which("mmdebstrap"):
        raise KitError("the arm64 VM is made with mmdebstrap in root mode, as root on Debian",
                       "run 'sudo multiarch-kit lab up --arm64-vm' on a Debian machine the lab provisioned")
    started = time.monotonic()
    machine.folder.mkdir(parents=True, exist_ok=True)
    root, part = machine.folder / "root", machine.folder / "disk.raw.part"
    shutil.rmtree(root, ignore_errors=True)
    for old in (machine.disk, machine.record, part):
        old.unlink(missing_ok=True)
    mirror, setup = buildbase.apt_mirror(), machine.folder / "setup"
    argv = mmdebstrap_argv(root, setup, mirror)
    # The command names the machine's own mirror: it goes to the log with every line mmdebstrap prints, and the
    # reader sees one line per stage with the time so far.
    print(f"Making the arm64 VM's disk image (once per machine, several minutes): Debian {SUITE} arm64 with "
          f"mmdebstrap; full log in {machine.making_log}", flush=True)
    _ensure_key(machine, echo=echo)
    shutil.rmtree(setup, ignore_errors=True)
    _write_tree(setup, armvm_guest.setup_files())
    try:
        with open(machine.making_log, "w") as written:
            written.write(f"$ {commands.shell_line(argv)}\n")

            def progress(line: str) -> None:
                written.write(line + "\n")
                if line.startswith(("I: ", "E: ")):
                    print(f"  [{time.monotonic() - started:5.0f} s] {line}", flush=True)

            commands.run(argv, echo=False, timeout=3600, on_line=progress)
        _customise(root, machine)
        for name, target in (("vmlinuz", machine.kernel), ("initrd.img", machine.initrd)):
            found = sorted((root / "boot").glob(f"{name}-*"))
            if not found:
                raise KitError(f"the arm64 root filesystem has no /boot/{name}-*", "run 'lab up --arm64-vm' again")
            shutil.copyfile(found[-1], target)
        host_key = (root / "etc" / "ssh" / "ssh_host_ed25519_key.pub").read_text().split()
        files.write_atomically(machine.known_hosts, f"{CONTEXT} {host_key[0]} {host_key[1]}\n".encode())
        commands.run(commands.Command("mkfs.ext4", "-q", "-F", "-L", "arm64-root").flag("-d", root)
                     .add(part, DISK_SIZE), echo=echo, timeout=1800)
        part.rename(machine.disk)
    except CommandError as exc:
        raise KitError(f"making the arm64 VM failed: {exc.message}",
                       f"read {machine.making_log}; check the mirror and the free disk space, then run "
                       "'lab up --arm64-vm' again") from None
    finally:
        part.unlink(missing_ok=True)
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(setup, ignore_errors=True)
    seconds = time.monotonic() - started
    files.write_json(machine.record, {"recipe": recipe(), "suite": SUITE, "packages": list(PACKAGES),
                                      "mirror": mirror, "made": time.strftime("%Y-%m-%dT%H:%M:%S"),
                                      "seconds": round(seconds, 1)})
    return seconds


def mmdebstrap_argv(root: Path, setup: Path, mirror: str) -> commands.Command:
    """The ``mmdebstrap`` line that makes the VM's root filesystem in ``root``; ``setup`` holds the files that
    must be there before the packages (:func:`_setup_files`)."""
    return (commands.Command("mmdebstrap", "--variant=apt", "--architectures=arm64")
            .option("--include", ",".join(PACKAGES))
            .option("--setup-hook", f"sync-in {setup} /")
            .option("--dpkgopt", list(buildbase.DPKG_OPTIONS))
            .option("--aptopt", 'Acquire::Retries "3"')
            .add(SUITE, root, mirror))


def _ensure_key(machine: ArmVm, *, echo: bool) -> None:
    if not machine.key.exists():
        commands.run(commands.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", CONTEXT)
                     .flag("-f", machine.key), echo=echo)


def _write_tree(root: Path, tree: dict[str, str]) -> None:
    """Write ``tree`` (path under ``root``: text) into ``root``; scripts (a ``#!`` line) are made executable."""
    for name, text in tree.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)  # /etc/resolv.conf may be a link into the build machine's
        path.write_text(text)
        path.chmod(0o755 if text.startswith("#!") else 0o644)


def _customise(root: Path, machine: ArmVm) -> None:
    """Add the kit's files, turn on its two services and authorise the lab's key for root."""
    _write_tree(root, armvm_guest.guest_files(CONTEXT))
    wants = root / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    for unit in ("multiarch-kit-net.service", "multiarch-kit-registry.service"):
        (wants / unit).unlink(missing_ok=True)
        (wants / unit).symlink_to(f"/etc/systemd/system/{unit}")
    ssh_dir = root / "root" / ".ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    (ssh_dir / "authorized_keys").write_text(machine.key.with_suffix(".pub").read_text())
    (ssh_dir / "authorized_keys").chmod(0o600)


# --- booting, reaching, stopping -----------------------------------------------------------------------


def qemu_argv(machine: ArmVm, levers: Levers, ssh_port: int, registry_port: int) -> commands.Command:
    """The ``qemu-system-aarch64`` command line that boots the VM."""
    append = f"root=/dev/vda rw console=ttyAMA0 net.ifnames=0 quiet {REGISTRY_ARG}={registry_port}"
    return (commands.Command("qemu-system-aarch64", "-machine", "virt")
            .flag("-accel", f"tcg,thread={levers.threads}").flag("-cpu", levers.cpu).flag("-smp", levers.smp)
            .flag("-m", MEMORY_MB).flag("-kernel", machine.kernel).flag("-initrd", machine.initrd)
            .flag("-append", append)
            .flag("-drive", f"file={machine.disk},format=raw,if=virtio")
            # Only the VM's SSH, and only on this machine's loopback.
            .flag("-netdev", f"user,id=net0,hostfwd=tcp:127.0.0.1:{ssh_port}-:22")
            .flag("-device", "virtio-net-pci,netdev=net0").flag("-device", "virtio-rng-pci")
            .flag("-display", "none").flag("-monitor", "none").flag("-serial", f"file:{machine.console}")
            .flag("-pidfile", machine.pid_file))


def _ssh_port(machine: ArmVm) -> int:
    """The loopback port for the VM's SSH: the one used before when it is free (the context keeps it), else any."""
    before = (files.read_json(machine.folder / "ssh-port.json") or {}).get("port")
    for port in ([before] if isinstance(before, int) else []) + [0]:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            port = s.getsockname()[1]
        files.write_json(machine.folder / "ssh-port.json", {"port": port})
        return port
    raise AssertionError("binding port 0 cannot fail")  # pragma: no cover


def _control_path(machine: ArmVm) -> Path:
    """Where the shared connection's socket goes: the lab folder, unless that path is too long for a socket."""
    path = machine.folder / "cm-%C"  # %C: a 40-character hash of host, port and user
    return path if len(str(path)) + 38 <= 100 else Path.home() / ".ssh" / "multiarch-kit-%C"


def write_ssh_config(machine: ArmVm, ssh_port: int, home: Path | None = None) -> list[str]:
    """The VM's SSH settings in the lab folder, included from ``~/.ssh/config``; returns what changed there."""
    files.write_atomically(machine.ssh_config, "\n".join([
        f"# Written by multiarch-kit (lab up --arm64-vm): the arm64 VM's SSH, forwarded to loopback port {ssh_port}.",
        f"Host {CONTEXT}", "  HostName 127.0.0.1", f"  Port {ssh_port}", "  User root",
        f"  IdentityFile {machine.key}", "  IdentitiesOnly yes",
        f"  UserKnownHostsFile {machine.known_hosts}", f"  HostKeyAlias {CONTEXT}", "  StrictHostKeyChecking yes",
        "  ConnectTimeout 20", "  ServerAliveInterval 15",
        # One SSH connection shared by every docker command: each one then costs about 1 s instead of 4 under TCG.
        "  ControlMaster auto", f"  ControlPath {_control_path(machine)}", "  ControlPersist 600", ""]).encode())
    machine.ssh_config.chmod(0o600)
    user_config = (home or Path.home()) / ".ssh" / "config"
    include = f"Include {machine.ssh_config}"
    try:
        text = user_config.read_text()
    except FileNotFoundError:
        text = ""
    if include in text.splitlines():
        return []
    user_config.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # At the top: an Include after a Host line would apply to that host only.
    files.write_atomically(user_config, f"# multiarch-kit's arm64 VM (lab up --arm64-vm)\n{include}\n{text}".encode())
    user_config.chmod(0o600)
    return [f"added '{include}' to {user_config}"]


def ensure_context(ssh_port: int) -> bool:
    """The SSH Docker context :data:`CONTEXT`, pointing at ``ssh_port``; returns whether it was made or changed.

    The port is in the context's host as well as in ``ssh_config``: docker-py passes ``-p`` (22 when the host
    names none) to ssh, and a port on the command line wins over the config's.
    """
    return contexts.ensure(CONTEXT, f"ssh://{CONTEXT}:{ssh_port}", DESCRIPTION)


def boot(machine: ArmVm, registry_port: int, levers: Levers = Levers(), *, echo: bool = True,
         timeout: float = 900) -> float:
    """Boot the VM and wait until its engine answers through the context; returns the seconds that took."""
    if not shutil.which("qemu-system-aarch64"):
        raise KitError("qemu-system-aarch64 is not installed", "run 'multiarch-kit lab up --arm64-vm' as root on "
                       "Debian (it installs qemu-system-arm), or apt-get install qemu-system-arm")
    started = time.monotonic()
    ssh_port = _ssh_port(machine)
    for change in write_ssh_config(machine, ssh_port):
        print(change, flush=True)
    machine.pid_file.unlink(missing_ok=True)
    machine.console.unlink(missing_ok=True)
    commands.start(qemu_argv(machine, levers, ssh_port, registry_port), log=machine.folder / "qemu.log", echo=echo)
    ensure_context(ssh_port)
    deadline = started + timeout
    while not engine.answers(CONTEXT):
        if time.monotonic() > deadline or (machine.pid_file.exists() and not machine.running):
            raise KitError(f"the arm64 VM's engine did not answer within {time.monotonic() - started:.0f} s",
                           f"see {machine.console} and {machine.folder / 'qemu.log'}, then 'lab down' and retry")
        time.sleep(3)
    seconds = time.monotonic() - started
    files.write_json(machine.state, {"ssh_port": ssh_port, "registry_port": registry_port,
                                     "cpu": levers.cpu, "smp": levers.smp, "threads": levers.threads,
                                     "booted": time.strftime("%Y-%m-%dT%H:%M:%S"), "boot_seconds": round(seconds, 1)})
    return seconds


def stop(machine: ArmVm, *, echo: bool = True) -> bool:
    """Shut the VM down cleanly (its engine's data is on the disk image), else stop QEMU; returns if it ran."""
    pid = machine.pid
    if pid is None or not machine.running:
        return False
    commands.run(commands.Command("ssh", CONTEXT, "systemctl", "poweroff"), echo=echo, check=False, timeout=60)
    commands.run(commands.Command("ssh", "-O", "exit", CONTEXT), echo=False, check=False, timeout=30)
    deadline = time.monotonic() + 120
    while commands.alive(pid) and time.monotonic() < deadline:
        time.sleep(1)
    commands.stop(pid, what="qemu-system-aarch64", echo=echo)
    machine.state.unlink(missing_ok=True)
    return True


# --- the lab's entry ------------------------------------------------------------------------------------


@dataclass
class Started:
    """What ``up`` did: seconds spent making the image (0 when it was kept) and booting (0 when already up)."""

    made_seconds: float
    boot_seconds: float
    levers: Levers


def up(lab_dir: Path, registry_port: int, levers: Levers = Levers(), *, echo: bool = True) -> Started:
    """Make the VM's image if needed, boot it if it is not running, and make its Docker context."""
    machine = vm(lab_dir)
    _ensure_qemu(echo=echo)
    if not current(machine) and machine.running:
        stop(machine, echo=echo)  # a VM of an older recipe: its disk is about to be replaced
    made = 0.0 if current(machine) else make_image(machine, echo=echo)
    if made:  # the cold start: the first boot's time goes into the image's record, for make bench
        started = Started(made, boot(machine, registry_port, levers, echo=echo), levers)
        files.write_json(machine.record, {**(files.read_json(machine.record) or {}),
                                          "first_boot_seconds": round(started.boot_seconds, 1)})
        return started
    if machine.running:
        running = files.read_json(machine.state) or {}
        if running.get("registry_port") == registry_port:
            ensure_context(running["ssh_port"])
            return Started(made, 0.0, levers)
        stop(machine, echo=echo)  # the lab registry moved: the forwarder reads its port at boot
    return Started(made, boot(machine, registry_port, levers, echo=echo), levers)


def _ensure_qemu(*, echo: bool) -> None:
    if shutil.which("qemu-system-aarch64"):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise KitError("qemu-system-aarch64 is not installed", "apt-get install qemu-system-arm (as root), then retry")
    commands.run(commands.Command("apt-get", "install", "-y", "-q", "-o", 'Acquire::Retries=3', "qemu-system-arm"),
                 echo=echo, timeout=1800, env={"DEBIAN_FRONTEND": "noninteractive"})
