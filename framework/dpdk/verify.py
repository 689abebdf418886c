"""Checks of what testpmd reports at a guide step: a bond's state, which ports move traffic.

Each `verify_*` takes what the DUT's testpmd showed (parsed), the guide's promise in its
own words, and what that step must show; it fails with the promise, then each field that
differs (seen, then expected), then the whole parsed output.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from framework.dpdk.modes import ForwardingModeLike
from framework.dpdk.parsers import BondingConfig, FwdConfig, PortInfo, PortStats
from framework.dpdk.settings import GuideSettings, PmdSettings, settings_problems
from framework.dpdk.testpmd import StartAttempt
from framework.verify import VerifyFailed, verdict


@dataclass(frozen=True)
class BondState:
    """What `show bonding config N` must show at a step; a field left None is not judged."""

    mode: int | None = None
    members: tuple[int, ...] | None = None  # in any order
    active: tuple[int, ...] | None = None  # in any order
    primary: int | None = None


def bond_problems(config: BondingConfig, expected: BondState) -> list[str]:
    """Each field of `config` that is not as `expected` says, seen then expected."""
    problems = []
    if expected.mode is not None and config.mode != expected.mode:
        problems.append(f"mode {config.mode}, expected {expected.mode}")
    if expected.members is not None and sorted(config.members) != sorted(expected.members):
        problems.append(f"members {config.members}, expected {sorted(expected.members)}")
    if expected.active is not None and sorted(config.active_members) != sorted(expected.active):
        problems.append(f"active {config.active_members}, expected {sorted(expected.active)}")
    if expected.primary is not None and config.primary != expected.primary:
        problems.append(f"primary P{config.primary}, expected P{expected.primary}")
    return problems


@verdict
def verify_bond(config: BondingConfig, what: str, expected: BondState) -> None:
    """`show bonding config` shows the bond the guide step leaves."""
    if problems := bond_problems(config, expected):
        raise VerifyFailed(f"{what}; {'; '.join(problems)}; {config}")


# Ports to judge: these ids, or "all" the ports testpmd reported.
Ports = Iterable[int] | Literal["all"]


def traffic_problems(
    stats: Mapping[int, PortStats], moving: Ports = (), silent: Ports = (), idle: Ports = ()
) -> list[str]:
    """What is wrong with the ports' traffic, port by port.

    A port of `moving` that did not both receive and send, one of `silent` that sent, one
    of `idle` that received or sent, one testpmd did not report.
    """
    if not stats and "all" in (moving, silent, idle):
        return ["testpmd reported no port"]
    moving, silent, idle = (sorted(stats) if p == "all" else p for p in (moving, silent, idle))
    problems = []
    for port in moving:
        s = stats.get(port)
        if s is None:
            problems.append(f"P{port} not reported (ports {sorted(stats)})")
        elif not (s.rx_packets > 0 and s.tx_packets > 0):
            problems.append(f"P{port} RX {s.rx_packets} TX {s.tx_packets}, expected both moving")
    for port in silent:
        s = stats.get(port)
        if s is None:
            problems.append(f"P{port} not reported (ports {sorted(stats)})")
        elif s.tx_packets:
            seen = f"P{port} RX {s.rx_packets} TX {s.tx_packets}"
            problems.append(f"{seen}, expected to send nothing")
    for port in idle:
        s = stats.get(port)
        if s is None:
            problems.append(f"P{port} not reported (ports {sorted(stats)})")
        elif s.rx_packets or s.tx_packets:
            seen = f"P{port} RX {s.rx_packets} TX {s.tx_packets}"
            problems.append(f"{seen}, expected no traffic")
    return problems


@verdict
def verify_port_traffic(
    stats: Mapping[int, PortStats],
    what: str,
    *,
    moving: Ports = (),
    silent: Ports = (),
    idle: Ports = (),
) -> None:
    """Moving ports received and sent, silent ones sent nothing, idle ones did neither.

    Over the counted interval: `show port stats all` after `clear port stats all`.
    """
    if problems := traffic_problems(stats, moving, silent, idle):
        raise VerifyFailed(f"{what}; {'; '.join(problems)}")


def count_problems(
    stats: Mapping[int, PortStats], rx: Mapping[int, int], tx: Mapping[int, int]
) -> list[str]:
    """Each port whose RX or TX packet counter is not the count given for it."""
    problems = []
    for direction, expected in (("RX", rx), ("TX", tx)):
        for port, count in expected.items():
            s = stats.get(port)
            if s is None:
                problems.append(f"P{port} not reported (ports {sorted(stats)})")
                continue
            seen = s.rx_packets if direction == "RX" else s.tx_packets
            if seen != count:
                problems.append(f"P{port} {direction} {seen}, expected {count}")
    return problems


def verify_port_counts(
    stats: Mapping[int, PortStats],
    what: str,
    *,
    rx: Mapping[int, int] | None = None,
    tx: Mapping[int, int] | None = None,
) -> None:
    """Each port's RX and TX packet counters are exactly the counts given, by port.

    Exact, not at least: a frame counted twice, or traffic the test did not send, is as
    wrong as one lost.
    """
    if problems := count_problems(stats, rx or {}, tx or {}):
        raise VerifyFailed(f"{what}; {'; '.join(problems)}")


def verify_queues(counts: Sequence[Sequence[int]], what: str, sides: Sequence[str]) -> None:
    """Every queue carried packets at every side: ``counts[q][i]`` is queue q at sides[i].

    Traffic spread over queues by RSS or by the virtio device's queue selection: a queue
    left idle on any side means the flows were not spread (or one side dropped them).
    """
    idle = [
        f"queue {q} carried no traffic on some side ("
        + ", ".join(f"{side} {n}" for side, n in zip(sides, row, strict=True))
        + ")"
        for q, row in enumerate(counts)
        if not all(row)
    ]
    if idle:
        # the idle queues on the first line: the summary shows a failure's first line
        raise VerifyFailed(
            f"{what}: {'; '.join(idle)}",
            expected=f"packets at {', '.join(sides)} on each of {len(counts)} queues",
        )


def _shown(ports: Mapping[int, PortInfo], port: int, problems: list[str]) -> PortInfo | None:
    if port not in ports:
        problems.append(f"P{port} not reported (ports {sorted(ports)})")
    return ports.get(port)


def _identity_problems(
    ports: Mapping[int, PortInfo],
    drivers: Mapping[int, str],
    names: Mapping[int, str],
    macs: Mapping[int, str],
) -> list[str]:
    problems: list[str] = []
    for port, driver in drivers.items():
        if (i := _shown(ports, port, problems)) and driver not in i.driver:
            problems.append(f"P{port} driver {i.driver}, expected {driver}")
    for port, name in names.items():
        if (i := _shown(ports, port, problems)) and name not in i.device_name:
            problems.append(f"P{port} device {i.device_name}, expected {name}")
    for port, mac in macs.items():
        if (i := _shown(ports, port, problems)) and i.mac.lower() != str(mac).lower():
            problems.append(f"P{port} MAC {i.mac.lower()}, expected {str(mac).lower()}")
    return problems


def _state_problems(
    ports: Mapping[int, PortInfo],
    up: Ports,
    down: Ports,
    queues: tuple[int, int] | None,
    promiscuous: tuple[Ports, Ports] = ((), ()),
) -> list[str]:
    problems: list[str] = []
    for wanted, judged in (("up", up), ("down", down)):
        for port in sorted(ports) if judged == "all" else judged:
            if (i := _shown(ports, port, problems)) and i.link_up != (wanted == "up"):
                problems.append(f"P{port} link {i.link_status}, expected {wanted}")
    for on, judged in zip((True, False), promiscuous, strict=True):
        for port in sorted(ports) if judged == "all" else judged:
            if (i := _shown(ports, port, problems)) and i.promiscuous != on:
                said = ("promiscuous", "not promiscuous")
                problems.append(f"P{port} {said[on]}, expected {said[not on]}")
    for port, i in sorted(ports.items()):
        if queues is not None and (i.nb_rx_queues, i.nb_tx_queues) != queues:
            problems.append(
                f"P{port} has {i.nb_rx_queues}/{i.nb_tx_queues} rx/tx queues, "
                f"expected {queues[0]}/{queues[1]}"
            )
    return problems


@verdict
def verify_ports(
    ports: Mapping[int, PortInfo],
    what: str,
    *,
    present: Iterable[int] | None = None,
    drivers: Mapping[int, str] | None = None,
    names: Mapping[int, str] | None = None,
    link_up: Ports = (),
    link_down: Ports = (),
    queues: tuple[int, int] | None = None,
    macs: Mapping[int, str] | None = None,
    promiscuous: Ports = (),
    not_promiscuous: Ports = (),
) -> None:
    """The ports testpmd shows (`show port info`) are those the step expects.

    `present`: exactly these port ids; `drivers`, `names`: a part of each port's driver
    or device name ("virtio", "virtio_user0"); `link_up`, `link_down`: these links up,
    down; `queues`: every port has these (rx, tx) queue counts; `macs`: these ports' MACs;
    `promiscuous`, `not_promiscuous`: these ports in promiscuous mode, not in it.
    """
    problems = []
    if present is not None and sorted(ports) != sorted(present):
        problems.append(f"ports {sorted(ports)}, expected {sorted(present)}")
    if not ports and "all" in (link_up, link_down):
        problems.append("testpmd reported no port")
    problems += _identity_problems(ports, drivers or {}, names or {}, macs or {})
    problems += _state_problems(ports, link_up, link_down, queues, (promiscuous, not_promiscuous))
    if problems:
        raise VerifyFailed(f"{what}; {'; '.join(problems)}")


def verify_forwarding(
    config: FwdConfig,
    what: str,
    *,
    mode: ForwardingModeLike | None = None,
    paths: Iterable[tuple[int, int]] | None = None,
) -> None:
    """`show config fwd` shows the forwarding the step sets up.

    `mode` is testpmd's name for it (io, mac, macswap...); `paths` the (RX port, TX port)
    pair of every stream, exactly (the ports' chaining: `set portlist`, --port-topology).
    """
    problems = []
    if mode is not None and config.mode != mode:
        problems.append(f"mode {config.mode}, expected {mode}")
    if paths is not None:
        seen = sorted({(s.rx_port, s.tx_port) for s in config.streams})
        if seen != sorted(set(paths)):
            problems.append(f"streams (rx, tx) {seen}, expected {sorted(set(paths))}")
    if problems:
        raise VerifyFailed(f"{what}; {'; '.join(problems)}")


def verify_pmd_settings(settings: PmdSettings, what: str, expected: GuideSettings) -> None:
    """A running testpmd forwards as the guide sets it up (cores, queues, descriptors, RSS)."""
    problems = settings_problems(settings, expected)
    if problems:
        raise VerifyFailed(f"{what}; {'; '.join(problems)}")


@verdict
def verify_port_macs(macs: Sequence[str], what: str, *, present: Iterable[str]) -> None:
    """A port's MAC addresses (`show port N macs`) include each of `present`."""
    have = {mac.upper() for mac in macs}
    missing = [mac.upper() for mac in present if mac.upper() not in have]
    if missing:
        raise VerifyFailed(
            f"{what}; {', '.join(missing)} not among the port's addresses",
            expected=", ".join(mac.upper() for mac in present),
            seen=", ".join(macs) or "none",
        )


def verify_refused(attempt: StartAttempt, what: str, *, naming: Sequence[str]) -> None:
    """The testpmd did not start, and what it printed names each of `naming` (any case).

    For a step the guide says cannot work: a testpmd that starts does not show the
    limitation; one refused for another reason (a wrong path, a busy lcore) does not
    show it either.
    """
    if not attempt.refused:
        raise VerifyFailed(
            f"{what}; testpmd started, expected it refused naming "
            + ", ".join(repr(n) for n in naming),
            seen=attempt.output[-2000:],
        )
    said = attempt.output.lower()
    if missing := [n for n in naming if n.lower() not in said]:
        raise VerifyFailed(
            f"{what}; refused for another reason: {attempt.refusal}; its output does not "
            "name " + ", ".join(repr(n) for n in missing),
            seen=attempt.output[-2000:],
        )
