"""A kernel network interface as a shell on its machine shows it (sysfs, ip, ethtool).

Works through any `run(command) -> output` (a lab host's session, a guest's console), with
busybox's tools as much as with full ones: addresses come from `ip addr show`, flags,
queues and tun flags from sysfs, offloads from `ethtool -k` where ethtool exists.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from framework.remote.readout import Run, read_marked
from framework.verify import VerifyFailed

IFF_UP = 0x1
IFF_PROMISC = 0x100
IFF_TAP = 0x0002  # tun_flags: a tap (layer 2), not a tun
IFF_VNET_HDR = 0x4000


@dataclass(frozen=True)
class KernelInterface:
    """What the kernel says about one interface."""

    name: str
    admin_up: bool
    operstate: str
    mac: str
    mtu: int
    addresses: list[str]  # "198.18.7.1/24"
    rx_queues: int
    tx_queues: int
    tun_flags: int | None  # None: not a tun/tap
    offloads: dict[str, bool] = field(default_factory=dict)  # ethtool -k; empty without it
    flags: int = 0  # IFF_*
    # /sys/class/net/<if>/statistics: rx_packets, tx_bytes, rx_dropped...
    counters: dict[str, int] = field(default_factory=dict, compare=False)

    @property
    def promiscuous(self) -> bool:
        """IFF_PROMISC: the interface takes in frames to any address."""
        return bool(self.flags & IFF_PROMISC)

    @property
    def is_tap(self) -> bool:
        """A tun/tap device in tap mode."""
        return self.tun_flags is not None and bool(self.tun_flags & IFF_TAP)

    @property
    def vnet_hdr(self) -> bool:
        """The tap carries the virtio-net header (IFF_VNET_HDR): offloads cross it."""
        return self.tun_flags is not None and bool(self.tun_flags & IFF_VNET_HDR)


_MARK = "__howto_netdev__"


def read_interface(run: Run, name: str) -> KernelInterface:
    """Read `name` through `run` in one round trip (ethtool -k if present)."""
    d = f"/sys/class/net/{name}"
    script = (
        f"for f in flags operstate address mtu tun_flags; do "
        f'printf "{_MARK} %s " $f; cat {d}/$f 2>/dev/null || echo -; done; '
        f'printf "{_MARK} queues "; ls {d}/queues | tr "\\n" " "; echo; '
        f'printf "{_MARK} statistics "; for c in $(ls {d}/statistics); do '
        f'printf "%s=%s " $c $(cat {d}/statistics/$c); done; echo; '
        f'echo "{_MARK} ip"; ip addr show dev {name}; '
        f'echo "{_MARK} ethtool"; ethtool -k {name} 2>/dev/null; echo "{_MARK} end"'
    )
    return parse_interface(name, run(script))


def parse_interface(name: str, text: str) -> KernelInterface:
    """KernelInterface from the output of read_interface's script."""
    marked = read_marked(text, _MARK)
    values = {m.name: m.value for m in marked}
    sections = {m.name: m.lines for m in marked}
    if values.get("flags", "-") == "-":
        raise ValueError(f"no interface {name} (sysfs has no /sys/class/net/{name})")
    queues = values.get("queues", "").split()
    tun = values.get("tun_flags", "-")
    flags = int(values["flags"], 16)
    counters = dict(part.split("=", 1) for part in values.get("statistics", "").split())
    return KernelInterface(
        name=name,
        admin_up=bool(flags & IFF_UP),
        operstate=values.get("operstate", "unknown"),
        mac=values.get("address", ""),
        mtu=int(values.get("mtu", "0") or 0),
        addresses=re.findall(r"inet6? (\S+)", "\n".join(sections.get("ip", []))),
        rx_queues=sum(q.startswith("rx-") for q in queues),
        tx_queues=sum(q.startswith("tx-") for q in queues),
        tun_flags=int(tun, 16) if tun not in ("-", "") else None,
        offloads=_offloads(sections.get("ethtool", [])),
        flags=flags,
        counters={key: int(value) for key, value in counters.items() if value.isdigit()},
    )


def read_offloads(run: Run, name: str) -> dict[str, bool]:
    """`ethtool -k name` as {offload: on}.

    Unlike read_interface, it needs no sysfs of the interface's namespace: a lab host
    that is a network namespace without its own /sys shows the machine's interfaces there.
    """
    return _offloads(run(f"ethtool -k {name}").splitlines())


def read_statistics(run: Run, name: str) -> dict[str, int]:
    """`ethtool -S name`: the driver's own counters (virtio_net's per queue among them)."""
    return parse_statistics(run(f"ethtool -S {name}"))


def parse_statistics(text: str) -> dict[str, int]:
    """`ethtool -S` output as {counter: value} (its "NIC statistics:" heading left out)."""
    found = {}
    for line in text.splitlines():
        match = re.match(r"^\s+([\w.-]+):\s+(\d+)\s*$", line)
        if match:
            found[match.group(1)] = int(match.group(2))
    return found


def read_driver(run: Run, name: str) -> str | None:
    """The kernel driver of `name` (`ethtool -i`: "veth", "ixgbe"...); None if not told."""
    found = re.search(r"^driver:\s*(\S+)", run(f"ethtool -i {name} 2>/dev/null; true"), re.M)
    return found.group(1) if found else None


def _offloads(lines: list[str]) -> dict[str, bool]:
    found = {}
    for line in lines:
        match = re.match(r"^\s*([a-z0-9-]+):\s+(on|off)", line)
        if match:
            found[match.group(1)] = match.group(2) == "on"
    return found


def tap_names(run: Run) -> list[str]:
    """Interfaces that are tun/tap devices (they have tun_flags in sysfs)."""
    out = run(
        f'for d in /sys/class/net/*; do [ -e "$d/tun_flags" ] && echo "{_MARK} ${{d##*/}}"; '
        "done; true"
    )
    return sorted(m.name for m in read_marked(out, _MARK))


def verify_tap(
    interface: KernelInterface,
    what: str,
    *,
    queues: int | None = None,
    vnet_hdr: bool | None = None,
    up: bool | None = None,
    address: str | None = None,
    offloads: Mapping[str, bool] | None = None,
) -> None:
    """The kernel shows a tap as the step leaves it.

    `queues` rx and tx queues, the virtio-net header (IFF_VNET_HDR: offloads cross it) or
    not, up or down, `address` among its addresses, each of `offloads` (`ethtool -k`
    names) on or off.
    """
    problems = []
    if not interface.is_tap:
        flags = "none" if interface.tun_flags is None else f"{interface.tun_flags:#x}"
        problems.append(f"{interface.name} is not a tap (tun_flags {flags})")
    if queues is not None and (interface.rx_queues, interface.tx_queues) != (queues, queues):
        problems.append(
            f"{interface.name} has {interface.rx_queues} rx / {interface.tx_queues} tx queues, "
            f"expected {queues}"
        )
    if vnet_hdr is not None and interface.vnet_hdr != vnet_hdr:
        has = "carries" if interface.vnet_hdr else "lacks"
        problems.append(f"{interface.name} {has} the virtio-net header, expected {vnet_hdr}")
    if up is not None and interface.admin_up != up:
        state = "up" if interface.admin_up else "down"
        problems.append(f"{interface.name} is {state}, expected {'up' if up else 'down'}")
    if address is not None and address not in interface.addresses:
        problems.append(f"{interface.name} has addresses {interface.addresses}, expected {address}")
    for offload, on in (offloads or {}).items():
        if bool(interface.offloads.get(offload)) != on:
            seen = interface.offloads.get(offload)
            state = "absent" if seen is None else ("on" if seen else "off")
            problems.append(f"{interface.name} {offload} {state}, expected {'on' if on else 'off'}")
    if problems:
        raise VerifyFailed(f"{what}; {'; '.join(problems)}")
