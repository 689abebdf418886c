"""Capture the testpmd outputs in this folder from DPDK 24.11, as scripts/dpdk-root makes it.

Run as root from the project root, after `scripts/setup --dpdk 24.11`:
    .venv/bin/python tests/data/testpmd-24.11/capture.py [BUILD_DIR]
(BUILD_DIR defaults to ~/.cache/howto-conformance/dpdk/24.11). Only what changed since 22.11
and what the parsers read of it: the bonding commands (renamed in 23.11) and their outputs,
a bond member's refusal, and `show port info` with the private info 23.03 added.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from framework.dpdk.testpmd import TestPmd
from framework.remote.session import LocalSession

HERE = Path(__file__).resolve().parent
BUILD = (
    Path(sys.argv[1]) if len(sys.argv) > 1 else Path.home() / ".cache/howto-conformance/dpdk/24.11"
)
EAL = ["-l", "0-1", "--in-memory", "--file-prefix", "hcbcap24", "--no-pci", "-m", "256"]
APP = ["--", "-i", "--total-num-mbufs", "8192"]
NULL_ARGV = [str(BUILD / "dpdk-testpmd"), *EAL, "--vdev", "net_null0", "--vdev", "net_null1", *APP]


def save(name: str, text: str) -> None:
    (HERE / f"{name}.txt").write_text(text)
    print(f"{name}.txt: {len(text)} bytes")


def run(steps: list[tuple[str | None, str]]) -> None:
    """One testpmd on two net_null ports: each command, its output saved under its name."""
    pmd = TestPmd.launch(LocalSession(), NULL_ARGV, check_startup=False)
    try:
        for name, command in steps:
            output = pmd.send_command(command, may_be_unparsed=True)
            if name is not None:
                save(name, output)
        pmd.quit()
    finally:
        pmd.close()


def main() -> None:
    (HERE / "version.txt").write_text((BUILD / "release").read_text())
    run([
        ("error_create_bonded_device", "create bonded device 1 0"),
        ("create_bonding_device", "create bonding device 1 0"),
        ("add_bonding_member", "add bonding member 0 2"),
        ("add_bonding_member_2", "add bonding member 1 2"),
        ("show_bonding_config_stopped", "show bonding config 2"),
        ("set_bonding_primary", "set bonding primary 1 2"),
        ("port_start_bond", "port start 2"),
        ("show_bonding_config_started", "show bonding config 2"),
        ("show_port_info_bond", "show port info 2"),
        ("error_port_stop_bond_member", "port stop 0"),
        ("remove_bonding_member", "remove bonding member 1 2"),
        ("show_bonding_config_removed", "show bonding config 2"),
        ("show_port_info_null", "show port info 1"),
    ])  # fmt: skip
    # mode 1 started without `set bonding primary`: the first member is the current primary
    run([
        (None, "create bonding device 1 0"),
        (None, "add bonding member 0 2"),
        (None, "add bonding member 1 2"),
        (None, "port start 2"),
        ("show_bonding_config_primary_unset", "show bonding config 2"),
    ])  # fmt: skip
    run([(None, "create bonding device 0 0"), ("show_bonding_config_mode0_empty",
          "show bonding config 2")])  # fmt: skip


if __name__ == "__main__":
    main()
