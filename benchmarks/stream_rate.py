"""Send rate of the sequenced-stream engine against scapy's sendp (goal: >= 200x), and the
engine's pacing accuracy at 1k, 10k and 50k pps (goal: within 1 %).

    .venv/bin/python benchmarks/stream_rate.py [--loop-n 100] [-n 2000] [--seconds 2]
                                               [--repeat 3]

Everything runs in one go on one veth pair between two network namespaces (hcg-a, hcg-b)
created for the run and deleted afterwards. Two scapy baselines, each in its own process
inside hcg-a, only the sending timed:

  * sendp(pkt) called once per packet in a loop: what a test author naively writes;
  * sendp([pkt] * n): the whole list in one call (one socket): scapy at its best.

The engine is the traffic agent driven by TrafficGenerator, unpaced, once through the
kernel's PACKET_TX_RING (batched) and once forced onto the per-frame send() fallback. On a
veth the kernel's receive processing runs inside the sender's system call, so the engine
rate includes the whole receive path of the peer: with frames addressed to the peer, its
IPv4 input (a route lookup that ends in a drop) costs about as much as the send itself, so
both engine paths are also measured with frames to a foreign MAC (the peer's stack drops
them at once; the capture still counts them), which is closer to a TG in a real lab, where
the receive path is the DUT's, not the TG's. Each figure is measured --repeat times,
interleaved (the machine may be shared); the median is used, the range is shown.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from framework.remote.session import LocalSession  # noqa: E402
from framework.traffic.generator import TrafficGenerator  # noqa: E402
from framework.traffic.packets import udp_flow  # noqa: E402

NS_A, NS_B = "hcg-a", "hcg-b"
IF_A, IF_B = "hcga0", "hcgb0"
PORT_A, PORT_B = f"{NS_A}:{IF_A}", f"{NS_B}:{IF_B}"
IP_A, IP_B = "198.19.201.1", "198.19.201.2"
FOREIGN_MAC = "02:48:43:47:00:01"  # nobody's: the peer passes it to taps, not to IPv4
GOAL_RATIO = 200
RATES = (1_000, 10_000, 50_000)

SCAPY_SENDER = """
import sys, time
from scapy.all import sendp
from scapy.layers.l2 import Ether
frame, n, iface = Ether(bytes.fromhex(sys.argv[1])), int(sys.argv[2]), sys.argv[4]
if sys.argv[3] == "loop":
    start = time.perf_counter()
    for _ in range(n):
        sendp(frame, iface=iface, verbose=False)
else:
    frames = [frame] * n
    start = time.perf_counter()
    sendp(frames, iface=iface, verbose=False)
print(n / (time.perf_counter() - start))
"""


def ip(*args: str, check: bool = True) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and done.returncode:
        raise RuntimeError(f"`ip {' '.join(args)}` failed: {done.stderr.strip()}")


def setup() -> None:
    for ns in (NS_A, NS_B):
        ip("netns", "add", ns)
        for conf in ("all", "default"):  # no IPv6 chatter in the measurements
            ip("netns", "exec", ns, "sysctl", "-qw", f"net.ipv6.conf.{conf}.disable_ipv6=1")
    ip("link", "add", IF_A, "netns", NS_A, "type", "veth", "peer", "name", IF_B, "netns", NS_B)
    for ns, ifname in ((NS_A, IF_A), (NS_B, IF_B)):
        ip("-n", ns, "link", "set", ifname, "up")


def teardown() -> None:
    for ns in (NS_A, NS_B):
        ip("netns", "delete", ns, check=False)


def scapy_rate(frame: bytes, n: int, mode: str) -> float:
    out = subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            NS_A,
            sys.executable,
            "-c",
            SCAPY_SENDER,
            frame.hex(),
            str(n),
            mode,
            IF_A,
        ],  # fmt: skip
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(out.strip().splitlines()[-1])


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):12,.0f} pps  (range {min(values):,.0f}-{max(values):,.0f})"


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} / {five:.2f} on {os.cpu_count()} CPUs"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loop-n", type=int, default=100, help="packets of the sendp loop")
    parser.add_argument("-n", type=int, default=2000, help="packets of the sendp list")
    parser.add_argument("--seconds", type=float, default=2.0, help="length of each stream")
    parser.add_argument("--repeat", type=int, default=3, help="measurements of each figure")
    args = parser.parse_args()

    teardown()  # leftovers of a run that was killed
    try:
        setup()
        with tempfile.TemporaryDirectory(prefix="hcg-bench-") as agent_dir:
            tg = TrafficGenerator(LocalSession(), agent_dir=agent_dir)
            mac_a, mac_b = tg.mac_of(PORT_A), tg.mac_of(PORT_B)
            frame = bytes(udp_flow(mac_a, mac_b, IP_A, IP_B, 10000, 20000, seq=0, size=64))
            print(f"64 B frames on a veth pair; {load()} at the start")

            foreign = bytes(udp_flow(mac_a, FOREIGN_MAC, IP_A, IP_B, 10000, 20000, seq=0, size=64))
            paths = ("ring", "send", "ring-foreign", "send-foreign")
            rates: dict[str, list[float]] = {p: [] for p in ("loop", "list", *paths)}
            notes: dict[str, list[str]] = {p: [] for p in paths}
            for _ in range(args.repeat):
                rates["loop"].append(scapy_rate(frame, args.loop_n, "loop"))
                rates["list"].append(scapy_rate(frame, args.n, "list"))
                for name in paths:
                    path = name.split("-")[0]
                    run = tg.start_stream(
                        PORT_A,
                        foreign if name.endswith("foreign") else frame,
                        PORT_B,
                        pps=None,
                        duration=args.seconds,
                        tx_path=path,
                    )
                    r = run.wait()
                    assert run.tx_path == path, f"asked for {path}, got {run.tx_path}"
                    rates[name].append(r.rate_achieved_pps)
                    notes[name].append(
                        f"{r.received}/{r.sent} received, {r.lost} lost, {r.tx_errors} tx errors"
                    )

            print(f"scapy sendp(pkt) per packet, loop of {args.loop_n}: {spread(rates['loop'])}")
            print(f"scapy sendp(list of {args.n}), one call:     {spread(rates['list'])}")
            for name in paths:
                what = "PACKET_TX_RING" if name.startswith("ring") else "per-frame send()"
                to = "a foreign MAC" if name.endswith("foreign") else "the peer"
                print(f"engine unpaced, {what}, to {to}, {args.seconds:g} s:")
                print(f"    {spread(rates[name])}")
                for note in notes[name]:
                    print(f"    {note}")
            for to in ("", "-foreign"):
                ring, send = (statistics.median(rates[p + to]) for p in ("ring", "send"))
                print(f"ring / send path{to and ', foreign MAC'}: {ring / send:.2f}x")
            for base, what in (("loop", "sendp per packet"), ("list", "sendp of a list")):
                for path in ("ring", "send"):
                    ratio = statistics.median(rates[path]) / statistics.median(rates[base])
                    verdict = "met" if ratio >= GOAL_RATIO else "NOT met"
                    print(
                        f"engine ({path}) vs {what + ':':18} {ratio:10,.1f}x"
                        f"  goal >= {GOAL_RATIO}x {verdict}"
                    )
            print()
            print(f"pacing (auto path), {args.seconds:g} s streams")
            print(
                f"{'requested':>10} {'achieved':>12} {'error %':>8} {'sent':>8} {'lost':>6}"
                f" {'path':>5}"
            )
            worst = 0.0
            for pps in RATES:
                run = tg.start_stream(PORT_A, frame, PORT_B, pps=pps, duration=args.seconds)
                r = run.wait()
                error = (r.rate_achieved_pps / pps - 1) * 100
                worst = max(worst, abs(error))
                print(
                    f"{pps:>10,} {r.rate_achieved_pps:>12,.1f} {error:>+8.3f} {r.sent:>8}"
                    f" {r.lost:>6} {run.tx_path:>5}"
                )
            print(f"worst pacing error: {worst:.3f} %  (goal <= 1 %)")
            print(f"{load()} at the end")
    finally:
        teardown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
