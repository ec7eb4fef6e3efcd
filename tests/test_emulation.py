"""binfmt handlers and emulated containers."""

import dataclasses
import pytest
from conftest import DATA

from multiarch_kit.engine import emulation, images
from multiarch_kit.engine.emulation import BinfmtHandler
from multiarch_kit.oci.platforms import Platform

P = Platform.parse


def test_parse_recorded_handlers():
    handlers = {h.name: h for h in emulation.parse_handlers((DATA / "binfmt-debian12-amd64.txt").read_text())}
    arm64 = handlers["qemu-aarch64"]
    assert arm64.enabled and arm64.fix_binary and arm64.architecture == "arm64"
    assert arm64.interpreter == "/usr/libexec/qemu-binfmt/aarch64-binfmt-P"
    assert handlers["qemu-arm"].architecture == "arm"
    assert handlers["jar"].architecture is None and not handlers["jar"].fix_binary


@pytest.mark.parametrize(
    "platform, engine_arch, names, expected",
    [
        ("linux/amd64", "amd64", [], "native"),
        ("linux/arm64", "amd64", ["qemu-aarch64"], "qemu"),
        ("linux/arm/v7", "amd64", ["qemu-aarch64"], "none"),
        ("linux/amd64", "arm64", ["qemu-x86_64", "rosetta"], "rosetta"),  # Docker Desktop on Apple silicon
        ("linux/amd64", "arm64", ["qemu-x86_64"], "qemu"),
        ("linux/arm64", "arm64", ["qemu-aarch64"], "native"),
        ("linux/aarch64", "amd64", ["qemu-aarch64"], "qemu"),  # any spelling of the platform
        ("linux/arm", "amd64", ["qemu-arm"], "qemu"),
        ("linux/386", "amd64", [], "native"),  # what containerd runs natively needs no handler
        ("linux/arm/v7", "arm64", [], "native"),
        ("linux/arm/v7", "arm64", ["qemu-arm"], "qemu"),  # binfmt_misc is asked before the kernel's own loader
        ("linux/amd64", "arm64", [], "none"),
    ],
)
def test_emulator_for(platform, engine_arch, names, expected):
    handlers = [BinfmtHandler(n, True, "/x", "F") for n in names]
    assert emulation.emulator_for(P(platform), P(engine_arch), handlers) == expected


def test_disabled_handler_does_not_count():
    handlers = [BinfmtHandler("qemu-aarch64", False, "/x", "F")]
    assert emulation.emulator_for(P("linux/arm64"), P("amd64"), handlers) == "none"


def test_missing_emulator_error_names_handler_and_fix():
    err = emulation.missing_emulator_error(P("linux/arm64"))
    assert "qemu-aarch64" in err.message
    assert "update-binfmts --enable" in err.fix and "tonistiigi/binfmt --install arm64" in err.fix
    assert "\n" not in str(err)


def test_engine_kernel_has_fix_binary_handlers(lab_status):
    """Read by a privileged container (what Docker Desktop needs), and from /proc here: the two agree."""
    elsewhere = dataclasses.replace(lab_status.engine, kernel="not this machine's")  # as a remote engine is read
    assert not elsewhere.shares_this_kernel
    seen = emulation.read_handlers(elsewhere, lab_status.base.pinned)
    handlers = {h.name: h for h in seen}
    for name in ("qemu-aarch64", "qemu-arm"):
        if lab_status.engine.platform.architecture == "arm64" and name == "qemu-aarch64":
            continue
        assert handlers[name].enabled and handlers[name].fix_binary, handlers.get(name)
    if lab_status.engine.shares_this_kernel:
        local = emulation.read_handlers(lab_status.engine, lab_status.base.pinned)
        assert {(h.name, h.enabled, h.flags) for h in local} == {(h.name, h.enabled, h.flags) for h in seen}


@pytest.mark.parametrize("platform, machine", [("linux/amd64", "x86_64"), ("linux/arm64", "aarch64"),
                                               ("linux/arm/v7", "armv7l")])
def test_container_of_each_platform_reports_its_machine(lab_status, platform, machine):
    check = images.run_check(P(platform), lab_status.base.pinned, "?", echo=False)
    assert check.machine == machine == check.expected


def test_the_recorded_errors_each_name_their_reports():
    """Notebook 08's errors that need a Mac or a QEMU bug: recorded words, each with public reports to read."""
    reported = emulation.reported_errors()
    assert [r.name for r in reported] == ["QEMU crash", "Rosetta without a loader", "no AVX"]
    assert [r.words for r in reported] == ["qemu: uncaught target signal 11 (Segmentation fault) - core dumped",
                                           "rosetta error: failed to open elf at /lib64/ld-linux-x86-64.so.2",
                                           "Illegal instruction"]
    for r in reported:
        assert r.links and all(link.startswith("https://github.com/") for link in r.links)
        assert all(text for text in (r.where, r.cause, r.fix))
        assert str(r).startswith(f"{r.name} (recorded): {r.words}\n")
        assert max(map(len, str(r).splitlines())) <= 121  # wrapped between words, not cut
