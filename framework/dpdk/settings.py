"""How a running testpmd forwards, as it reports it, against what a guide prescribes.

Guide 4 fixes the set-up of both testpmds: which lcores forward (on isolated CPUs), one
queue each way, 256 descriptors in the guest, RSS off. These are read back from the
running testpmd (`show config cores`, `show config rxtx`, `show port N rss-hash`), not
taken from the command line the suite built: a PMD or a testpmd that ignores an option
shows here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from framework.dpdk.parsers import RxTxConfig
from framework.dpdk.testpmd import TestPmd


@dataclass(frozen=True)
class PmdSettings:
    """A running testpmd's forwarding set-up as it reports it, with its machine's isolation.

    `lcores`: `show config cores`; `rxtx`: `show config rxtx`; `rss`: `show port N
    rss-hash` per port (None: the port has no RSS); `isolated`: the CPUs its machine's
    kernel isolates (/sys/devices/system/cpu/isolated; an lcore is a CPU under `-l`).
    """

    lcores: tuple[int, ...]
    rxtx: RxTxConfig
    rss: Mapping[int, bool | None]
    isolated: frozenset[int]


@dataclass(frozen=True)
class GuideSettings:
    """What a guide prescribes for one testpmd; a field left None (or False) is not judged."""

    lcores: tuple[int, ...] | None = None  # the forwarding lcores, in any order
    queues: int | None = None  # rx and tx queues of every port
    descriptors: int | None = None  # rx and tx descriptors of every queue
    rss_off: bool = False  # no port hashes to queues
    isolated: bool = False  # every forwarding lcore on a CPU the kernel isolates


def settings_problems(settings: PmdSettings, expected: GuideSettings) -> list[str]:
    """Each setting of `settings` that is not as `expected` says, seen then expected."""
    problems = []
    lcores = sorted(settings.lcores)
    if expected.lcores is not None and lcores != sorted(expected.lcores):
        problems.append(
            f"{len(lcores)} forwarding lcores {lcores}, expected {len(expected.lcores)} "
            f"{sorted(expected.lcores)}"
        )
    if expected.isolated and not set(lcores) <= settings.isolated:
        outside = sorted(set(lcores) - settings.isolated)
        problems.append(
            f"forwarding lcores {outside} not on isolated CPUs (isolated: "
            f"{sorted(settings.isolated) or 'none'})"
        )
    for port, q in sorted(settings.rxtx.ports.items()):
        if expected.queues is not None and (q.rx_queues, q.tx_queues) != (expected.queues,) * 2:
            problems.append(
                f"P{port} {q.rx_queues}/{q.tx_queues} rx/tx queues, expected "
                f"{expected.queues}/{expected.queues}"
            )
        want = expected.descriptors
        if want is not None and (q.rx_descriptors, q.tx_descriptors) != (want, want):
            problems.append(
                f"P{port} {q.rx_descriptors}/{q.tx_descriptors} rx/tx descriptors, expected "
                f"{want}/{want}"
            )
    if expected.rss_off:
        problems += [f"P{port} RSS on, expected off" for port, on in settings.rss.items() if on]
    return problems


def read_settings(pmd: TestPmd, isolated: frozenset[int]) -> PmdSettings:
    """What `pmd` reports of its forwarding set-up; `isolated`: its machine's isolated CPUs."""
    rxtx = pmd.show_config_rxtx()
    return PmdSettings(
        lcores=tuple(pmd.forwarding_lcores()),
        rxtx=rxtx,
        rss={port: pmd.rss_enabled(port) for port in sorted(rxtx.ports)},
        isolated=isolated,
    )


def settings_rows(settings: PmdSettings, expected: GuideSettings) -> list[list[object]]:
    """A report's rows: each setting, what the guide (on this topology) wants, what runs."""

    def judged(value: object) -> object:
        return "not judged" if value is None else value

    def descriptors(n: int) -> str:
        return f"{n} (the PMD's default)" if n == 0 else str(n)

    ports = sorted(settings.rxtx.ports.items())
    rows: list[list[object]] = [
        [
            "forwarding lcores",
            judged(None if expected.lcores is None else list(expected.lcores)),
            list(settings.lcores),
        ],
        [
            "on isolated CPUs",
            "yes" if expected.isolated else "not judged",
            f"isolated: {sorted(settings.isolated) or 'none'}",
        ],
    ]
    for port, q in ports:
        rows.append(
            [f"P{port} rx/tx queues", judged(expected.queues), f"{q.rx_queues}/{q.tx_queues}"]
        )
        rows.append(
            [
                f"P{port} rx/tx descriptors",
                judged(expected.descriptors),
                f"{descriptors(q.rx_descriptors)}/{descriptors(q.tx_descriptors)}",
            ]
        )
        rss = settings.rss.get(port)
        shown = "no RSS on this port" if rss is None else ("on" if rss else "disabled")
        rows.append([f"P{port} RSS", "off" if expected.rss_off else "not judged", shown])
    return rows
