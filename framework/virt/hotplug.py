"""NIC hotplug over QMP: guide 1's `device_del vf1` and `device_add ...,id=vf1`.

The guide types these into the HMP monitor; QMP does the same and reports the end of an
unplug with a DEVICE_DELETED event (the guest must first release the device: ACPI hotplug
on the pc machine's pci.0, or, with a vIOMMU, on q35 of the NIC's PCIe root port), which
the suite waits for instead of sleeping.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from framework.virt.errors import VmError
from framework.virt.qemu import nic_device, tap_netdev, vf_device

if TYPE_CHECKING:
    from framework.config.model import VmNic
    from framework.virt.vm import VirtualMachine


@dataclass(frozen=True)
class Hotplug:
    """What one plug or unplug did: the QMP commands, when, and how long it took."""

    action: str  # "device_add" | "device_del"
    nic_id: str
    commands: tuple[str, ...]  # the QMP commands, as `name {arguments}`
    started_at: float  # time.time()
    finished_at: float

    @property
    def seconds(self) -> float:
        """From the first command to the device being in place (or gone)."""
        return self.finished_at - self.started_at


def _record(commands: list[str], name: str, args: dict[str, Any]) -> None:
    shown = ", ".join(f"{k}={v}" for k, v in args.items())
    commands.append(f"{name} {shown}")


def unplug(vm: VirtualMachine, nic: VmNic, timeout: float = 30.0) -> Hotplug:
    """`device_del` the NIC and wait for QEMU's DEVICE_DELETED; drop its netdev too.

    Raises:
        VmError: QEMU refused, or the guest did not release the device in time.
    """
    commands: list[str] = []
    started = time.time()
    _record(commands, "device_del", {"id": nic.id})
    vm.qmp("device_del", id=nic.id)
    deadline = time.monotonic() + timeout
    while not any(
        name == "DEVICE_DELETED" and data.get("device") == nic.id and t >= started
        for t, name, data in vm.events
    ):
        if time.monotonic() > deadline:
            raise VmError(
                f"{vm.name}: device_del {nic.id}: the guest did not release the device "
                f"within {timeout:g} s (no DEVICE_DELETED event)"
            )
        time.sleep(0.02)
    finished = time.time()
    if nic.kind == "tap":
        # The netdev outlives its device; a later device_add on this host would clash.
        _record(commands, "netdev_del", {"id": nic.id})
        vm.qmp("netdev_del", id=nic.id)
    return Hotplug("device_del", nic.id, tuple(commands), started, finished)


def plug(vm: VirtualMachine, nic: VmNic, backend: str) -> Hotplug:
    """`device_add` the NIC at its fixed slot (a tap NIC gets its netdev first).

    `backend` is the NIC's host end: a tap's interface name, a VF's PCI address.

    Raises:
        VmError: QEMU refused the netdev or the device.
    """
    commands: list[str] = []
    started = time.time()
    viommu = vm.spec.viommu
    if nic.kind == "tap":
        netdev = _options(tap_netdev(nic, backend))
        _record(commands, "netdev_add", netdev)
        vm.qmp("netdev_add", verbatim=netdev)
        device = _options(nic_device(nic, viommu=viommu))
    elif nic.kind == "vf":
        device = _options(vf_device(nic, backend, viommu=viommu))
    else:
        raise VmError(f"{vm.name}: device_add {nic.id}: cannot hot-plug a {nic.kind} NIC")
    # behind a vIOMMU the NIC goes back behind its root port (the device names its bus)
    device.setdefault("bus", "pci.0")
    _record(commands, "device_add", device)
    vm.qmp("device_add", verbatim=device)
    return Hotplug("device_add", nic.id, tuple(commands), started, time.time())


def _options(text: str) -> dict[str, Any]:
    """A command-line option string (`e1000,netdev=vf1,addr=0x4`) as QMP arguments.

    The first word is the driver (-device) or the type (-netdev). Keys are QEMU's own
    spelling: send them verbatim (a device's `iommu_platform` has an underscore).
    """
    first, *rest = text.split(",")
    key = "type" if first in ("tap", "user", "vhost-user") else "driver"
    out: dict[str, Any] = {key: first}
    for item in rest:
        name, _, value = item.partition("=")
        out[name] = value
    return out
