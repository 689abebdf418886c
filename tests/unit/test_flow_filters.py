"""Guide 3's filter encodings against its formulas and its worked examples."""

from __future__ import annotations

import pytest

from framework.lab.flow_filters import (
    I40eTarget,
    IxgbeTarget,
    i40e_target,
    i40e_user_def,
    ixgbe_action,
    ixgbe_target,
)


@pytest.mark.parametrize("vf, queue", [(0, 0), (0, 3), (1, 0), (1, 7), (62, 1)])
def test_ixgbe_action_is_vf_plus_one_in_bits_39_32_and_the_queue_below(vf, queue) -> None:
    # 3.1: "$queue_index_in_VF0 = (0x1 & 0xFF) << 32 + [queue index]", VF1 with 0x2.
    action = ixgbe_action(queue, vf)
    assert action == ((vf + 1) & 0xFF) * 2**32 + queue
    assert action >> 32 == vf + 1 and action & 0xFFFFFFFF == queue
    assert ixgbe_target(action) == IxgbeTarget(vf, queue)


def test_the_guides_ixgbe_formula_means_a_sum_not_a_longer_shift() -> None:
    # Read with C or shell precedence, `x << 32 + q` shifts by 32 + q: for queue 1 it
    # would name VF id + 1 = 2 at queue 0, i.e. VF 1. The text ("the lower 32 bits
    # indicates the queue index") is what the driver reads; the helper follows the text.
    literal = (0x1 & 0xFF) << 32 + 1
    assert ixgbe_target(literal) == IxgbeTarget(1, 0)
    assert ixgbe_target(ixgbe_action(1, 0)) == IxgbeTarget(0, 1)


def test_ixgbe_pf_queue_and_limits() -> None:
    assert ixgbe_action(5) == 5 and ixgbe_target(5) == IxgbeTarget(None, 5)
    with pytest.raises(ValueError, match="VF id 255"):
        ixgbe_action(0, 255)
    with pytest.raises(ValueError, match="32 bits"):
        ixgbe_action(1 << 32, 0)


# 3.2's worked examples, two VFs created (`echo 2 > sriov_numvfs`): user-def -> target.
GUIDE_I40E = [
    ("L3 VEB, 192.168.50.108 to VF 0's queue 2", 0xFFFFFFFF00000000, I40eTarget(0, None)),
    ("inner mac to PF's queue 6", 0xFFFFFFFF00000003, I40eTarget(None, None)),
    ("inner mac + VNI 8 to PF's queue 4", 0x800000003, I40eTarget(None, 8)),
    ("outer + inner mac + VNI 8 to PF's queue 2", 0x800000003, I40eTarget(None, 8)),
    ("inner mac + inner vlan + VNI 8 to VF 0's queue 1", 0x800000000, I40eTarget(0, 8)),
    ("inner mac + inner vlan to VF 0's queue 1", 0xFFFFFFFF00000000, I40eTarget(0, None)),
]


@pytest.mark.parametrize("example, user_def, target", GUIDE_I40E, ids=[g[0] for g in GUIDE_I40E])
def test_i40e_user_def_matches_the_guides_examples(example, user_def, target) -> None:
    assert i40e_target(user_def, num_vfs=2) == target, example
    function = target.vf if target.vf is not None else 3  # the guide's PF: VF id 3 >= 2
    assert i40e_user_def(function, target.vni) == user_def, example


def test_i40e_limits() -> None:
    with pytest.raises(ValueError, match="24-bit"):
        i40e_user_def(0, 1 << 24)
    assert i40e_target(i40e_user_def(2), num_vfs=2) == I40eTarget(None, None), "vf id == max"


def test_rule_lines_are_the_guides() -> None:
    from framework.lab.flow_filters import (
        i40e_cloud_rule,
        i40e_l3_veb_rule,
        ixgbe_udp4_rule,
    )

    assert " ".join(ixgbe_udp4_rule("eth1", "192.0.2.2", "198.51.100.2", ixgbe_action(0, 0))) == (
        "ethtool -N eth1 flow-type udp4 src-ip 192.0.2.2 dst-ip 198.51.100.2 action 4294967296"
    )
    assert " ".join(i40e_l3_veb_rule("p", "192.168.50.108", i40e_user_def(0), 2, 8)) == (
        "ethtool -N p flow-type ip4 dst-ip 192.168.50.108 user-def 0xffffffff00000000 action 2 "
        "loc 8"
    )
    # Inner mac + VNI to the PF's queue 4; outer + inner mac + VNI to PF queue 2;
    # inner mac + inner vlan + VNI to VF 0's queue 1.
    assert " ".join(i40e_cloud_rule("p", inner_mac="00:00:00:00:09:00",
                                    user_def=i40e_user_def(3, 8), queue=4, loc=4)) == (
        "ethtool -N p flow-type ether dst 00:00:00:00:00:00 m ff:ff:ff:ff:ff:ff src "
        "00:00:00:00:09:00 m 00:00:00:00:00:00 user-def 0x800000003 action 4 loc 4"
    )  # fmt: skip
    assert " ".join(i40e_cloud_rule("p", outer_mac="68:05:ca:24:03:8b",
                                    inner_mac="c2:1a:e1:53:bc:57",
                                    user_def=i40e_user_def(3, 8), queue=2, loc=2)) == (
        "ethtool -N p flow-type ether dst 68:05:ca:24:03:8b m 00:00:00:00:00:00 src "
        "c2:1a:e1:53:bc:57 m 00:00:00:00:00:00 user-def 0x800000003 action 2 loc 2"
    )  # fmt: skip
    assert " ".join(i40e_cloud_rule("p", inner_mac="00:00:00:00:20:00", inner_vlan=10,
                                    user_def=i40e_user_def(0, 8), queue=1, loc=5)).endswith(
        "src 00:00:00:00:20:00 m 00:00:00:00:00:00 vlan 10 user-def 0x800000000 action 1 loc 5"
    )  # fmt: skip
