"""A VM's tap bridged with a host NIC port: guide 1's setup_bridge_on_*.sh.

The guide adds the PF and QEMU's tap1 to libvirt's existing virbr0 with brctl/ifconfig.
Here the bridge and the tap are the run's own (named with the run prefix, so a lab
host's virbr0 and another run's bridge are never touched), made with iproute2 before
QEMU starts; QEMU then opens the tap by name. Both are removed again, and the port is
released from the bridge, on close.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from framework.errors import ConfigError, FrameworkError

if TYPE_CHECKING:
    from framework.config.model import VmNic
    from framework.lab.hosts import HostHandle
    from framework.remote.session import Session

log = logging.getLogger("howto.virt")


class BridgeError(FrameworkError):
    """The tap or the bridge could not be set up on the host."""


@dataclass
class TapBridge:
    """A bridge joining one host port and one persistent tap for QEMU.

    Args:
        session: the host.
        bridge: the bridge's name (<= 15 characters).
        tap: the tap's name (<= 15 characters), what QEMU's `ifname=` gets.
        port: the host NIC port's kernel interface.
        quiet_netfilter: keep bridged frames out of iptables in the host's network
            namespace (virtual lab hosts only: a lab host's sysctls are not the suite's).
        multi_queue: make the tap multi-queue, for a NIC with several queue pairs (QEMU
            opens one file descriptor per queue on it).
    """

    session: Session
    bridge: str
    tap: str
    port: str
    quiet_netfilter: bool = False
    multi_queue: bool = False
    # (what the guide ran, what ran here), for the report
    steps: list[tuple[str, str]] = field(default_factory=list)
    _made: list[str] = field(default_factory=list)

    def _ip(self, *args: str) -> None:
        result = self.session.run(["ip", *args], check=False)
        if not result.ok:
            raise BridgeError(
                f"{self.session.name}: ip {' '.join(args)}: "
                f"{(result.stderr or result.stdout).strip() or f'exit {result.exit_code}'}"
            )

    def create(self) -> TapBridge:
        """Make the tap and the bridge, enslave the port and the tap, bring all up."""
        ran = []
        mq = ["multi_queue"] if self.multi_queue else []
        self._ip("tuntap", "add", "dev", self.tap, "mode", "tap", *mq)
        self._made.append(self.tap)
        ran.append(" ".join(["ip tuntap add dev", self.tap, "mode tap", *mq]))
        self._ip("link", "add", self.bridge, "type", "bridge", "stp_state", "0")
        self._made.append(self.bridge)
        ran.append(f"ip link add {self.bridge} type bridge")
        if self.quiet_netfilter:
            for knob in ("iptables", "ip6tables", "arptables"):
                self.session.run(
                    ["sysctl", "-qw", f"net.bridge.bridge-nf-call-{knob}=0"], check=False
                )
        for member in (self.port, self.tap):
            self._ip("link", "set", member, "master", self.bridge, "up")
            ran.append(f"ip link set {member} master {self.bridge} up")
        self._ip("link", "set", self.bridge, "up")
        ran.append(f"ip link set {self.bridge} up")
        self.steps.append(
            (
                "brctl addif virbr0 <PF>; brctl addif virbr0 tap1; ifconfig ... up",
                "; ".join(ran) + " (before QEMU starts: QEMU then opens the tap by name)",
            )
        )
        log.info("[%s] bridge %s: %s + %s", self.session.name, self.bridge, self.port, self.tap)
        return self

    def close(self) -> None:
        """Release the port, remove the tap and the bridge; never raises."""
        if not self._made:
            return
        self.session.run(["ip", "link", "set", self.port, "nomaster"], check=False)
        for name in reversed(self._made):
            self.session.run(["ip", "link", "del", name], check=False)
        self._made.clear()

    def __enter__(self) -> TapBridge:
        return self.create()

    def __exit__(self, *exc: object) -> None:
        self.close()


def bridge_for(host: HostHandle, nic: VmNic, bridge: str) -> TapBridge:
    """A VM tap NIC's tap, bridged (`<prefix>-<bridge>`) with the host port the NIC names.

    Not made yet: create() makes it.

    Raises:
        ConfigError: the NIC is not a tap bridged with a host port.
    """
    if nic.kind != "tap" or nic.bridge is None:
        raise ConfigError(f"NIC {nic.id}: needs kind tap and the host port to bridge it with")
    return TapBridge(
        host.session,
        bridge=f"{host.prefix}-{bridge}",
        tap=f"{host.prefix}-{nic.id}"[:15],
        port=host.port(nic.bridge).interface,
        # only a virtual lab host's sysctls are the suite's to change
        quiet_netfilter=host.lab is not None,
        multi_queue=nic.queues > 1,
    )
