"""Checks of what QEMU reports about a VM at a guide step (the guide's `info status`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from framework.verify import VerifyFailed

if TYPE_CHECKING:
    from framework.virt.vm import VirtualMachine


def verify_vm_status(vm: VirtualMachine, what: str, expected: str) -> None:
    """QEMU reports the VM in the run state the guide's `info status` shows.

    `expected` is QMP's name for it: running, inmigrate (waiting with -incoming),
    postmigrate (the source after a migration), paused (QMP stop).
    """
    found = vm.qmp("query-status")
    status = str(found.get("status"))
    if status != expected:
        raise VerifyFailed(
            f"{what}; QEMU reports {vm.name} {status} (vCPUs running: "
            f"{bool(found.get('running'))}), expected {expected}"
        )
