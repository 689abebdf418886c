"""The VF a guide-1 VM gets on a host: a real SR-IOV VF on a lab, an emulated NIC here.

Lab (`kind: vf`): guide 1.4.1 on the host — one VF created on the PF, unbound from its
kernel driver and bound to vfio-pci — then `-device vfio-pci,host=<VF>,id=vf1`.
Virtual lab (`kind: tap`, `role: vf`): no host here has SR-IOV, so an e1000 (a NIC QEMU can
hot-plug and DPDK drives with its own PMD) on a tap bridged with a host port of its own
stands in for the VF. The test body is the same; `emulated` says which ran.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from framework.errors import ConfigError
from framework.lab.sriov import SriovPf, VirtualFunction
from framework.virt.host_net import TapBridge, bridge_for

if TYPE_CHECKING:
    from framework.config.model import VmNic
    from framework.lab.hosts import HostHandle
    from framework.virt.vm import VirtualMachine


class HostVf(Protocol):
    """A VF for the VM on one host."""

    host: HostHandle
    nic: VmNic
    emulated: bool
    steps: list[tuple[str, str]]

    def set_up(self) -> None:
        """Guide 1.4.1 (setup_vf_on_*.sh) on this host."""

    def backend(self) -> str:
        """The VF's host end for QEMU: the VF's PCI address, or the stand-in's tap."""

    def set_link(self, vm: VirtualMachine, up: bool) -> None:
        """Take the VF's link down (or up) from outside the guest."""

    def pf_address(self) -> str | None:
        """The VF's perm_addr as its kernel PF keeps it; None: no PF (a stand-in)."""

    def describe(self) -> str:
        """One line for the report: what stands for the VF here."""

    def close(self) -> None:
        """Undo set_up; never raises."""


@dataclass
class SriovHostVf:
    """VF 0 of a lab host's PF, bound to vfio-pci for QEMU."""

    host: HostHandle
    nic: VmNic
    emulated: bool = False
    steps: list[tuple[str, str]] = field(default_factory=list)
    pf: SriovPf | None = None
    vf: VirtualFunction | None = None

    def set_up(self) -> None:
        """sriov_numvfs = 1 on the PF; the VF's kernel driver unbound; vfio-pci bound."""
        assert self.nic.pf is not None  # the model requires it for kind vf
        port = self.host.port(self.nic.pf)
        if port.spec.pci is None:
            raise ConfigError(f"hosts.{self.host.name}.ports.{port.name}: a PF needs its 'pci'")
        self.pf = SriovPf(self.host.session, port.spec.pci.lower(), host=self.host.name)
        (self.vf,) = self.pf.enable(1)
        self.pf.unbind(self.vf)
        self.pf.bind_vfio(self.vf)
        self.steps = self.pf.steps

    def backend(self) -> str:
        """The VF's PCI address, for `-device vfio-pci,host=...`."""
        assert self.vf is not None, "set_up() first"
        return self.vf.pci

    def set_link(self, vm: VirtualMachine, up: bool) -> None:
        """`ip link set <PF> vf 0 state disable|auto` on the host (kernel PF)."""
        assert self.pf is not None and self.vf is not None
        self.pf.set_vf_link(self.vf, "auto" if up else "disable")

    def pf_address(self) -> str | None:
        """`ip link show <PF>`: the address the PF keeps for VF 0 (its perm_addr)."""
        assert self.pf is not None and self.vf is not None, "set_up() first"
        return self.pf.vf_address(self.vf)

    def describe(self) -> str:
        """The VF's PCI address and its PF."""
        if self.vf is None:
            return f"SR-IOV VF of {self.nic.pf} (not set up)"
        return f"SR-IOV VF {self.vf.pci} of PF {self.vf.pf_pci} on {self.host.name}, vfio-pci"

    def close(self) -> None:
        """Give the VF back and restore the PF's VF count."""
        if self.pf is not None:
            self.pf.restore()


@dataclass
class EmulatedHostVf:
    """An e1000 on a tap bridged with the host port the topology names (`bridge`)."""

    host: HostHandle
    nic: VmNic
    emulated: bool = True
    steps: list[tuple[str, str]] = field(default_factory=list)
    bridge: TapBridge | None = None

    def set_up(self) -> None:
        """The VF's tap, bridged with its own port toward the switch."""
        self.bridge = bridge_for(self.host, self.nic, "vfbr").create()
        self.steps = [
            ("echo 1 > /sys/bus/pci/devices/<PF>/sriov_numvfs; rmmod ixgbevf",
             f"no SR-IOV here: {self.describe()}"),
            *self.bridge.steps,
        ]  # fmt: skip

    def backend(self) -> str:
        """The tap QEMU's netdev opens."""
        assert self.bridge is not None, "set_up() first"
        return self.bridge.tap

    def set_link(self, vm: VirtualMachine, up: bool) -> None:
        """QMP set_link on the emulated NIC: the guest's e1000 reports link down."""
        vm.set_link(self.nic.id, up)

    def pf_address(self) -> str | None:
        """None: an emulated NIC has no PF to keep an address for it."""
        return None

    def describe(self) -> str:
        """What stands in for the VF."""
        where = f"tap {self.bridge.tap} bridged with {self.bridge.port}" if self.bridge else "tap"
        return f"emulated VF: QEMU {self.nic.model} on {where} ({self.host.name})"

    def close(self) -> None:
        """Remove the tap and its bridge."""
        if self.bridge is not None:
            self.bridge.close()


def host_vf(host: HostHandle, nic: VmNic) -> HostVf:
    """The VF backing for a NIC in the `vf` role on this host."""
    if nic.kind == "vf":
        return SriovHostVf(host, nic)
    if nic.kind == "tap":
        return EmulatedHostVf(host, nic)
    raise ConfigError(f"NIC {nic.id}: role vf needs kind vf (SR-IOV) or tap (emulated)")
