"""Guide 3's ethtool filter encodings: where a flow goes, as ixgbe and i40e read it.

ixgbe (3.1, Flow Director): `ethtool -N <pf> flow-type udp4 ... action A`, where bits
39:32 of A are the VF id + 1 (0: the PF itself) and the lower 32 bits the queue index
in that function.

i40e (3.2, cloud filters and L3 VEB): `... user-def U action Q`, where the upper 32 bits
of U are 0xffffffff for an L3 VEB filter (or a cloud filter without a tenant id), else
the VNI; the lower 32 bits are the VF id, and a VF id >= the PF's VF count means the PF's
own queues; Q is the queue in that function.
"""

from __future__ import annotations

from dataclasses import dataclass

NO_VNI = 0xFFFFFFFF
_U32 = 0xFFFFFFFF


def ixgbe_action(queue: int, vf: int | None = None) -> int:
    """The ixgbe `action` for `queue` of VF `vf` (None: the PF's queue)."""
    if not 0 <= queue <= _U32:
        raise ValueError(f"queue index {queue} does not fit in 32 bits")
    if vf is None:
        return queue
    if not 0 <= vf <= 0xFE:
        raise ValueError(f"VF id {vf} does not fit bits 39:32 as VF id + 1")
    return ((vf + 1) & 0xFF) << 32 | queue


@dataclass(frozen=True)
class IxgbeTarget:
    """Where an ixgbe `action` sends a flow."""

    vf: int | None  # None: the PF
    queue: int


def ixgbe_target(action: int) -> IxgbeTarget:
    """Decode an ixgbe `action` (the inverse of ixgbe_action)."""
    function = (action >> 32) & 0xFF
    return IxgbeTarget(function - 1 if function else None, action & _U32)


def i40e_user_def(function: int, vni: int | None = None) -> int:
    """The i40e `user-def` for a VF id (or, at >= the VF count, the PF) and optional VNI."""
    if not 0 <= function <= _U32:
        raise ValueError(f"function id {function} does not fit in 32 bits")
    if vni is not None and not 0 <= vni < 1 << 24:
        raise ValueError(f"VNI {vni} is not a 24-bit VXLAN network identifier")
    return (NO_VNI if vni is None else vni) << 32 | function


@dataclass(frozen=True)
class I40eTarget:
    """Where an i40e `user-def` sends a flow, and with which tenant id."""

    vf: int | None  # None: the PF's queues
    vni: int | None  # None: 0xffffffff (L3 VEB, or no tenant id)


def i40e_target(user_def: int, num_vfs: int) -> I40eTarget:
    """Decode an i40e `user-def` on a PF with `num_vfs` VFs."""
    upper, lower = user_def >> 32 & _U32, user_def & _U32
    return I40eTarget(lower if lower < num_vfs else None, None if upper == NO_VNI else upper)
