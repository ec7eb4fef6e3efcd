"""The machine's id: made once per machine, kept in the lab folder it is given."""

from types import SimpleNamespace

from multiarch_kit.bench import hostinfo
from multiarch_kit.core.settings import Settings
from multiarch_kit.lab.config import LabConfig


def _lab(folder, **variables):
    return LabConfig.of(Settings.from_env({"MULTIARCH_KIT_LAB": str(folder), **variables}))


def test_host_id_is_made_once_per_machine_and_kept(tmp_path):
    here = SimpleNamespace(is_arm64_vm=False)
    first = hostinfo.host_id(_lab(tmp_path), here)
    assert first == hostinfo.host_id(_lab(tmp_path), here) == (tmp_path / "host-id").read_text().strip()
    assert first != hostinfo.host_id(_lab(tmp_path / "another-machine"), here)
    # the arm64 VM's rows are its own host's; the setting overrides both
    assert hostinfo.host_id(_lab(tmp_path), SimpleNamespace(is_arm64_vm=True)) == f"{first}-arm64-vm"
    assert hostinfo.host_id(_lab(tmp_path, MULTIARCH_KIT_HOST_ID="My M2!"), here) == "my-m2"
