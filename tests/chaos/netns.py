"""A network namespace joined to this machine by a veth pair, to cut one
process off from PostgreSQL and heal it again.

The pair lives on a private /30 that exists only inside this machine:
the host end gets the first address (PostgreSQL listens there too), the
namespace end the second. `cut()` takes the host end down, so packets in
both directions vanish as they would on a broken network (no reset, no
error: the process inside waits, retransmits, and its statements land,
late, once `heal()` brings the link back). Needs root; `create()` raises
NamespaceUnavailable with the kernel's words when `ip netns add` fails.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

# Private, and far from the ranges container runtimes and VPNs pick.
POOL = ipaddress.IPv4Network("10.213.0.0/16")


class NamespaceUnavailable(Exception):
    """`ip netns add` failed here (not root, no CAP_SYS_ADMIN, no `ip`)."""


def ip(*args: str) -> str:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


@dataclass(frozen=True)
class Link:
    namespace: str
    host_if: str
    ns_if: str
    network: ipaddress.IPv4Network

    @property
    def host_address(self) -> str:
        return str(self.network[1])

    @property
    def ns_address(self) -> str:
        return str(self.network[2])

    def exec_prefix(self) -> list[str]:
        """Prepend to a command to run it inside the namespace."""
        return ["ip", "netns", "exec", self.namespace]

    def cut(self) -> None:
        ip("link", "set", self.host_if, "down")

    def heal(self) -> None:
        ip("link", "set", self.host_if, "up")


def _free_network(seed: int) -> ipaddress.IPv4Network:
    used = [ipaddress.IPv4Interface(word).network
            for line in ip("-4", "-o", "addr").splitlines()
            for word in line.split()[3:4]]
    subnets = list(POOL.subnets(new_prefix=30))
    for i in range(len(subnets)):
        net = subnets[(seed + i) % len(subnets)]
        if not any(net.overlaps(u) for u in used):
            return net
    raise RuntimeError(f"no free /30 left in {POOL}")


@contextlib.contextmanager
def create() -> Iterator[Link]:
    """A namespace and veth pair of this process's own, removed on exit."""
    tag = str(os.getpid())
    name = f"jqchaos{tag}"
    try:
        ip("netns", "add", name)
    except (RuntimeError, OSError) as exc:
        raise NamespaceUnavailable(str(exc)) from None
    host_if = f"jqh{tag}"
    try:
        link = Link(name, host_if, f"jqw{tag}", _free_network(os.getpid()))
        ip("link", "add", link.host_if, "type", "veth", "peer", "name", link.ns_if)
        ip("link", "set", link.ns_if, "netns", name)
        ip("addr", "add", f"{link.host_address}/30", "dev", link.host_if)
        ip("link", "set", link.host_if, "up")
        inside = ["netns", "exec", name, "ip"]
        ip(*inside, "addr", "add", f"{link.ns_address}/30", "dev", link.ns_if)
        ip(*inside, "link", "set", link.ns_if, "up")
        ip(*inside, "link", "set", "lo", "up")
        yield link
    finally:
        # Deleting one end removes both; the namespace goes with its name.
        with contextlib.suppress(RuntimeError):
            ip("link", "del", host_if)
        with contextlib.suppress(RuntimeError):
            ip("netns", "del", name)
