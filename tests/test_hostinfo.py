"""The machine's id: made once per machine, kept in the lab folder it is given."""

from multiarch_kit.bench import hostinfo


def test_host_id_is_made_once_per_machine_and_kept(tmp_path, monkeypatch):
    monkeypatch.delenv(hostinfo.ENV_HOST_ID, raising=False)
    first = hostinfo.host_id(tmp_path)
    assert first == hostinfo.host_id(tmp_path) == (tmp_path / "host-id").read_text().strip()
    assert first != hostinfo.host_id(tmp_path / "another-machine")
