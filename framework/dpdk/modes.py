"""testpmd's modes by name: forwarding (`set fwd`, --forward-mode) and a VF's rxmode.

StrEnums: a member is the very string testpmd takes and prints, so it goes into a
command line as it is and compares equal to what a parser read back.
"""

from __future__ import annotations

from enum import StrEnum


class ForwardingMode(StrEnum):
    """`set fwd MODE` / `--forward-mode=MODE`, as testpmd 22.11 names them."""

    IO = "io"  # frames out unchanged (guide 4's host switch)
    MAC = "mac"  # source MAC the TX port's, destination its peer's
    MACSWAP = "macswap"  # source and destination MACs swapped (guides 4 and 6 in the guest)
    FLOWGEN = "flowgen"  # generates UDP flows, receives and drops
    RXONLY = "rxonly"  # receives and drops
    TXONLY = "txonly"  # generates frames, receives nothing
    CSUM = "csum"  # checksums computed in software or offloaded
    ICMPECHO = "icmpecho"  # answers ARP and ICMP echo requests
    IEEE1588 = "ieee1588"  # PTP timestamps (when built in)
    NOISY = "noisy"  # a VNF's memory and latency behaviour
    FIVE_TUPLE_SWAP = "5tswap"  # MACs, IPs and L4 ports swapped
    SHARED_RXQ = "shared-rxq"  # frames from a shared RX queue, per source port


class VfRxMode(StrEnum):
    """`set port P vf V rxmode MODE on|off` (ixgbe, guide 5.3.6): what a VF accepts."""

    AUPE = "AUPE"  # untagged frames
    ROPE = "ROPE"  # unicast frames whose address is in the PF's hash table (PFUTA)
    BAM = "BAM"  # broadcast
    MPE = "MPE"  # every multicast


# What a parameter taking a forwarding mode accepts until every caller passes a member:
# the scenarios and guides 1, 2, 4, 6 and 7 still pass testpmd's strings. Then this becomes
# ForwardingMode alone, and mypy names any string left.
ForwardingModeLike = ForwardingMode | str
