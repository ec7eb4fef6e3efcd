"""Two machines, one registry: the arm64 VM pushes to the lab registry by this machine's address
(``MULTIARCH_KIT_REGISTRY``, set by ``make test-arm64``), through QEMU's network, not a forwarded ``localhost``.
Every reference of the tier's tests names it: the VM's push (``test_vm``), the split build with arm64 from the VM
(``build --node``'s code) and the multi-node builder (``test_multinode``). Skipped outside that tier."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from multiarch_kit.lab import armvm

pytestmark = pytest.mark.skipif(os.environ.get("MULTIARCH_KIT_REHEARSAL") != "arm64",
                                reason="only inside make test-arm64, with the arm64 VM up")


def test_the_tier_names_the_registry_by_this_machines_address(lab_status):
    cfg = lab_status.config
    assert cfg.named, "make test-arm64 sets MULTIARCH_KIT_REGISTRY to this machine's address"
    assert not cfg.registry_host.startswith(("localhost:", "127.")) and not cfg.registry_host.startswith("10.0.2.")  # not QEMU's own alias for the host
    # The VM's engine was told to trust it (lab up did), and lists it as docker info reports it.
    assert lab_status.engine.is_arm64_vm and cfg.registry_host in lab_status.engine.insecure_registries
    told = subprocess.run(["ssh", armvm.CONTEXT, "cat", "/etc/docker/daemon.json"], capture_output=True, text=True,
                          check=True, timeout=60).stdout
    assert cfg.registry_host in json.loads(told)["insecure-registries"]
