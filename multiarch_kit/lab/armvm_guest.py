"""The files the lab's arm64 VM is made with: the initramfs's few modules, and what the kit adds to the root
filesystem (its network, its registry forwarder, the containerd image store, a qemu-arm handler, sshd's settings).

Kept apart from :mod:`multiarch_kit.lab.armvm`, which makes, boots and reaches the VM: these are its recipe's text,
and a change to any of them makes the disk image again.
"""

from __future__ import annotations

import json

REGISTRY_ARG = "multiarch_kit.registry"  # the lab registry's port, handed to the VM on its kernel command line
NET = ("10.0.2.15/24", "10.0.2.2")  # QEMU user networking's fixed guest address and host gateway


def setup_files() -> dict[str, str]:
    """Files in place before the packages are installed: the initramfs gets only the modules that mount the root
    disk, and the network card's, so that eth0 is there when the root filesystem's services start. Its default
    (most modules) takes minutes more to make under QEMU, twice, for a VM that needs four."""
    return {
        "etc/initramfs-tools/conf.d/multiarch-kit": "MODULES=list\n",
        "etc/initramfs-tools/hooks/multiarch-kit": (
            "#!/bin/sh\n# multiarch-kit's arm64 VM: the modules its initramfs needs to mount the root disk.\n"
            "case \"$1\" in prereqs) exit 0;; esac\n. /usr/share/initramfs-tools/hook-functions\n"
            "manual_add_modules virtio_pci virtio_blk ext4 virtio_net\n"),
    }


def guest_files(hostname: str) -> dict[str, str]:
    """The files the kit adds to the root filesystem, besides the SSH key. None holds the registry's port: the
    forwarder reads it from the kernel command line at each boot, so the image suits any lab port."""
    return {
        "etc/hostname": f"{hostname}\n",
        "etc/hosts": f"127.0.0.1\tlocalhost\n127.0.1.1\t{hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n",
        "etc/fstab": "/dev/vda\t/\text4\tdefaults\t0\t1\n",
        "etc/resolv.conf": "nameserver 10.0.2.3\n",
        "etc/docker/daemon.json": json.dumps({"features": {"containerd-snapshotter": True}}) + "\n",
        # Debian registers no qemu-arm handler on arm64, expecting the CPU to run 32-bit Arm code itself. Apple's
        # M1 and M2 cannot, so Docker Desktop runs linux/arm/v7 under QEMU: the VM does the same. Magic and mask
        # are QEMU's own (scripts/qemu-binfmt-conf.sh), the interpreter Debian's wrapper for it.
        "etc/binfmt.d/qemu-arm.conf": (
            ":qemu-arm:M::\\x7f\\x45\\x4c\\x46\\x01\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00"
            "\\x02\\x00\\x28\\x00:\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\x00\\xff\\xff\\xff\\xff\\xff\\xff\\xff"
            "\\xff\\xfe\\xff\\xff\\xff:/usr/libexec/qemu-binfmt/arm-binfmt-P:OPF\n"),
        "etc/ssh/sshd_config.d/multiarch-kit.conf": "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
                                                    "UseDNS no\n",
        # QEMU's user network: a fixed address, no DHCP client to install or wait for.
        "etc/systemd/system/multiarch-kit-net.service": (
            "[Unit]\nDescription=multiarch-kit: the address on QEMU's user network\nBefore=network.target\n"
            "Wants=network.target\nBindsTo=sys-subsystem-net-devices-eth0.device\n"
            "After=sys-subsystem-net-devices-eth0.device\n\n[Service]\nType=oneshot\nRemainAfterExit=yes\n"
            "ExecStart=/usr/sbin/ip link set lo up\nExecStart=/usr/sbin/ip link set eth0 up\n"
            f"ExecStart=/usr/sbin/ip address add {NET[0]} dev eth0\n"
            f"ExecStart=/usr/sbin/ip route add default via {NET[1]}\n\n[Install]\nWantedBy=multi-user.target\n"),
        # localhost:<port> in the VM is the lab registry on the host, as on Docker Desktop.
        "usr/local/sbin/multiarch-kit-registry-forward": (
            "#!/bin/sh\n# Forward localhost:<lab port> to the lab registry on the host (QEMU's 10.0.2.2).\n"
            f"port=$(tr ' ' '\\n' < /proc/cmdline | sed -n 's/^{REGISTRY_ARG}=//p')\n"
            "[ -n \"$port\" ] || exit 0\n"
            f"exec socat TCP-LISTEN:\"$port\",bind=127.0.0.1,fork,reuseaddr TCP:{NET[1]}:\"$port\"\n"),
        "etc/systemd/system/multiarch-kit-registry.service": (
            "[Unit]\nDescription=multiarch-kit: localhost:<lab port> reaches the lab registry\n"
            "After=multiarch-kit-net.service\n\n[Service]\nExecStart=/usr/local/sbin/multiarch-kit-registry-forward\n"
            "Restart=on-failure\n\n[Install]\nWantedBy=multi-user.target\n"),
    }
