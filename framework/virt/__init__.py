"""Guests for the VM guides: the built-in guest image, QEMU command lines, running VMs.

Modules: vm (VirtualMachine, the façade), qemu (command line, accelerator), image (the
built-in guest), qmp (QEMU's control protocol), console (serial consoles, guest shell),
guest_testpmd (testpmd in the guest), migration (live migration), errors.
"""

from framework.virt.console import GuestShell
from framework.virt.errors import (
    GuestCommandFailed,
    MigrationDidNotConverge,
    MigrationError,
    MigrationFailed,
    MigrationTimeout,
    VmBootTimeout,
    VmError,
)
from framework.virt.image import GuestImage, ensure_guest_image
from framework.virt.migration import MigrationResult
from framework.virt.qemu import probe_accel, qemu_argv
from framework.virt.vm import VirtualMachine

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
