"""Virtio-net feature bits, and the ones a DPDK virtio port negotiated.

The virtio PMD logs its negotiation at debug level (log type ``pmd.net.virtio.init``):
``guest_features before negotiate = <hex>``, ``host_features before negotiate = <hex>``,
``features after negotiate = <hex>``. It negotiates when the port is probed and again when
a port configuration asks for features it did not request before (e.g. LRO asks for
GUEST_TSO4/GUEST_TSO6), so the lines a command printed belong to the port it configured.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum

from framework.verify import VerifyFailed, verdict

# The virtio PMD's log type for feature negotiation, at the level that prints it.
NEGOTIATION_LOG_LEVEL = "pmd.net.virtio.init:debug"


class VirtioNetFeature(IntEnum):
    """Feature bit numbers of the virtio 1.x spec (network device and transport)."""

    CSUM = 0
    GUEST_CSUM = 1
    CTRL_GUEST_OFFLOADS = 2
    MTU = 3
    MAC = 5
    GUEST_TSO4 = 7
    GUEST_TSO6 = 8
    GUEST_ECN = 9
    GUEST_UFO = 10
    HOST_TSO4 = 11
    HOST_TSO6 = 12
    HOST_ECN = 13
    HOST_UFO = 14
    MRG_RXBUF = 15
    STATUS = 16
    CTRL_VQ = 17
    CTRL_RX = 18
    CTRL_VLAN = 19
    GUEST_ANNOUNCE = 21
    MQ = 22
    CTRL_MAC_ADDR = 23
    NOTIFY_ON_EMPTY = 24
    ANY_LAYOUT = 27
    RING_INDIRECT_DESC = 28
    RING_EVENT_IDX = 29
    VERSION_1 = 32
    ACCESS_PLATFORM = 33
    RING_PACKED = 34
    IN_ORDER = 35
    ORDER_PLATFORM = 36
    RSS = 60
    SPEED_DUPLEX = 63


@dataclass(frozen=True)
class Negotiation:
    """One feature negotiation of a virtio port, as the PMD logged it."""

    requested: int | None
    offered: int | None
    negotiated: int

    def has(self, feature: VirtioNetFeature) -> bool:
        """Whether the negotiated features include `feature`."""
        return bool(self.negotiated >> feature & 1)

    @property
    def names(self) -> list[str]:
        """The negotiated features by name (unknown bits as bit<N>)."""
        return feature_names(self.negotiated)


def feature_names(bits: int) -> list[str]:
    """Names of the set bits of a feature word, lowest bit first."""
    known = {f.value: f.name for f in VirtioNetFeature}
    return [known.get(n, f"bit{n}") for n in range(64) if bits >> n & 1]


_LINE = re.compile(
    r"(guest_features before negotiate|host_features before negotiate|"
    r"features after negotiate)\s*=\s*(?:0x)?([0-9a-fA-F]+)"
)


def negotiations(text: str) -> list[Negotiation]:
    """Every negotiation the PMD logged in `text`, in order."""
    found: list[Negotiation] = []
    requested = offered = None
    for what, value in _LINE.findall(text):
        bits = int(value, 16)
        if what.startswith("guest_features"):
            requested = bits
        elif what.startswith("host_features"):
            offered = bits
        else:
            found.append(Negotiation(requested, offered, bits))
            requested = offered = None
    return found


def _section(text: str, start: str, ends: tuple[str, ...]) -> str:
    at = text.find(start)
    if at < 0:
        return ""
    stops = [i for i in (text.find(end, at + len(start)) for end in ends) if i >= 0]
    return text[at : min(stops) if stops else len(text)]


def port_negotiation(startup: str, port: int, later: str = "") -> Negotiation | None:
    """A virtio_user port's last negotiation: in `later` output, else at startup.

    At startup testpmd configures ports in order ("Configuring Port N"), and a port
    renegotiates there only when its configuration asks for new features; otherwise its
    negotiation is the one logged when it was probed (a vdev: after virtio_user_pmd_probe).
    """
    for text in (
        later,
        _section(startup, f"Configuring Port {port} ", ("Configuring Port ", "testpmd>")),
        _section(startup, "virtio_user_pmd_probe", ("Probe PCI driver", "Interactive-mode")),
    ):
        found = negotiations(text)
        if found:
            return found[-1]
    return None


def vdev_queue_sizes(startup: str) -> list[int]:
    """Sizes of a virtio_user port's virtqueues (its queue_size), from its probe's log."""
    section = _section(startup, "virtio_user_pmd_probe", ("Probe PCI driver", "Interactive-mode"))
    return [int(n) for n in re.findall(r"vq_size: (\d+)", section)]


def verify_negotiated(
    negotiation: Negotiation | None,
    what: str,
    *,
    present: Iterable[VirtioNetFeature] = (),
    absent: Iterable[VirtioNetFeature] = (),
) -> None:
    """A virtio port negotiated every feature of `present` and none of `absent`.

    `negotiation` is its last one as the PMD logged it (None: nothing logged).
    """
    if negotiation is None:
        raise VerifyFailed(f"{what}; testpmd logged no virtio feature negotiation")
    problems = [f"VIRTIO_NET_F_{f.name} not negotiated" for f in present if not negotiation.has(f)]
    problems += [f"VIRTIO_NET_F_{f.name} negotiated" for f in absent if negotiation.has(f)]
    if problems:
        raise VerifyFailed(
            f"{what}; {'; '.join(problems)} (negotiated: {', '.join(negotiation.names)})"
        )


# virtio_user's queue_size when its devargs give none (DPDK's VIRTIO_USER_DEF_Q_SZ), the
# "256 by default" of the exceptional-path guide.
DEFAULT_QUEUE_SIZE = 256


@dataclass(frozen=True)
class RingBurst:
    """One burst from the NIC into the kernel through virtio_user: what each stage counted.

    Frames the NIC port received that virtio_user did not send on were dropped for want of
    a free descriptor in its virtqueue (testpmd's io forwarding drops what a port's Tx
    burst does not take).
    """

    queue_size: int | None  # virtio_user's virtqueue entries (its probe's log); None: unlogged
    sent: int  # frames the TG sent
    nic_rx: int  # frames the NIC port received (testpmd's counter)
    into_kernel: int  # frames virtio_user sent into the kernel (testpmd's counter)
    kernel_rx: int  # frames the tap received (the kernel's counter)

    @property
    def short(self) -> int:
        """Frames DPDK received from the NIC but had no virtio_user descriptor for."""
        return self.nic_rx - self.into_kernel

    def line(self) -> str:
        """One line: the ring and each stage's count."""
        return (
            f"queue_size {self.queue_size}: TG sent {self.sent}, NIC port received "
            f"{self.nic_rx}, virtio_user sent {self.into_kernel} into the kernel "
            f"({self.short} without a descriptor), the tap received {self.kernel_rx}"
        )


@verdict
def verify_descriptors_suffice(
    default: RingBurst, increased: RingBurst, promise: str, *, size: int
) -> None:
    """The same burst: the default ring ran short of descriptors, a `size` ring did not.

    Also judged: the default ring has DEFAULT_QUEUE_SIZE entries and the increased one
    `size`; the burst reached DPDK with more frames than the default ring holds (else it
    shows nothing); the kernel received what virtio_user sent it.
    """
    problems = []
    if default.queue_size != DEFAULT_QUEUE_SIZE:
        problems.append(
            f"the default ring has {default.queue_size} entries, expected {DEFAULT_QUEUE_SIZE}"
        )
    if increased.queue_size != size:
        problems.append(f"the queue_size={size} ring has {increased.queue_size} entries")
    if increased.nic_rx <= DEFAULT_QUEUE_SIZE:
        problems.append(
            f"the burst reached DPDK with {increased.nic_rx} frames, not more than "
            f"{DEFAULT_QUEUE_SIZE}: it shows no shortage"
        )
    if increased.short:
        problems.append(
            f"with queue_size={size}, {increased.short} of {increased.nic_rx} frames found "
            "no descriptor"
        )
    if default.short <= increased.short:
        problems.append(
            f"with the default ring {default.short} of {default.nic_rx} frames found no "
            f"descriptor, with queue_size={size} {increased.short}: no shortage avoided"
        )
    problems += [
        f"queue_size {b.queue_size}: virtio_user sent {b.into_kernel} frames into the kernel, "
        f"the tap received {b.kernel_rx}"
        for b in (default, increased)
        if b.kernel_rx != b.into_kernel
    ]
    if problems:
        raise VerifyFailed(
            f"{promise}; {'; '.join(problems)}",
            seen=f"{default.line()}\n  {increased.line()}",
        )
