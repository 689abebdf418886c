"""Every ethtool line of guide 3 is parsed by this machine's ethtool.

On a veth (no ntuple filters) a well-formed line is refused by the driver ("Operation not
supported"), a malformed one by ethtool's own parser: the test tells them apart, so a
misspelt rule fails here rather than on a lab's NIC.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest

from framework.lab import flow_filters as ff
from tests.integration.netns import veth_in_namespace

NS = f"hcf-{os.getpid()}"
DEV = "hcf0"


@pytest.fixture
def veth() -> Iterator[str]:
    with veth_in_namespace(NS, DEV, "hcf1") as dev:
        yield dev


def ethtool(argv: list[str]) -> str:
    done = subprocess.run(["ip", "netns", "exec", NS, *argv], capture_output=True, text=True)
    return done.stdout + done.stderr


def test_the_guides_ethtool_lines_parse_and_a_misspelt_one_does_not(veth: str) -> None:
    lines = [
        ff.ntuple_on(veth),
        ff.ixgbe_udp4_rule(veth, "198.18.3.2", "198.18.3.3", ff.ixgbe_action(1, 0)),
        ff.i40e_l3_veb_rule(veth, "198.18.3.3", ff.i40e_user_def(0), 2, 8),
        ff.i40e_cloud_rule(veth, inner_mac="00:00:00:00:09:00", user_def=ff.i40e_user_def(3),
                           queue=6, loc=1),
        ff.i40e_cloud_rule(veth, outer_mac="68:05:ca:24:03:8b", inner_mac="c2:1a:e1:53:bc:57",
                           user_def=ff.i40e_user_def(3, 8), queue=2, loc=2),
        ff.i40e_cloud_rule(veth, inner_mac="00:00:00:00:20:00", inner_vlan=10,
                           user_def=ff.i40e_user_def(0, 8), queue=1, loc=5),
        ff.list_rules(veth),
        ff.delete_rule(veth, 5),
    ]  # fmt: skip
    for argv in lines:
        said = ethtool(argv)
        assert ff.parsed_by_ethtool(said), f"{' '.join(argv)}: ethtool could not parse it: {said}"
        assert "not supported" in said or "Could not change" in said, (
            f"{' '.join(argv)}: a veth refuses it (no ntuple filters): {said}"
        )
    misspelt = [a.replace("action", "acton") for a in lines[1]]
    assert not ff.parsed_by_ethtool(ethtool(misspelt)), "a misspelt rule is a parse error"
