"""The engine's network namespace: its own loopback, reaching out through a veth pair and NAT, as Docker Desktop's
VM does. What :func:`make` changes is recorded in a :class:`Made`, and :func:`remove` takes exactly that away: the
namespace and its veth pair, the iptables rules it added, and ``ip_forward`` as it was.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .common import HOST_LINK, HOST_SIDE, NETNS, NS_LINK, NS_SIDE, SUBNET, in_ns, sh

IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")
RULES = (  # (table, chain, rule): NAT out of the namespace, and forwarding both ways
    ("nat", "POSTROUTING", ("-s", SUBNET, "-j", "MASQUERADE")),
    ("filter", "FORWARD", ("-i", HOST_LINK, "-j", "ACCEPT")),
    ("filter", "FORWARD", ("-o", HOST_LINK, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT")),
)


@dataclass
class Made:
    """What :func:`make` changed on this machine, so that :func:`remove` undoes that and nothing else."""

    namespace: bool = False  # the namespace (and its veth pair) was made now
    rules: list[tuple[str, str, tuple[str, ...]]] = field(default_factory=list)  # the rules added now
    ip_forward: str | None = None  # ip_forward's value before, when it was changed


def make() -> Made:
    """The namespace, its link and routes, NAT and forwarding; each part only when it is not there yet."""
    made = Made()
    if not Path(f"/run/netns/{NETNS}").exists():
        sh("ip", "netns", "add", NETNS)
        made.namespace = True
        sh("ip", "link", "add", HOST_LINK, "type", "veth", "peer", "name", NS_LINK)
        sh("ip", "link", "set", NS_LINK, "netns", NETNS)
        sh("ip", "addr", "add", f"{HOST_SIDE}/30", "dev", HOST_LINK)
        sh("ip", "link", "set", HOST_LINK, "up")
        sh(*in_ns("ip", "addr", "add", f"{NS_SIDE}/30", "dev", NS_LINK))
        sh(*in_ns("ip", "link", "set", NS_LINK, "up"))
        sh(*in_ns("ip", "link", "set", "lo", "up"))
        sh(*in_ns("ip", "route", "add", "default", "via", HOST_SIDE))
    before = IP_FORWARD.read_text().strip()
    if before != "1":
        IP_FORWARD.write_text("1\n")
        made.ip_forward = before
    for table, chain, rule in RULES:
        if sh("iptables", "-t", table, "-C", chain, *rule, echo=False, check=False).returncode != 0:
            sh("iptables", "-t", table, "-I", chain, *rule)
            made.rules.append((table, chain, rule))
    return made


def remove(made: Made) -> None:
    """Undo what ``made`` records, last made first. Deleting the namespace deletes its end of the veth pair, and
    with it the host's end."""
    for table, chain, rule in reversed(made.rules):
        sh("iptables", "-t", table, "-D", chain, *rule, check=False)
    if made.namespace:
        sh("ip", "netns", "del", NETNS, check=False)
        if Path(f"/sys/class/net/{HOST_LINK}").exists():
            sh("ip", "link", "del", HOST_LINK, check=False)
    if made.ip_forward is not None:
        IP_FORWARD.write_text(made.ip_forward + "\n")


def snapshot() -> tuple[str, str, str]:
    """What the rehearsal must leave as it found it: ``ip netns list``, ``iptables -S`` (both tables) and
    ``ip_forward``."""
    tables = "".join(sh("iptables", "-t", t, "-S", echo=False).stdout for t in ("filter", "nat"))
    return sh("ip", "netns", "list", echo=False).stdout, tables, IP_FORWARD.read_text()
