"""The sequenced-stream engine on real kernel interfaces: namespaces hcg-a and hcg-b joined
through a Linux bridge in hcg-s (a one-switch lab), a real outage made by disabling the
bridge port towards b, and the kernel's own interface counters as the judge.

This kernel has neither sch_netem nor any tc classifier, so the outage is made where a real
lab makes one: in the switch. Frames still leave the TG (sends succeed), and vanish on the
way, which is what a migration looks like from the TG."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from scapy.layers.inet import UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from framework.remote.session import LocalSession
from framework.traffic.generator import Capture, TrafficGenerator
from framework.traffic.packets import payload_seq, swap_macs, udp_flow, unchanged
from framework.traffic.plot import plot_stream
from framework.traffic.stream import LossWindow

NS_A, NS_B, NS_S = "hcg-a", "hcg-b", "hcg-s"
IF_A, IF_B = "hcga0", "hcgb0"
SW_A, SW_B, BRIDGE = "hcgsa", "hcgsb", "hcgbr0"  # switch ports facing a and b
IP_A, IP_B = "198.19.201.1", "198.19.201.2"
PORT_A, PORT_B = f"{NS_A}:{IF_A}", f"{NS_B}:{IF_B}"
PPS = 5000


def run(*argv: str, check: bool = True) -> str:
    done = subprocess.run(argv, capture_output=True, text=True)
    if check and done.returncode:
        raise RuntimeError(f"`{' '.join(argv)}` failed: {done.stderr.strip()}")
    return done.stdout


def _delete_namespaces() -> None:
    # deleting a namespace destroys the veth ends inside it, and with them the pairs
    for ns in (NS_A, NS_B, NS_S):
        run("ip", "netns", "delete", ns, check=False)


@pytest.fixture
def tg(tmp_path: Path) -> Iterator[TrafficGenerator]:
    if os.geteuid() != 0:
        pytest.skip("needs root: creates network namespaces and raw sockets")
    _delete_namespaces()  # leftovers of a run that was killed
    try:
        for ns in (NS_A, NS_B, NS_S):
            run("ip", "netns", "add", ns)
            # no IPv6: router solicitations and MLD reports would disturb the counters
            # ("default" covers the interfaces created after this, "all" only existing ones)
            for conf in ("all", "default"):
                run(
                    "ip",
                    "netns",
                    "exec",
                    ns,
                    "sysctl",
                    "-qw",
                    f"net.ipv6.conf.{conf}.disable_ipv6=1",
                )
        run("ip", "link", "add", IF_A, "netns", NS_A, "type", "veth", "peer", "name", SW_A,
            "netns", NS_S)  # fmt: skip
        run("ip", "link", "add", IF_B, "netns", NS_B, "type", "veth", "peer", "name", SW_B,
            "netns", NS_S)  # fmt: skip
        # no STP, no multicast snooping: the bridge itself must not emit (IGMP) frames
        run("ip", "-n", NS_S, "link", "add", BRIDGE, "type", "bridge", "stp_state", "0",
            "mcast_snooping", "0")  # fmt: skip
        for port in (SW_A, SW_B):
            run("ip", "-n", NS_S, "link", "set", port, "master", BRIDGE, "up")
        run("ip", "-n", NS_S, "link", "set", BRIDGE, "up")
        run("ip", "-n", NS_A, "link", "set", IF_A, "up")
        run("ip", "-n", NS_B, "link", "set", IF_B, "up")
        yield TrafficGenerator(LocalSession(), agent_dir=str(tmp_path / "agent"))
    finally:
        _delete_namespaces()


def rx_packets(ns: str, ifname: str) -> int:
    out = run("ip", "-n", ns, "-s", "-j", "link", "show", "dev", ifname)
    return int(json.loads(out)[0]["stats64"]["rx"]["packets"])


def port_state(state: str) -> None:
    """Set the bridge port towards b to forwarding or disabled (frames to it are dropped)."""
    run("bridge", "-n", NS_S, "link", "set", "dev", SW_B, "state", state)


@pytest.fixture
def macs(tg: TrafficGenerator) -> tuple[str, str]:
    return tg.mac_of(PORT_A), tg.mac_of(PORT_B)


def template(macs: tuple[str, str], **kwargs: object) -> Ether:
    return udp_flow(macs[0], macs[1], IP_A, IP_B, 10000, 20000, seq=0, **kwargs)


@pytest.mark.parametrize("path", ["mmsg", "ring", "send"])
def test_steady_stream_holds_the_rate_without_loss(
    tg: TrafficGenerator, macs: tuple[str, str], path: str
) -> None:
    run = tg.start_stream(PORT_A, template(macs), PORT_B, pps=PPS, duration=2.0, tx_path=path)
    result = run.wait()
    assert run.tx_path == path and run.tx_path_note is None
    assert result.ended == "duration" and result.tx_errors == 0
    assert result.rate_achieved_pps == pytest.approx(PPS, rel=0.01)
    assert result.sent == 2.0 * PPS  # every frame due in [0, 2 s)
    assert (result.lost, result.duplicated, result.reordered) == (0, 0, 0)
    assert result.received == result.sent == result.port_frames[PORT_B]
    assert result.resolution_ms == pytest.approx(0.2)
    assert 0 < result.latency_ms["median"] < 5  # a veth: microseconds, not milliseconds


def test_outage_is_measured_as_downtime_with_exact_loss(
    tg: TrafficGenerator, macs: tuple[str, str], tmp_path: Path
) -> None:
    into_switch, into_b = rx_packets(NS_S, SW_A), rx_packets(NS_B, IF_B)
    with tg.start_stream(PORT_A, template(macs), PORT_B, pps=PPS, duration=2.0) as stream:
        stream.wait_started()
        time.sleep(0.8)
        # the outage begins somewhere inside each `bridge` call: take its midpoint
        t_a = time.time()
        port_state("0")  # disabled
        t_b = time.time()
        time.sleep(0.3)
        t_c = time.time()
        port_state("3")  # forwarding
        t_d = time.time()
        result = stream.wait()
    into_switch = rx_packets(NS_S, SW_A) - into_switch
    into_b = rx_packets(NS_B, IF_B) - into_b

    # where the outage begins and ends inside each `bridge` call is unknown, and a loaded
    # machine makes a call last tens of ms: judge against the calls' whole spans
    outage_ms = ((t_c + t_d) / 2 - (t_a + t_b) / 2) * 1000
    start, end = result.at((t_a + t_b) / 2), result.at((t_c + t_d) / 2)
    shortest_s, longest_s = t_c - t_b, t_d - t_a
    (window,) = result.account(LossWindow("port disabled", start, end, slack_s=0)).windows
    gap = window.outage
    print(f"\n{result.summary()}\n{gap}; outage {outage_ms:.1f} ms")
    assert gap is not None, f"no outage around {start:.3f}-{end:.3f} s: {result.outages}"
    # loss accounting is exact: what the switch took in minus what b got, per the kernel
    assert result.sent == into_switch
    assert result.lost == into_switch - into_b == gap.lost > 0
    assert result.received == into_b and result.duplicated == 0
    # one outage with loss; on a loaded machine late softirqs may add short stalls
    assert [g for g in result.outages if g.lost] == [gap] and result.downtime_ms == gap.duration_ms
    assert len(gap.lost_runs) == 1 and list(result.lost_seqs) == list(gap.lost_runs[0])
    slack_s = 0.01  # the stream's resolution and the kernel's softirq latency
    assert shortest_s - slack_s <= gap.duration_ms / 1000 <= longest_s + slack_s, (
        f"outage {gap.duration_ms:.1f} ms; the port was disabled for "
        f"{shortest_s * 1000:.1f}-{longest_s * 1000:.1f} ms"
    )
    assert (shortest_s - slack_s) * PPS <= gap.lost <= (longest_s + slack_s) * PPS
    assert result.at(t_a) - slack_s <= gap.start_s <= result.at(t_b) + slack_s
    assert result.at(t_c) - slack_s <= gap.end_s <= result.at(t_d) + slack_s

    png = plot_stream(
        result,
        tmp_path / "outage.png",
        events=[(start, "port disabled"), (end, "port forwarding")],
        windows=[LossWindow("port disabled", start, end, slack_s=0)],
        title="5 kpps through a bridge, port towards b disabled for 300 ms",
    )
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    keep = os.environ.get("HCG_KEEP_PLOT")
    if keep:
        Path(keep).write_bytes(png.read_bytes())


def test_background_stream_runs_while_the_test_sleeps_and_stops_early(
    tg: TrafficGenerator, macs: tuple[str, str]
) -> None:
    stream = tg.start_stream(PORT_A, template(macs), PORT_B, pps=1000, duration=60)
    started = stream.started_at
    assert abs(started - time.time()) < 5 and not stream.done
    time.sleep(0.5)
    asked = time.time()
    stream.stop()
    result = stream.wait(timeout=10)
    assert time.time() - asked < 3, "stop() must end a 60 s stream within moments"
    assert result.ended == "stop" and result.lost == 0
    # about half a second of traffic at 1 kpps, plus the time stop() took to land
    assert 450 <= result.sent <= 1000
    assert result.started_at == pytest.approx(started)


def test_own_frames_flooded_back_are_ignored(tg: TrafficGenerator, macs: tuple[str, str]) -> None:
    # b sees a's frames with a's source MAC, just as a flooding switch would show the TG
    result = tg.stream(PORT_A, template(macs), PORT_B, pps=1000, count=200, ignore_src=macs[0])
    assert result.ended == "count" and result.sent == 200
    assert result.frames == 0 and result.ignored_own == {PORT_B: 200}


@pytest.mark.parametrize("path", ["mmsg", "ring", "send"])
@pytest.mark.parametrize("v6", [False, True], ids=["ipv4", "ipv6"])
def test_stamped_frames_carry_real_udp_checksums(
    tg: TrafficGenerator, macs: tuple[str, str], v6: bool, path: str
) -> None:
    src, dst = ("2001:db8::1", "2001:db8::2") if v6 else (IP_A, IP_B)
    pkt = udp_flow(macs[0], macs[1], src, dst, 1, 2, seq=0, size=131)  # odd length
    captured: list[Capture] = []
    capture = threading.Thread(
        target=lambda: captured.append(
            tg.exchange(PORT_A, [], [PORT_B], expect=20, timeout=5, marker=b"HOWTO")
        )
    )
    capture.start()
    time.sleep(0.5)  # the capture agent must be listening before the stream starts
    result = tg.stream(PORT_A, pkt, PORT_B, pps=200, count=20, tx_path=path)
    capture.join()
    frames = captured[0][PORT_B]
    assert result.received == 20 and len(frames) == 20
    assert sorted(payload_seq(f.raw) for f in frames) == list(range(20))
    assert result.intact, result.describe_altered()
    for frame in frames:
        udp = frame.packet[UDP]
        assert frame.packet.haslayer(IPv6) == v6
        again = Ether(bytes(frame.packet))
        del again[UDP].chksum
        assert Ether(bytes(again))[UDP].chksum == udp.chksum != 0, "a real checksum"


@pytest.mark.parametrize("path", ["mmsg", "ring", "send"])
def test_unpaced_stream_sends_exactly_count_with_dense_sequence_numbers(
    tg: TrafficGenerator, macs: tuple[str, str], path: str
) -> None:
    n = 20_000
    run = tg.start_stream(PORT_A, template(macs), PORT_B, pps=None, count=n, tx_path=path)
    result = run.wait()
    assert run.tx_path == path
    assert result.ended == "count" and result.sent == n and result.tx_errors == 0
    assert result.received == n and result.lost == 0 and result.duplicated == 0
    assert sorted(result.seq.tolist()) == list(range(n))
    assert result.tx_s is not None
    order = result.seq.argsort()
    # a frame is stamped as it is written, before the kernel takes it: never after arrival,
    # and stamps follow the sequence (the ring is written in order)
    assert (result.tx_s[order][1:] >= result.tx_s[order][:-1]).all()
    assert (result.rx_s >= result.tx_s).all()


def test_auto_takes_the_sendmmsg_path(tg: TrafficGenerator, macs: tuple[str, str]) -> None:
    # the fastest path measured on a veth (benchmarks/stream_rate.py)
    run = tg.start_stream(PORT_A, template(macs), PORT_B, pps=1000, count=50)
    result = run.wait()
    assert run.tx_path == "mmsg" and run.tx_path_note is None
    assert result.sent == result.received == 50


@pytest.mark.parametrize("path", ["auto", "mmsg", "ring", "send"])
def test_frame_longer_than_the_mtu_is_an_error_on_every_path(
    tg: TrafficGenerator, macs: tuple[str, str], path: str
) -> None:
    pkt = template(macs, size=1600)  # veth MTU 1500: no path can send it
    run = tg.start_stream(PORT_A, pkt, PORT_B, pps=1000, count=50, duration=0.3, tx_path=path)
    result = run.wait()
    assert result.sent == 0 and result.received == 0 and result.tx_errors > 0
    # the ring cannot move past a frame the kernel rejects: the sendmmsg path takes over
    assert run.tx_path == ("send" if path == "send" else "mmsg")
    if path == "ring":
        assert "WRONG_FORMAT" in (run.tx_path_note or "")
        assert "WRONG_FORMAT" in (result.tx_error or "")
    else:
        assert run.tx_path_note is None and "EMSGSIZE" in (result.tx_error or "")


def test_every_frame_is_checked_whole_against_what_the_forwarding_should_deliver(
    tg: TrafficGenerator, macs: tuple[str, str]
) -> None:
    """The bridge delivers frames unchanged: expecting them MAC-swapped, each is altered."""
    pkt = template(macs)
    clean = tg.stream(PORT_A, pkt, PORT_B, pps=500, count=50)
    assert clean.received == 50 and clean.intact, clean.describe_altered()
    swapped = tg.stream(PORT_A, pkt, PORT_B, pps=500, count=50, expect=swap_macs)
    assert swapped.altered == 50 and swapped.received == 50  # counted, and still received
    first = swapped.altered_frames[0]
    assert first.offset == 0 and first.seen is not None and first.expected is not None
    assert first.seen[:6] == bytes.fromhex(macs[1].replace(":", ""))
    assert first.expected[:6] == bytes.fromhex(macs[0].replace(":", ""))
    assert "differs at byte 0" in swapped.describe_altered()
    # either of two forms may arrive: only frames matching neither are altered
    either = tg.stream(PORT_A, pkt, PORT_B, pps=500, count=50, expect=[swap_macs, unchanged])
    assert either.intact, either.describe_altered()


def test_a_vlan_tag_taken_off_by_the_kernel_is_put_back_before_the_check(
    tg: TrafficGenerator, macs: tuple[str, str]
) -> None:
    pkt = template(macs, vlan=100)
    result = tg.stream(PORT_A, pkt, PORT_B, pps=500, count=50)
    assert result.received == 50 and result.intact, result.describe_altered()
    untagged = template(macs)
    stripped = tg.stream(PORT_A, pkt, PORT_B, pps=500, count=50, expect=lambda p: untagged)
    # the tag arrived, the expectation said stripped: every frame differs at the tag
    assert stripped.altered == 50 and stripped.altered_frames[0].offset == 12
