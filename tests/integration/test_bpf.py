"""eBPF filters from framework.dpdk.bpf loaded into the real dpdk-testpmd with bpf-load,
judged by real frames: a private namespace howto-bpf-<pid> holds two veth pairs (tg0-dut0,
tg1-dut1); testpmd drives dut0/dut1 as af_packet ports 0/1 and the traffic agent sends
and receives on tg0/tg1.

What testpmd 22.11 shows (measured here): port RX counters (`show port stats`, the
forward statistics' port RX-packets) count what the PMD received, before an RX filter
runs, so they read 200 for 200 sent whatever the filter dropped. What a filter kept shows
downstream: forwarded to port 1 (its TX-packets, and the stream at tg1) or, in rxonly,
in the verbose dump, whose callback runs after the filter when `set verbose` follows
bpf-load. On TX a rejected packet is counted as TX-dropped."""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from framework.dpdk import TestPmd, bpf, detect_dpdk_version
from framework.errors import TestPmdError
from framework.remote.session import LocalSession
from framework.traffic.generator import TrafficGenerator
from framework.traffic.packets import udp_flow

BINARY = "/usr/bin/dpdk-testpmd"
NS = f"howto-bpf-{os.getpid()}"
PREFIX = f"howtobpf{os.getpid()}"
TG0, TG1 = f"{NS}:tg0", f"{NS}:tg1"
IP0, IP1 = "198.18.0.1", "198.18.0.2"
MAC_A, MAC_B = "02:00:00:00:0a:01", "02:00:00:00:0b:01"
SEQ_AT = 14 + 20 + 8 + 5  # the stream's sequence number in an untagged IPv4/UDP frame

pytestmark = [
    pytest.mark.skipif(not os.path.exists(BINARY), reason=f"{BINARY} is not installed"),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: namespaces, raw sockets, hugepages"),
]


def run(*argv: str, check: bool = True) -> str:
    done = subprocess.run(argv, capture_output=True, text=True)
    if check and done.returncode:
        raise RuntimeError(f"`{' '.join(argv)}` failed: {done.stderr.strip()}")
    return done.stdout


def leftovers() -> list[str]:
    found = [p.name for p in Path("/dev/hugepages").glob(f"{PREFIX}map_*")]
    found += [str(p) for p in (Path("/run/dpdk") / PREFIX, Path("/run/netns") / NS) if p.exists()]
    return found


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestPmd, TrafficGenerator]]:
    tmp = tmp_path_factory.mktemp("bpf")
    run("ip", "netns", "add", NS)
    pmd = None
    try:
        # no IPv6: router solicitations and MLD reports would add frames to the counts
        for conf in ("all", "default"):
            run("ip", "netns", "exec", NS, "sysctl", "-qw", f"net.ipv6.conf.{conf}.disable_ipv6=1")
        for k in (0, 1):
            run("ip", "-n", NS, "link", "add", f"tg{k}", "type", "veth", "peer", "name", f"dut{k}")
            for ifname in (f"tg{k}", f"dut{k}"):
                run("ip", "-n", NS, "link", "set", ifname, "up")
        session = LocalSession()
        version = detect_dpdk_version(session, BINARY)
        argv = ["ip", "netns", "exec", NS, BINARY, "-l", "0-1", "--file-prefix", PREFIX,
                "--no-pci", "-m", "256", "--in-memory",
                "--vdev", "net_af_packet0,iface=dut0", "--vdev", "net_af_packet1,iface=dut1",
                "--", "-i", "--total-num-mbufs", "8192"]  # fmt: skip
        pmd = TestPmd.launch(session, argv, name="testpmd-bpf", version=version)
        yield pmd, TrafficGenerator(session, agent_dir=str(tmp / "agent"))
    finally:
        if pmd is not None:
            pmd.close()
        run("ip", "netns", "delete", NS, check=False)
    assert not leftovers()


@pytest.fixture
def pmd(lab: tuple[TestPmd, TrafficGenerator]) -> Iterator[TestPmd]:
    pmd = lab[0]
    yield pmd
    # every test leaves testpmd as it found it: no filter, not forwarding, quiet
    for direction, port in (("rx", 0), ("tx", 1)):
        pmd.bpf_unload(direction, port, 0)
    pmd.send_command("stop")
    pmd.command("set verbose 0")
    pmd.clear_port_stats("all")


@pytest.fixture
def tg(lab: tuple[TestPmd, TrafficGenerator]) -> TrafficGenerator:
    return lab[1]


def elf(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def stream_template(tg: TrafficGenerator) -> bytes:
    return bytes(udp_flow(tg.mac_of(TG0), tg.mac_of(TG1), IP0, IP1, 10000, 20000, seq=0))


@pytest.mark.parametrize("flags", ["JM", "M"], ids=["jit", "interpreter"])
def test_drop_every_nth_on_rx_loses_exactly_the_multiples(
    pmd: TestPmd, tg: TrafficGenerator, tmp_path: Path, flags: str
) -> None:
    pmd.set_fwd("io")
    pmd.clear_port_stats("all")
    pmd.start()
    # loaded while the port is started and forwarding: no stop needed
    pmd.bpf_load("rx", 0, 0, elf(tmp_path, "nth.o", bpf.drop_every_nth(SEQ_AT, 50)), flags)
    result = tg.stream(TG0, stream_template(tg), TG1, pps=2000, count=200)
    fwd = pmd.stop()
    print(f"\n{result.summary()}\nport 0 {fwd.ports[0]}\nport 1 {fwd.ports[1]}")
    assert (result.sent, result.received, result.duplicated) == (200, 196, 0)
    assert list(result.lost_seqs) == [0, 50, 100, 150] and result.lost == 4
    # the PMD counted all 200; what the filter kept is what port 1 sent
    assert pmd.show_port_stats(0).rx_packets == fwd.ports[0].rx_packets == 200
    assert fwd.ports[1].tx_packets == 196 and fwd.ports[1].tx_dropped == 0


def test_alter_every_nth_damages_exactly_the_multiples_and_the_stream_names_them(
    pmd: TestPmd, tg: TrafficGenerator, tmp_path: Path
) -> None:
    pmd.set_fwd("io")
    pmd.start()
    fill_at = SEQ_AT + 12 + 3  # a byte of the fill behind the stream's stamp
    program = bpf.alter_every_nth(SEQ_AT, 50, 7, fill_at, 0x5A)
    pmd.bpf_load("rx", 0, 0, elf(tmp_path, "alter.o", program))
    result = tg.stream(TG0, stream_template(tg), TG1, pps=2000, count=200)
    pmd.stop()
    print(f"\n{result.summary()}\n{result.describe_altered()}")
    assert (result.sent, result.received, result.lost) == (200, 200, 0)
    assert result.altered == 4
    assert [a.seq for a in result.altered_frames] == [7, 57, 107, 157]
    assert {a.offset for a in result.altered_frames} == {fill_at}
    first = result.altered_frames[0]
    assert first.seen is not None and first.expected is not None
    assert first.seen[fill_at] == first.expected[fill_at] ^ 0x5A


def test_drop_every_nth_on_tx_counts_the_drops(
    pmd: TestPmd, tg: TrafficGenerator, tmp_path: Path
) -> None:
    pmd.set_fwd("io")
    pmd.clear_port_stats("all")
    pmd.bpf_load("tx", 1, 0, elf(tmp_path, "nth7.o", bpf.drop_every_nth(SEQ_AT, 7, phase=3)))
    pmd.start()
    result = tg.stream(TG0, stream_template(tg), TG1, pps=2000, count=200)
    fwd = pmd.stop()
    expected = [s for s in range(200) if s % 7 == 3]
    print(f"\n{result.summary()}\nport 1 {fwd.ports[1]}")
    assert list(result.lost_seqs) == expected and result.received == 200 - len(expected)
    assert fwd.ports[0].rx_packets == 200
    assert (fwd.ports[1].tx_packets, fwd.ports[1].tx_dropped) == (200 - len(expected), 29)


def rx_dump(pmd: TestPmd, tg: TrafficGenerator, frames: list[bytes]) -> tuple[int, list[str]]:
    """Send frames to port 0 in rxonly with verbose on; return (packets the dump saw, their
    source MACs). The dump is an RX callback too: set after bpf-load, it runs after it."""
    pmd.set_fwd("rxonly")
    pmd.clear_port_stats("all")
    pmd.command("set verbose 1")
    pmd.start()
    mark = len(pmd.shell.transcript)
    tg.exchange(TG0, frames, [], timeout=0.3)
    time.sleep(0.5)  # a veth delivers at once; give the lcore time to print
    pmd.stop()
    assert pmd.show_port_stats(0).rx_packets == len(frames)  # before the filter
    dump = pmd.shell.transcript[mark:]
    seen = sum(int(n) for n in re.findall(r"port 0/queue 0: received (\d+) packets", dump))
    return seen, [m.lower() for m in re.findall(r"\bsrc=([0-9A-Fa-f:]{17}) - dst=", dump)]


def test_keep_only_from_keeps_one_source_mac(
    pmd: TestPmd, tg: TrafficGenerator, tmp_path: Path
) -> None:
    pmd.bpf_load("rx", 0, 0, elf(tmp_path, "mac.o", bpf.keep_only_from(MAC_A)))
    dst = tg.mac_of(TG1)
    frames = [
        bytes(udp_flow(src, dst, IP0, IP1, 10000, 20000, seq=i))
        for i in range(50)
        for src in (MAC_A, MAC_B)
    ]
    seen, sources = rx_dump(pmd, tg, frames)
    print(f"\nsent 100 (50 from each MAC), dump saw {seen}: {set(sources)}")
    assert seen == len(sources) == 50 and set(sources) == {MAC_A}


def test_short_frames_are_kept_not_judged_on_stale_bytes(
    pmd: TestPmd, tg: TrafficGenerator, tmp_path: Path
) -> None:
    # n=1 drops every frame holding the field; 50-byte copies end 1 byte short of it, and
    # follow a dropped frame whose mbuf they may reuse, stale 4th byte and all
    pmd.bpf_load("rx", 0, 0, elf(tmp_path, "all.o", bpf.drop_every_nth(SEQ_AT, 1)))
    whole = bytes(udp_flow(MAC_A, tg.mac_of(TG1), IP0, IP1, 10000, 20000, seq=0))
    seen, _ = rx_dump(pmd, tg, [whole, whole[: SEQ_AT + 3]] * 40)
    assert seen == 40


def test_unguarded_data_pointer_filter_judges_short_frames_on_stale_bytes(
    pmd: TestPmd, tg: TrafficGenerator, tmp_path: Path
) -> None:
    # the control for the test above: without M the program gets the data pointer, the
    # verifier allows reads across the whole --mbuf-size buffer, and a short frame is
    # judged on what an earlier packet left there (here: seq 0's last byte, or zeroes)
    code = bpf.assemble(
        [
            bpf.ldx(4, 0, 1, SEQ_AT),
            bpf.to_be(0, 32),
            bpf.alu32(bpf.MOD, 0, 1),
            bpf.jmp(bpf.JEQ, 0, 0, "drop"),
            bpf.alu64(bpf.MOV, 0, 1),
            bpf.exit_(),
            "drop",
            bpf.alu64(bpf.MOV, 0, 0),
            bpf.exit_(),
        ]
    )
    pmd.bpf_load("rx", 0, 0, elf(tmp_path, "raw.o", bpf.elf_object(code)), flags="J")
    whole = bytes(udp_flow(MAC_A, tg.mac_of(TG1), IP0, IP1, 10000, 20000, seq=0))
    seen, _ = rx_dump(pmd, tg, [whole, whole[: SEQ_AT + 3]] * 40)
    print(f"\nunguarded, data pointer: {seen} of 40 short frames kept")
    assert seen < 40


def test_bad_loads_raise_with_the_reason(pmd: TestPmd, tmp_path: Path) -> None:
    path = elf(tmp_path, "nth.o", bpf.drop_every_nth(SEQ_AT, 50))
    # without M the argument is the data pointer: the mbuf fields read are not pointers
    with pytest.raises(TestPmdError, match=r"-22:Invalid argument \(.*not a pointer") as bad:
        pmd.bpf_load("rx", 0, 0, path, flags="J")
    print(f"\n{bad.value}")
    with pytest.raises(TestPmdError, match="-22:Invalid argument"):
        pmd.bpf_load("rx", 0, 5, path)  # no queue 5
    with pytest.raises(TestPmdError, match=r"-22:Invalid argument \(.*No such file"):
        pmd.bpf_load("rx", 0, 0, str(tmp_path / "missing.o"))
    with pytest.raises(TestPmdError, match="Bad arguments"):
        pmd.bpf_load("rx", 300, 0, path)  # testpmd parses the port as 8 bits
    with pytest.raises(ValueError, match="flags"):
        pmd.bpf_load("rx", 0, 0, path, flags="B")  # 22.11 names B in its help, ignores it
    with pytest.raises(ValueError, match="direction"):
        pmd.bpf_load("in", 0, 0, path)  # type: ignore[arg-type]  # a wrong direction on purpose


def test_unload_restores_lossless_forwarding(
    pmd: TestPmd, tg: TrafficGenerator, tmp_path: Path
) -> None:
    pmd.set_fwd("io")
    pmd.start()
    pmd.bpf_load("rx", 0, 0, elf(tmp_path, "nth.o", bpf.drop_every_nth(SEQ_AT, 10)))
    pmd.bpf_load("rx", 0, 0, elf(tmp_path, "nth2.o", bpf.drop_every_nth(SEQ_AT, 100)))
    replaced = tg.stream(TG0, stream_template(tg), TG1, pps=2000, count=200)
    assert list(replaced.lost_seqs) == [0, 100]  # the second load replaced the first
    pmd.bpf_unload("rx", 0, 0)
    pmd.bpf_unload("rx", 0, 0)  # nothing loaded: silent
    clean = tg.stream(TG0, stream_template(tg), TG1, pps=2000, count=200)
    assert (clean.sent, clean.received, clean.lost, clean.duplicated) == (200, 200, 0, 0)
