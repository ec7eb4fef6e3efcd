"""The Docker Desktop rehearsal's parts (scripts/rehearsal/), each on its own: what it makes, and that what it made
on the machine is taken away again. The whole rehearsal runs in `make test-desktop`."""

import shutil
import sys
import threading
import urllib.error
import urllib.request
from http.server import ThreadingHTTPServer

import pytest
from conftest import ROOT, free_port, require

sys.path.insert(0, str(ROOT / "scripts"))
from rehearsal import engine, hub, network, reader


def test_the_golang_standin_is_docker_hubs_shape_written_as_a_dockerfile():
    golang = next(s for s, _, name in hub.hub_images() if name == "library/golang:1.19-bookworm")
    lines = golang.dockerfile.splitlines()
    assert "ENV GOPATH=/go" in lines and "ENV PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:" \
        "/usr/sbin:/usr/bin:/sbin:/bin" in lines
    assert lines[-2:] == ["RUN ln -s /usr/lib/go-1.19 /usr/local/go && mkdir -p /go/src /go/bin", "WORKDIR /go"]
    assert lines.index("ENV GOPATH=/go") < lines.index('CMD ["bash"]') < lines.index("WORKDIR /go")


def test_port_5000_answers_as_the_airplay_receiver_does():
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), engine._AirPlay)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/v2/", timeout=5)
        assert refused.value.code == 403 and refused.value.headers["Server"].startswith("AirTunes/")
    finally:
        server.shutdown()


def test_the_readers_path_has_no_engine_tools_and_its_docker_is_the_newest_roots(tmp_path):
    newest_cli = tmp_path / "cli" / "docker"
    path = reader.path_without_engine_tools(tmp_path / "path", newest_cli)
    names = {p.name for p in (tmp_path / "path").iterdir()}
    assert path == str(tmp_path / "path") and "sh" in names and "git" in names
    assert not names & set(reader.HIDDEN) and not [n for n in names if n.startswith("qemu-")]
    assert (tmp_path / "path" / "docker").readlink() == newest_cli  # not this machine's 26.1 or 28.2 CLI


def test_the_engine_starts_with_its_root_as_the_namespaces_root_and_the_machines_unmounted():
    """The launch script, line by line: the root becomes a mount point first (runc needs one), then pivot_root,
    then the machine's root is unmounted, and only then dockerd runs."""
    lines = engine.LAUNCH.splitlines()
    order = [next(i for i, line in enumerate(lines) if line.startswith(start))
             for start in ('mount --bind "$R" "$R"', "pivot_root . .machine", "umount -l /.machine", 'exec "$@"')]
    assert order == sorted(order) and lines[0] == "set -e"
    assert not [line for line in lines if line.startswith("chroot")]


def test_the_namespace_and_what_it_added_are_taken_away_again():
    """ip netns list, iptables -S and ip_forward are as they were after make() and remove()."""
    import os

    require(os.geteuid() == 0 and all(shutil.which(t) for t in ("ip", "iptables", "nsenter")),
            "needs root, iproute2, iptables and nsenter, as make test-desktop does")
    before = network.snapshot()
    made = network.make()
    try:
        during = network.snapshot()
        assert network.NETNS in during[0] and "MASQUERADE" in during[1] and during[2].strip() == "1"
        if network.NETNS not in before[0]:  # made now, so taken away after
            assert made.namespace and len(made.rules) == len(network.RULES)
    finally:
        network.remove(made)
    assert network.snapshot() == before


def test_the_cost_meter_reads_the_forward_rule_that_lets_answers_in():
    from rehearsal import cost

    rules = ("-P FORWARD DROP -c 0 0\n-A FORWARD -i mkd-host -c 812 96044 -j ACCEPT\n"
             "-A FORWARD -o mkd-host -m conntrack --ctstate RELATED,ESTABLISHED -c 51210 402118337 -j ACCEPT\n"
             "-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -c 9 999 -j ACCEPT\n")
    assert cost.forwarded_in(rules) == 402118337  # answers into the namespace, not what it sent out
    with pytest.raises(LookupError, match="no FORWARD rule for mkd-host"):
        cost.forwarded_in(rules.replace("mkd-host", "eth9"))


def test_junit_xml_gives_each_notebook_the_seconds_of_its_cells(tmp_path):
    from rehearsal import cost

    junit = tmp_path / "lessons.xml"
    junit.write_text('<testsuites><testsuite name="pytest">'
                     '<testcase classname="notebooks.00-lab.ipynb" name="Cell 0" time="4.25"/>'
                     '<testcase classname="notebooks.00-lab.ipynb" name="Cell 1" time="1.5"/>'
                     '<testcase classname="notebooks.05-native-vs-emulated.ipynb" name="Cell 3" time="290.0"/>'
                     '<testcase classname="tests.desktop.test_shape" name="test_x" time="9"/>'
                     '</testsuite></testsuites>')
    assert cost.notebook_seconds(junit) == {"00-lab": 5.8, "05-native-vs-emulated": 290.0}
    assert cost.notebook_seconds(tmp_path / "absent.xml") == {}


def test_make_bench_prints_the_committed_first_run_cost_with_its_totals():
    import json

    from rehearsal import cost

    data = json.loads((ROOT / "results" / "desktop" / cost.RECORD).read_text())
    lines = cost.describe(data)
    assert data["cold"] and data["passed"] and [p["name"] for p in data["phases"]] == [
        "make venv", "lab up + tests/desktop", "every lesson under nbval"]
    seconds = sum(p["seconds"] for p in data["phases"])
    downloaded = sum(p["from_outside"] + p["from_hub"] for p in data["phases"])
    total = next(line for line in lines if line.strip().startswith("total"))
    assert f"{int(round(seconds) // 60)} min" in total and f"{downloaded / 1e6:,.0f} MB" in total
    assert len(data["notebooks"]) == len(list((ROOT / "notebooks").glob("*.ipynb")))
