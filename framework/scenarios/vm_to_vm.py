"""DPDK's reconnect plan VM to VM: two kernel guests talking TCP through the host testpmd.

The plan's cases "vhost-user/virtio-net VM2VM reconnect" (7-9 split, 16-18 packed): the
host testpmd serves two vhost-user sockets and forwards io between them, no NIC; VM1 and
VM2 each drive their one virtio NIC with the kernel's virtio-net, an address on it, the
other's MAC as a static ARP entry, and TCP flows between them. Guide 4's VM split in two
(framework.scenarios.pvvp) gives the VMs, their sockets and MACs. The plan runs iperf; a
known byte stream (framework.traffic.guest_tcp) also tells whether every byte arrived.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from framework.config.model import Vm
from framework.dpdk.testpmd import TestPmd
from framework.errors import ConfigError
from framework.scenarios.pvvp import Pvvp
from framework.scenarios.vms import close_vms, kernel_guest_spec
from framework.traffic.guest_tcp import GuestTcpStream, guest_tcp_stream
from framework.virt.kernel_net import KernelEndpoint

# VM1's and VM2's addresses (the virtual lab's 198.18.0.0/15; only the two guests use them).
ADDRESSES = ("198.18.80.1", "198.18.80.2")
PREFIX = 24


@dataclass
class KernelVmToVm(Pvvp):
    """Two VMs on the kernel's virtio-net, the host testpmd between them (vhost0 <-> vhost1)."""

    endpoints: list[KernelEndpoint] = field(default_factory=list)

    def vm_specs(self) -> list[Vm]:
        """Guide 4's VM split in two, each NIC fit for the kernel's virtio-net."""
        return [kernel_guest_spec(self.host, spec) for spec in super().vm_specs()]

    def start_host_testpmd(self) -> TestPmd:
        """The host testpmd: the two vhost-user ports, io between them, no NIC."""
        return self._start_switch(vm_to_vm=True)

    def start_guests(self, boot_timeout: float = 120) -> None:
        """Both VMs; in each, the NIC on virtio-net with its address and the other's MAC."""
        specs = self.boot_vms(boot_timeout)
        self.endpoints = []
        for vm, spec, address in zip(self.vms, specs, ADDRESSES, strict=True):
            try:
                pci = spec.guest_pci(spec.nics[0])
            except ValueError as exc:
                raise ConfigError(f"vm {self.spec.vm}: {exc}") from exc
            self.endpoints.append(KernelEndpoint.start(vm, pci, address, PREFIX))
        first, second = self.endpoints
        first.add_neighbour(second)
        second.add_neighbour(first)

    def close_guests(self) -> None:
        """The VMs (the kernels' sockets go with them)."""
        self.endpoints = []
        close_vms(self.vms)
        self.vms = []

    @contextmanager
    def byte_stream(self) -> Iterator[GuestTcpStream]:
        """A known byte stream over TCP from VM2 to VM1, through the host, for the block."""
        receiver, sender = self.endpoints
        with guest_tcp_stream(sender.vm, receiver.vm, receiver.address) as stream:
            yield stream
