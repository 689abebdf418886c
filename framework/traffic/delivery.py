"""Where frames sent toward a VF ended up, and the verdicts guides 3 and 5 draw from it.

The TG sends marked, sequenced frames toward a VF; a Delivery holds what came back to the
TG port (the frames themselves) and what the DUT's own counters say (the PF's and each
VF port's packets). The verify_* functions here judge one Delivery against what a guide
promised and raise VerifyFailed that says the promise, the expected and the seen; a
check that is not about frames is framework.verify.verify. They are pure: unit tests feed
them captures built with scapy, and in a --plan run they record their promise instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Packet

from framework.dpdk.parsers import RxPacket
from framework.traffic.generator import CapturedFrame
from framework.traffic.packets import DEFAULT_MARKER, payload_seq
from framework.traffic.verify import ranges
from framework.verify import VerifyFailed, verdict


@dataclass
class Delivery:
    """Frames the TG sent, the ones that came back to it, and the DUT's counters meanwhile.

    Attributes:
        sent: the frames the TG sent, in order.
        at_tg: frames carrying the marker that the TG port captured.
        pf_rx: packets the PF's DPDK port received (None: the PF is the kernel's).
        vf_rx: packets each VF testpmd port received, by port id.
        vf_tx: packets each VF testpmd port sent, by port id.
        queues: packets each VF port received per queue, by (port, queue).
    """

    sent: list[Packet]
    at_tg: list[CapturedFrame]
    pf_rx: int | None = None
    vf_rx: dict[int, int] = field(default_factory=dict)
    vf_tx: dict[int, int] = field(default_factory=dict)
    queues: dict[tuple[int, int], int] = field(default_factory=dict)
    marker: bytes = DEFAULT_MARKER

    @property
    def sent_seqs(self) -> list[int]:
        """Sequence numbers of the frames sent."""
        return [s for s in (payload_seq(p, self.marker) for p in self.sent) if s is not None]

    @property
    def back_seqs(self) -> list[int]:
        """Sequence numbers (of frames this run sent) seen back at the TG, with repeats."""
        sent = set(self.sent_seqs)
        seqs = (payload_seq(f.raw, self.marker) for f in self.at_tg)
        return [s for s in seqs if s in sent]

    @property
    def back(self) -> int:
        """How many of the frames sent came back to the TG (each counted once)."""
        return len(set(self.back_seqs))

    def summary(self) -> str:
        """One line: sent, back at the TG, and the counters."""
        parts = [f"TG sent {len(self.sent)}, got back {self.back}"]
        if self.pf_rx is not None:
            parts.append(f"PF rx {self.pf_rx}")
        parts += [f"VF port {p} rx {n}" for p, n in sorted(self.vf_rx.items())]
        parts += [f"VF port {p} tx {n}" for p, n in sorted(self.vf_tx.items())]
        return ", ".join(parts)


def _fail(promise: str, expected: str, seen: str, delivery: Delivery) -> VerifyFailed:
    return VerifyFailed(promise, expected=expected, seen=f"{seen}\n  ({delivery.summary()})")


@verdict
def verify_back(delivery: Delivery, promise: str, *, minimum: int | None = None) -> None:
    """Every frame sent came back to the TG (or at least `minimum` of them)."""
    want = len(delivery.sent) if minimum is None else minimum
    if delivery.back < want:
        missing = sorted(set(delivery.sent_seqs) - set(delivery.back_seqs))
        raise _fail(
            promise,
            f"{want} of {len(delivery.sent)} frames back at the TG",
            f"{delivery.back}; missing seq {ranges(missing)}",
            delivery,
        )


@verdict
def verify_none_back(delivery: Delivery, promise: str) -> None:
    """No frame sent came back to the TG."""
    if delivery.back:
        raise _fail(
            promise,
            "no frame back at the TG",
            f"{delivery.back} back: seq {ranges(sorted(set(delivery.back_seqs)))}",
            delivery,
        )


@verdict
def verify_counter(
    delivery: Delivery, counter: str, promise: str, *, equals: int | None = None,
    at_least: int | None = None, at_most: int | None = None,
) -> None:  # fmt: skip
    """A DUT counter ("pf_rx", "vf_rx[0]", "vf_tx[1]", "queue[0,2]") is as promised."""
    seen = counter_value(delivery, counter)
    bounds = [
        (equals is not None and seen != equals, f"{counter} == {equals}"),
        (at_least is not None and seen < at_least, f"{counter} >= {at_least}"),
        (at_most is not None and seen > at_most, f"{counter} <= {at_most}"),
    ]
    for broken, expected in bounds:
        if broken:
            raise _fail(promise, expected, f"{counter} = {seen}", delivery)


def counter_value(delivery: Delivery, counter: str) -> int:
    """The value of a counter named as verify_counter names it (0 when not read)."""
    if counter == "pf_rx":
        return delivery.pf_rx or 0
    name, _, index = counter.partition("[")
    keys = [int(k) for k in index.rstrip("]").split(",")] if index else []
    if name == "vf_rx" and len(keys) == 1:
        return delivery.vf_rx.get(keys[0], 0)
    if name == "vf_tx" and len(keys) == 1:
        return delivery.vf_tx.get(keys[0], 0)
    if name == "queue" and len(keys) == 2:
        return delivery.queues.get((keys[0], keys[1]), 0)
    raise ValueError(f"no counter {counter!r}: pf_rx, vf_rx[P], vf_tx[P] or queue[P,Q]")


def vlan_ids(frames: Sequence[CapturedFrame | Packet | bytes]) -> list[int | None]:
    """The outer VLAN id of each frame; None for an untagged one."""
    ids: list[int | None] = []
    for frame in frames:
        raw = frame.raw if isinstance(frame, CapturedFrame) else bytes(frame)
        pkt = Ether(raw)
        ids.append(pkt[Dot1Q].vlan if pkt.haslayer(Dot1Q) else None)
    return ids


@verdict
def verify_vlan(delivery: Delivery, vlan: int | None, promise: str) -> None:
    """Every frame back at the TG carries VLAN tag `vlan` (None: no tag at all)."""
    ours = [f for f in delivery.at_tg if payload_seq(f.raw, delivery.marker) is not None]
    seen = vlan_ids(ours)
    wrong = [v for v in seen if v != vlan]
    if not ours or wrong:
        tally = ", ".join(
            f"{seen.count(v)} x {'untagged' if v is None else f'VLAN {v}'}"
            for v in dict.fromkeys(seen)
        )
        expected = "untagged" if vlan is None else f"tagged VLAN {vlan}"
        raise _fail(promise, f"every frame back {expected}", tally or "no frame back", delivery)


@verdict
def verify_source(delivery: Delivery, mac: str, promise: str) -> None:
    """Every frame back at the TG has source MAC `mac`."""
    sources = [Ether(f.raw).src.lower() for f in delivery.at_tg]
    wrong = sorted({s for s in sources if s != mac.lower()})
    if not sources or wrong:
        raise _fail(promise, f"source {mac.lower()}", ", ".join(wrong) or "no frame back", delivery)


def rate_mbps(frames: int, frame_bytes: int, seconds: float) -> float:
    """The layer-2 rate of `frames` frames of `frame_bytes` (with FCS) over `seconds`."""
    return frames * frame_bytes * 8 / seconds / 1e6


@verdict
def verify_rate(measured_mbps: float, limit_mbps: float, tolerance: float, promise: str) -> None:
    """A measured rate is the limit within tolerance (a fraction of the limit)."""
    low, high = limit_mbps * (1 - tolerance), limit_mbps * (1 + tolerance)
    if not low <= measured_mbps <= high:
        raise VerifyFailed(
            promise,
            expected=f"{limit_mbps:g} Mbit/s +- {tolerance:.0%} ({low:.1f}..{high:.1f})",
            seen=f"{measured_mbps:.1f} Mbit/s",
        )


@verdict
def verify_shares(
    measured: Mapping[int, float], shares: Mapping[int, float], tolerance: float, promise: str
) -> None:
    """Each class's part of the total measured rate is its share within tolerance.

    Shares are fractions (summing to 1); tolerance is absolute, in the same fraction.
    """
    total = sum(measured.values())
    if total <= 0:
        raise VerifyFailed(promise, expected="traffic in every class", seen="none")
    parts = {tc: measured.get(tc, 0.0) / total for tc in shares}
    off = {tc: p for tc, p in parts.items() if abs(p - shares[tc]) > tolerance}
    if off:
        seen = (f"TC{tc} {p:.1%} ({measured.get(tc, 0):.1f} Mbit/s)" for tc, p in parts.items())
        expected = ", ".join(f"TC{tc} {s:.0%}" for tc, s in shares.items())
        raise VerifyFailed(
            promise, expected=f"shares {expected} (+- {tolerance:.0%})", seen=", ".join(seen)
        )


@verdict
def verify_received(
    packets: Sequence[RxPacket], promise: str, *, port: int, queue: int, count: int,
    vni: int | None = None, tunnel: bool | None = None,
) -> None:  # fmt: skip
    """Testpmd's verbose lines show `count` packets on `port`/`queue` (with VNI, as a tunnel).

    Packets on other ports or queues are what the rule was meant to keep away: their
    number is in the message.
    """
    here = [p for p in packets if (p.port, p.queue) == (port, queue)]
    problems = []
    if len(here) != count:
        elsewhere = sorted({(p.port, p.queue) for p in packets} - {(port, queue)})
        problems.append(
            f"{len(here)} on port {port} queue {queue}"
            + (f"; others on (port, queue) {elsewhere}" if elsewhere else "")
        )
    if vni is not None and any(p.vni != vni for p in here):
        problems.append(f"VNI {sorted({p.vni for p in here}, key=str)}")
    if tunnel is not None and any(p.tunnel != tunnel for p in here):
        problems.append(f"hw ptype {sorted({p.hw_ptype or '(none)' for p in here})}")
    if problems:
        want = f"{count} packets on port {port} queue {queue}"
        if vni is not None:
            want += f", VNI {vni}"
        if tunnel:
            want += ", typed as a tunnel by the NIC"
        raise VerifyFailed(promise, expected=want, seen="; ".join(problems))
