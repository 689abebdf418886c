"""The traffic agent and verify_* calls on real kernel interfaces: two network namespaces
joined by a veth pair, real frames, real captures."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Dot1Q, Ether

from framework.remote.session import CommandResult, LocalSession, command_line
from framework.traffic.generator import TrafficError, TrafficGenerator
from framework.traffic.packets import flows, payload_seq, swap_macs, udp_flow
from framework.traffic.verify import (
    count_matched_packets,
    verify_no_packet,
    verify_packet,
    verify_packets,
)

NS_A, NS_B = "hce-a", "hce-b"
IF_A, IF_B = "hcea0", "hceb0"
IP_A, IP_B = "198.19.200.1", "198.19.200.2"
PORT_A, PORT_B = f"{NS_A}:{IF_A}", f"{NS_B}:{IF_B}"


class NetnsSession(LocalSession):
    """The controller, with every command run inside one network namespace: how a TG that
    is itself a namespace looks to the framework."""

    def __init__(self, netns: str) -> None:
        super().__init__(name=netns)
        self.netns = netns

    def _execute(self, command: str, timeout: float | None, stdin: str | None) -> CommandResult:
        return super()._execute(
            command_line(["ip", "netns", "exec", self.netns, "bash", "-c", command]), timeout, stdin
        )


def ip(*args: str, check: bool = True) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and done.returncode:
        raise RuntimeError(f"`ip {' '.join(args)}` failed: {done.stderr.strip()}")


def wait_operstate(ns: str, ifname: str, state: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        out = subprocess.run(
            ["ip", "-n", ns, "-br", "link", "show", ifname],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        if out.split()[1] == state:
            return
        if time.monotonic() > deadline:
            now = out.split()[1]
            raise AssertionError(f"{ns}:{ifname} is {now}, not {state}, after {timeout} s")
        time.sleep(0.05)


def _delete_namespaces() -> None:
    # deleting a namespace destroys the veth end inside it, and with it the pair
    for ns in (NS_A, NS_B):
        ip("netns", "delete", ns, check=False)


@pytest.fixture
def veth_pair() -> Iterator[None]:
    if os.geteuid() != 0:
        pytest.skip("needs root: creates network namespaces and raw sockets")
    _delete_namespaces()  # leftovers of a run that was killed
    try:
        ip("netns", "add", NS_A)
        ip("netns", "add", NS_B)
        ip("link", "add", IF_A, "netns", NS_A, "type", "veth", "peer", "name", IF_B, "netns", NS_B)
        for ns, ifname, addr in ((NS_A, IF_A, IP_A), (NS_B, IF_B, IP_B)):
            ip("-n", ns, "addr", "add", f"{addr}/24", "dev", ifname)
            ip("-n", ns, "link", "set", ifname, "up")
        yield
    finally:
        _delete_namespaces()


@pytest.fixture
def tg(veth_pair: None, tmp_path) -> TrafficGenerator:
    """One agent in the root namespace reaching both ends as <netns>:<ifname> ports."""
    return TrafficGenerator(LocalSession(), agent_dir=str(tmp_path / "agent"))


@pytest.fixture
def macs(tg: TrafficGenerator) -> tuple[str, str]:
    return tg.mac_of(PORT_A), tg.mac_of(PORT_B)


def a_to_b(macs: tuple[str, str], n: int, size: int = 128, first_seq: int = 0) -> list[Ether]:
    return flows(n, macs[0], macs[1], IP_A, IP_B, size=size, first_seq=first_seq)


def test_mac_of_matches_the_kernel(tg: TrafficGenerator) -> None:
    out = subprocess.run(
        ["ip", "-n", NS_B, "-br", "link", "show", IF_B], capture_output=True, text=True, check=True
    ).stdout
    assert tg.mac_of(PORT_B) == out.split()[2]
    assert tg.interfaces([PORT_A])[PORT_A]["up"] is True


def test_packets_from_a_arrive_at_b_unchanged(tg: TrafficGenerator, macs: tuple[str, str]) -> None:
    pkts = a_to_b(macs, 20)
    capture = verify_packets(tg, pkts, PORT_A, PORT_B)
    assert capture.sent == 20 and capture.tx_errors == 0
    assert sorted(payload_seq(f.raw) for f in capture[PORT_B]) == list(range(20))
    for pkt in pkts:
        assert count_matched_packets(capture, pkt, PORT_B) == 1
    assert capture[PORT_B][3].packet[UDP].dport == 20000  # dissected on demand
    times = [f.time for f in capture[PORT_B]]
    assert times == sorted(times) and 0 <= times[0] < 1


def test_vlan_tag_is_captured_as_on_the_wire(tg: TrafficGenerator, macs: tuple[str, str]) -> None:
    # the kernel moves the tag into metadata before packet sockets see the frame
    pkt = udp_flow(macs[0], macs[1], IP_A, IP_B, 1, 2, seq=1, vlan=42)
    capture = verify_packet(tg, pkt, PORT_A, PORT_B)
    assert capture[PORT_B][0].packet[Dot1Q].vlan == 42


def test_own_transmissions_are_not_captured(tg: TrafficGenerator, macs: tuple[str, str]) -> None:
    in_a = TrafficGenerator(NetnsSession(NS_A), agent_dir=tg.agent_dir)
    # to a MAC b does not own: b drops it silently instead of answering with an ICMP
    # port-unreachable that quotes our payload (marker included) back to a
    pkt = udp_flow(macs[0], "02:00:00:00:00:0b", IP_A, IP_B, 1, 2, seq=0)
    # agent running inside hce-a, plain interface names
    capture = in_a.exchange(IF_A, [pkt], [IF_A], timeout=0.5, marker=b"HOWTO")
    assert capture.sent == 1
    assert capture[IF_A] == []
    # the same capture does see frames that arrive at a, so the empty result means something
    back = swap_macs(a_to_b(macs, 1, first_seq=1)[0])
    capture = tg.exchange(PORT_B, [back], [PORT_A, PORT_B], expect=1, timeout=2, marker=b"HOWTO")
    assert [f.raw for f in capture[PORT_A]] == [bytes(back)]
    assert capture[PORT_B] == []


def test_background_frames_are_ignored_by_marker(
    tg: TrafficGenerator, macs: tuple[str, str]
) -> None:
    noise = Ether(src=macs[0], dst=macs[1]) / IP(src=IP_A, dst=IP_B) / UDP() / (b"n" * 40)
    pkts = a_to_b(macs, 3)
    capture = tg.exchange(PORT_A, [noise, *pkts], [PORT_B], expect=3, timeout=2, marker=b"HOWTO")
    assert capture.sent == 4
    assert len(capture[PORT_B]) == 3 and capture.ignored[PORT_B] >= 1
    unfiltered = tg.exchange(PORT_A, [noise], [PORT_B], expect=1, timeout=2)
    assert count_matched_packets(unfiltered, noise, PORT_B) == 1


def test_verify_no_packet_passes_when_b_is_down_and_bites_when_up(
    tg: TrafficGenerator, macs: tuple[str, str]
) -> None:
    pkt = a_to_b(macs, 1)[0]
    ip("-n", NS_B, "link", "set", IF_B, "down")
    # b down takes a's carrier away. Until the kernel's link watch deactivates a (up to
    # about 1 s), veth refuses frames with ENOBUFS; afterwards they are dropped silently.
    wait_operstate(NS_A, IF_A, "DOWN")
    capture = verify_no_packet(tg, pkt, PORT_A, PORT_B, timeout=0.5)
    assert capture.down == [PORT_B] and capture.sent == 1
    with pytest.raises(AssertionError, match="expected 1 packets on hce-b:hceb0, saw 0"):
        verify_packet(tg, pkt, PORT_A, PORT_B, timeout=0.5)
    ip("-n", NS_B, "link", "set", IF_B, "up")
    wait_operstate(NS_A, IF_A, "UP")
    with pytest.raises(AssertionError) as failure:
        verify_no_packet(tg, pkt, PORT_A, PORT_B, timeout=0.5)
    assert "seq 0 must not arrive on hce-b:hceb0 but was seen 1 time(s)" in str(failure.value)


def test_verify_packets_reports_a_packet_never_sent(
    tg: TrafficGenerator, macs: tuple[str, str]
) -> None:
    pkts = a_to_b(macs, 10)
    with pytest.raises(AssertionError) as failure:
        # the path "loses" seq 6: the TG never sends it, but it is expected
        verify_packets(tg, pkts[:6] + pkts[7:], PORT_A, PORT_B, expected=pkts, timeout=0.5)
    text = str(failure.value)
    assert text.startswith(
        f"verify_packets {PORT_A} -> {PORT_B}: expected 10 packets on {PORT_B}, saw 9"
    )
    assert "  missing (1): seq 6\n" in text
    assert "seq 6 expected, never seen on hce-b:hceb0 (124 bytes): Ether / IP / UDP" in text


def test_verify_packets_catches_a_missing_transform(
    tg: TrafficGenerator, macs: tuple[str, str]
) -> None:
    # a veth is no macswap forwarder: expecting swapped MACs must fail on every packet
    pkts = a_to_b(macs, 3)
    with pytest.raises(AssertionError, match=r"altered \(3\): seq 0-2"):
        verify_packets(tg, pkts, PORT_A, PORT_B, expected=swap_macs, timeout=0.5)


def test_paced_sending_spreads_frames(tg: TrafficGenerator, macs: tuple[str, str]) -> None:
    pkts = a_to_b(macs, 20)
    capture = verify_packets(tg, pkts, PORT_A, PORT_B, pps=200)
    times = sorted(f.time for f in capture[PORT_B])
    assert times[-1] - times[0] >= 19 / 200 * 0.9  # 5 ms apart, not a burst


def test_agent_errors_are_one_clear_line(tg: TrafficGenerator, macs: tuple[str, str]) -> None:
    with pytest.raises(TrafficError, match="port hce-b:nope: cannot bind: No such device"):
        tg.exchange(PORT_A, a_to_b(macs, 1), ["hce-b:nope"])
    with pytest.raises(TrafficError, match="network namespace hce-nowhere"):
        tg.mac_of("hce-nowhere:eth0")
    broken = TrafficGenerator(LocalSession(), agent_dir=tg.agent_dir, python="no-such-python3")
    with pytest.raises(TrafficError, match="did not answer .exit 127."):
        broken.mac_of(PORT_A)


def test_send_rate_of_10000_small_frames(tg: TrafficGenerator, macs: tuple[str, str]) -> None:
    pkts = flows(4, macs[0], macs[1], IP_A, IP_B, packets_per_flow=2500, size=64)
    capture = verify_packets(tg, pkts, PORT_A, PORT_B, timeout=5)
    rate = capture.sent / capture.send_duration
    print(
        f"\nagent send rate: {capture.sent} x 64-byte frames in {capture.send_duration:.3f} s"
        f" = {rate / 1000:.0f} kpps (all {len(capture[PORT_B])} captured at b)"
    )
    assert capture.sent == 10000
