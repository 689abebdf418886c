"""Guests for the VM guides: the built-in guest image, QEMU command lines, running VMs."""

from framework.virt.image import GuestImage, ensure_guest_image
from framework.virt.qemu import probe_accel, qemu_argv
from framework.virt.vm import (
    GuestCommandFailed,
    GuestShell,
    MigrationDidNotConverge,
    MigrationError,
    MigrationFailed,
    MigrationResult,
    MigrationTimeout,
    VirtualMachine,
    VmBootTimeout,
    VmError,
)

__all__ = [
    "GuestCommandFailed",
    "GuestImage",
    "GuestShell",
    "MigrationDidNotConverge",
    "MigrationError",
    "MigrationFailed",
    "MigrationResult",
    "MigrationTimeout",
    "VirtualMachine",
    "VmBootTimeout",
    "VmError",
    "ensure_guest_image",
    "probe_accel",
    "qemu_argv",
]
