"""The Rx checksum flags a DPDK port gave frames, against the frames as the TG captured them.

testpmd's `set verbose 1` prints each received packet's ol_flags (framework.dpdk.parsers
.RxPacket); with io forwarding the TG captures the same frames unchanged, so a flag can be
held against the checksum the frame really carries.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from scapy.packet import Packet

from framework.dpdk.parsers import RxPacket
from framework.traffic.packets import l4_checksum_ok
from framework.verify import VerifyFailed, verdict

# An mbuf's L4 Rx checksum state (RTE_MBUF_F_RX_L4_CKSUM_*, rte_mbuf_core.h): GOOD, the
# checksum in the packet is right; BAD, it is wrong; NONE, it is not right in the packet
# data but the integrity of the L4 data is verified; UNKNOWN, no information. GOOD and NONE
# are what a receiver takes as valid without checking the packet itself.
DEEMED_VALID = frozenset({"GOOD", "NONE"})
NOT_DEEMED_VALID = frozenset({"BAD", "UNKNOWN"})
_L4_CKSUM = re.compile(r"RTE_MBUF_F_RX_L4_CKSUM_(GOOD|BAD|NONE|UNKNOWN)\b")


def rx_l4_checksum(packet: RxPacket) -> str | None:
    """The L4 checksum state testpmd printed for a received packet (None: not printed)."""
    found = _L4_CKSUM.search(packet.ol_flags)
    return found.group(1) if found else None


@verdict
def verify_rx_checksums(
    received: Sequence[RxPacket], frames: Sequence[Packet], promise: str, *, flagged: Iterable[str]
) -> None:
    """Each frame a port received carries an L4 Rx checksum state of `flagged`.

    `received` is what testpmd printed for the port (`set verbose 1`), `frames` the same
    frames as the TG captured them after io forwarding (unchanged, in the same order): a
    frame flagged GOOD must have a right checksum there, so a wrong checksum marked good
    fails whatever `flagged` allows.
    """
    allowed = sorted(set(flagged))
    if len(received) != len(frames):
        raise VerifyFailed(
            f"{promise}; testpmd printed {len(received)} frame(s) received, the TG captured "
            f"{len(frames)}",
            seen="\n  ".join(f"{p.length} B: {p.ol_flags}" for p in received),
        )
    problems = []
    for i, (packet, frame) in enumerate(zip(received, frames, strict=True), 1):
        state = rx_l4_checksum(packet)
        right = l4_checksum_ok(frame)
        on_wire = {True: "right", False: "not right", None: "absent"}[right]
        label = f"frame {i} of {len(frames)} ({packet.length} B, its checksum {on_wire})"
        if packet.length != len(bytes(frame)):
            problems.append(f"{label}: the TG captured {len(bytes(frame))} B, not this frame")
        elif state not in allowed:
            problems.append(f"{label} flagged RTE_MBUF_F_RX_L4_CKSUM_{state}")
        elif state == "GOOD" and right is not True:
            problems.append(f"{label} flagged RTE_MBUF_F_RX_L4_CKSUM_GOOD")
    if problems:
        raise VerifyFailed(
            f"{promise}; {'; '.join(problems)}",
            expected=f"RTE_MBUF_F_RX_L4_CKSUM_ in {allowed}, GOOD only on a right checksum",
        )
