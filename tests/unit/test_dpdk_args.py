"""Version parsing, version-aware argv building and guide-line translation."""

from __future__ import annotations

import pytest

from framework.dpdk.args import (
    EalOptions,
    TestPmdOptions,
    bonding_member_word,
    testpmd_argv,
    translate_guide_command,
    translate_testpmd_command,
)
from framework.dpdk.version import DpdkVersion

V17_05, V20_11, V22_11, V23_11 = (
    DpdkVersion.parse(v) for v in ("17.05", "20.11", "22.11", "23.11")
)
BIN = "/usr/bin/dpdk-testpmd"

# Guide 7 (virtio_user as exceptional path), verbatim with its trailing "\  ".
GUIDE7 = (
    "$(testpmd) -l 2-3 -n 4 \\  \n"
    "--vdev=virtio_user0,path=/dev/vhost-net,queue_size=1024 \\  \n"
    "-- -i --txqflags=0x0 --disable-hw-vlan --enable-lro \\  \n"
    "--enable-rx-cksum --rxd=1024 --txd=1024"
)
# Guide 3 (flow bifurcation): -w placed after "--".
GUIDE3 = "testpmd -l 0-7 -n 4 -- -i -w 01:10.0 -w 01:10.1 --forward-mode=mac"
# Guide 6 (container): testpmd inside docker run.
GUIDE6 = (
    "docker run -i -t -v /tmp/sock0:/var/run/usvhost \\\n"
    "-v /dev/hugepages:/dev/hugepages \\\n"
    "dpdk-app-testpmd testpmd -l 6-7 -n 4 -m 1024 --no-pci \\\n"
    "--vdev=virtio_user0,path=/var/run/usvhost \\\n"
    "--file-prefix=container \\\n"
    "-- -i --txqflags=0xf00 --disable-hw-vlan"
)


# ---------------------------------------------------------------- DpdkVersion


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("22.11.11", DpdkVersion(22, 11, 11)),
        ("DPDK 17.05.0", DpdkVersion(17, 5, 0)),
        ("23.11", DpdkVersion(23, 11, 0)),
        ("EAL: RTE Version: 'DPDK 22.11.11'", DpdkVersion(22, 11, 11)),
        ("v20.11.3\n", DpdkVersion(20, 11, 3)),
    ],
)
def test_version_parse(text: str, expected: DpdkVersion) -> None:
    assert DpdkVersion.parse(text) == expected


def test_version_order_and_str() -> None:
    assert V17_05 < V20_11 < V22_11 < DpdkVersion(22, 11, 11) < V23_11
    assert str(DpdkVersion(17, 5)) == "17.05.0"
    assert V22_11.at_least("20.11") and not V17_05.at_least("20.11")
    with pytest.raises(ValueError, match="not a DPDK version"):
        DpdkVersion.parse("testpmd")


# ---------------------------------------------------------------- testpmd_argv


def _options() -> tuple[EalOptions, TestPmdOptions]:
    eal = EalOptions(
        lcores="0-1",
        memory_channels=4,
        memory_mb=256,
        file_prefix="x",
        no_pci=True,
        allow=["0000:05:00.0"],
        vdevs=["net_null0"],
        in_memory=True,
    )
    app = TestPmdOptions(
        rxq=1,
        txq=1,
        total_num_mbufs=8192,
        forward_mode="io",
        txqflags="0xf00",
        disable_hw_vlan=True,
    )
    return eal, app


def test_argv_22_11_uses_allow_and_drops_legacy() -> None:
    eal, app = _options()
    changes: list[str] = []
    argv = testpmd_argv(BIN, eal, app, V22_11, changes)
    assert argv == [
        BIN,
        "-l",
        "0-1",
        "-n",
        "4",
        "-m",
        "256",
        "--file-prefix",
        "x",
        "--no-pci",
        "-a",
        "0000:05:00.0",
        "--vdev",
        "net_null0",
        "--in-memory",
        "--",
        "-i",
        "--rxq=1",
        "--txq=1",
        "--total-num-mbufs=8192",
        "--forward-mode=io",
    ]
    assert any(c.startswith("--txqflags=0xf00 dropped (removed in 18.08") for c in changes)
    assert any(c.startswith("--disable-hw-vlan dropped (removed in 18.02") for c in changes)


def test_argv_17_05_keeps_legacy_and_whitelist() -> None:
    eal, app = _options()
    argv = testpmd_argv(BIN, eal, app, V17_05)
    assert argv[argv.index("0000:05:00.0") - 1] == "-w"
    assert "--txqflags=0xf00" in argv and "--disable-hw-vlan" in argv


def test_argv_20_11_switches_to_allow() -> None:
    eal, app = _options()
    argv = testpmd_argv(BIN, eal, app, V20_11)
    assert "-a" in argv and "-w" not in argv


# ---------------------------------------------------------------- guide command lines


def test_guide7_on_22_11() -> None:
    t = translate_guide_command(GUIDE7, V22_11)
    assert t.argv == [
        BIN,
        "-l",
        "2-3",
        "-n",
        "4",
        "--vdev=virtio_user0,path=/dev/vhost-net,queue_size=1024",
        "--",
        "-i",
        "--enable-lro",
        "--enable-rx-cksum",
        "--rxd=1024",
        "--txd=1024",
    ]
    assert t.changes == [
        f"$(testpmd) -> {BIN} (the installed binary)",
        "--txqflags=0x0 dropped (removed in 18.08: Tx offloads are now requested per offload)",
        "--disable-hw-vlan dropped (removed in 18.02: VLAN offloads are off by default)",
    ]
    assert t.original == GUIDE7


def test_guide7_on_17_05_keeps_everything() -> None:
    t = translate_guide_command(GUIDE7, V17_05)
    assert "--txqflags=0x0" in t.argv and "--disable-hw-vlan" in t.argv
    assert t.changes == [f"$(testpmd) -> {BIN} (the installed binary)"]


@pytest.mark.parametrize(("version", "flag"), [(V17_05, "-w"), (V20_11, "-a"), (V23_11, "-a")])
def test_guide3_moves_whitelist_to_eal(version: DpdkVersion, flag: str) -> None:
    t = translate_guide_command(GUIDE3, version)
    cut = t.argv.index("--")
    assert t.argv[:cut] == [BIN, "-l", "0-7", "-n", "4", flag, "01:10.0", flag, "01:10.1"]
    assert t.argv[cut:] == ["--", "-i", "--forward-mode=mac"]
    assert any("moved before `--`" in c for c in t.changes)
    assert any("renamed in 20.11" in c for c in t.changes) == (flag == "-a")


def test_eal_whitelist_renamed_on_20_11() -> None:
    t = translate_guide_command("testpmd -l 0-1 -w 0000:05:00.0 -- -i", V20_11)
    assert t.argv == [BIN, "-l", "0-1", "-a", "0000:05:00.0", "--", "-i"]
    assert "-w 0000:05:00.0 -> -a 0000:05:00.0 (renamed in 20.11)" in t.changes


def test_guide6_docker_wrapper_kept_apart() -> None:
    t = translate_guide_command(GUIDE6, V22_11)
    assert t.wrapper[:2] == ["docker", "run"] and t.wrapper[-1] == "dpdk-app-testpmd"
    assert t.argv[0] == BIN and "--file-prefix=container" in t.argv
    assert t.argv[t.argv.index("--") :] == ["--", "-i"]
    assert t.changes[0].startswith("wrapper `docker run")


@pytest.mark.parametrize(
    "binary",
    [
        "./x86_64-native-linuxapp-gcc/app/testpmd",
        "/root/dpdk/x86_64-default-linuxapp-gcc/app/testpmd",
        "$RTE_SDK/install/bin/testpmd",
        "testpmd",
        "$(testpmd)",
    ],
)
def test_guide_binary_spellings(binary: str) -> None:
    t = translate_guide_command(f"{binary} -l 0-3 -n 4 --socket-mem 350 -- -i", V22_11)
    assert t.argv == [BIN, "-l", "0-3", "-n", "4", "--socket-mem", "350", "--", "-i"]
    assert t.changes == [f"{binary} -> {BIN} (the installed binary)"]


def test_guide_burst_abbreviation_and_vlan_filter() -> None:
    # Guide 2's run_testpmd_in_vm.sh.
    line = (
        "/root/dpdk/x86_64-default-linuxapp-gcc/app/testpmd -l 0-5 -n 4 --socket-mem 350 "
        "-- --burst=64 --i --disable-hw-vlan-filter"
    )
    t = translate_guide_command(line, V22_11)
    assert t.argv[t.argv.index("--") :] == ["--", "--burst=64", "-i"]
    assert "--i -> -i (abbreviation spelled out)" in t.changes
    assert any(c.startswith("--disable-hw-vlan-filter dropped") for c in t.changes)


def test_command_without_testpmd_is_rejected() -> None:
    with pytest.raises(ValueError, match="no testpmd binary"):
        translate_guide_command("qemu-system-x86_64 -m 1G", V22_11)


# ---------------------------------------------------------------- interactive commands


@pytest.mark.parametrize(
    ("version", "command", "expected"),
    [
        (V22_11, "add bonding slave 1 3", "add bonding slave 1 3"),
        (V23_11, "add bonding slave 1 3", "add bonding member 1 3"),
        (V23_11, "remove bonding slave 0 2", "remove bonding member 0 2"),
        (V17_05, "add bonding member 1 3", "add bonding slave 1 3"),
        (V23_11, "show bonding config 2", "show bonding config 2"),
        (V23_11, "set bonding primary 1 2", "set bonding primary 1 2"),
        (V22_11, "create bonded device 1 0", "create bonded device 1 0"),
        (V23_11, "create bonded device 1 0", "create bonding device 1 0"),
        (V17_05, "create bonding device 1 0", "create bonded device 1 0"),
    ],
)
def test_bonding_member_spelling(version: DpdkVersion, command: str, expected: str) -> None:
    t = translate_testpmd_command(command, version)
    assert t.command == expected
    assert t.changed == (command != expected)
    assert bool(t.changes) == (command != expected)


def test_member_word_by_version() -> None:
    assert [bonding_member_word(v) for v in (V17_05, V22_11, V23_11)] == [
        "slave",
        "slave",
        "member",
    ]


def test_set_all_queues_drop_needs_port() -> None:
    missing = translate_testpmd_command("set all queues drop on", V22_11)
    assert missing.command == "set all queues drop on"
    assert "needs a port id" in missing.changes[0]
    fixed = translate_testpmd_command("set all queues drop off", V22_11, port=0)
    assert fixed.command == "set all queues drop 0 off"


def test_port_close_note_from_20_11() -> None:
    assert "port detach" in translate_testpmd_command("port close 1", V22_11).changes[0]
    assert translate_testpmd_command("port close 1", V17_05).changes == []
