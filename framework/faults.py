"""Deliberate DUT faults, so self-tests can prove that the suite's checks bite.

`pytest --inject-fault NAME testsuites/...` makes the framework misbehave in one named way
(for example the container testpmd forwarding nothing); tests/ then runs a guide's real
test module with the fault and asserts that it fails, and fails for the right reason.
A fault is never active unless named on the command line.
"""

from __future__ import annotations

FAULTS: dict[str, str] = {
    "container-forwards-nothing": "the container testpmd receives but never transmits (rxonly)",
    "container-port-stopped": "the container testpmd's virtio_user port is stopped",
    "single-queue": "both testpmds run with one queue pair although two were asked for",
    "dest-host-forwards-nothing": "guide 2: host_server_2's vhost switch receives but never "
    "transmits (rxonly)",
    "vm-paused-after-migration": "guide 2: the migrated VM is held paused for longer than the "
    "downtime bound",
}

_active: set[str] = set()


def activate(names: list[str]) -> None:
    unknown = [n for n in names if n not in FAULTS]
    if unknown:
        from framework.errors import ConfigError

        raise ConfigError(
            f"--inject-fault: unknown fault {', '.join(unknown)} (known: {', '.join(FAULTS)})"
        )
    _active.update(names)


def active(name: str) -> bool:
    if name not in FAULTS:
        raise KeyError(name)
    return name in _active
