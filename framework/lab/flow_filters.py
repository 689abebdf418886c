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


# -- the ethtool command lines of chapter 3 ---------------------------------------------------


def ntuple_on(dev: str) -> list[str]:
    """3.1 step 3 / 3.2: `ethtool -K <dev> ntuple on`."""
    return ["ethtool", "-K", dev, "ntuple", "on"]


def list_rules(dev: str) -> list[str]:
    """`ethtool -n <dev>`: the rule count and the rules."""
    return ["ethtool", "-n", dev]


def delete_rule(dev: str, loc: int) -> list[str]:
    """`ethtool -N <dev> delete <loc>`."""
    return ["ethtool", "-N", dev, "delete", str(loc)]


def ixgbe_udp4_rule(dev: str, src_ip: str, dst_ip: str, action: int) -> list[str]:
    """3.1: a Flow Director rule for UDP/IPv4 from src_ip to dst_ip (action: ixgbe_action)."""
    return ["ethtool", "-N", dev, "flow-type", "udp4", "src-ip", src_ip, "dst-ip", dst_ip,
            "action", str(action)]  # fmt: skip


def i40e_l3_veb_rule(dev: str, dst_ip: str, user_def: int, queue: int, loc: int) -> list[str]:
    """3.2: an L3 VEB filter, by destination IPv4 address only."""
    return ["ethtool", "-N", dev, "flow-type", "ip4", "dst-ip", dst_ip,
            "user-def", hex(user_def), "action", str(queue), "loc", str(loc)]  # fmt: skip


ANY_MAC = "ff:ff:ff:ff:ff:ff"  # an ethtool mask of all ones: the field is not involved
EXACT = "00:00:00:00:00:00"  # a mask of zeros: the field is matched


def i40e_cloud_rule(
    dev: str,
    *,
    inner_mac: str,
    user_def: int,
    queue: int,
    loc: int,
    outer_mac: str | None = None,
    inner_vlan: int | None = None,
) -> list[str]:
    """3.2: a cloud filter. ethtool's dst MAC carries the outer MAC, its src the inner one.

    Without an outer MAC the dst field is masked out (ff:..), as the guide's examples do.
    """
    argv = ["ethtool", "-N", dev, "flow-type", "ether",
            "dst", outer_mac or EXACT, "m", EXACT if outer_mac else ANY_MAC,
            "src", inner_mac, "m", EXACT]  # fmt: skip
    if inner_vlan is not None:
        argv += ["vlan", str(inner_vlan)]
    return [*argv, "user-def", hex(user_def), "action", str(queue), "loc", str(loc)]


# ethtool's words for a command line it could not parse, as opposed to a driver's refusal.
_PARSE_ERRORS = ("bad command line", "unrecognized option", "invalid ", "Invalid ")


def parsed_by_ethtool(output: str) -> bool:
    """Whether ethtool parsed a command line (whatever the driver then said of it)."""
    return not any(word in output for word in _PARSE_ERRORS)
