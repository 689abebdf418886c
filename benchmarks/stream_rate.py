"""Send rate of the sequenced-stream engine against scapy's sendp (goal: >= 200x), and the
engine's pacing accuracy at 1k, 10k and 50k pps (goal: within 1 %).

    .venv/bin/python benchmarks/stream_rate.py [-n 2000] [--seconds 2]

Both run on a veth pair between two network namespaces (hcg-a, hcg-b) created for the run
and deleted afterwards. scapy runs in its own process inside hcg-a (ip netns exec) and only
its sendp call is timed; the engine is the traffic agent driven by TrafficGenerator, and a
stream counts only if the receiver at hcg-b got every frame.
"""

from __future__ import annotations

import argparse
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
GOAL_RATIO = 200
RATES = (1_000, 10_000, 50_000)

SCAPY_SENDER = """
import sys, time
from scapy.all import conf, sendp
from scapy.layers.l2 import Ether
frame, n = Ether(bytes.fromhex(sys.argv[1])), int(sys.argv[2])
sock = conf.L2socket(iface=sys.argv[3])  # one socket: the fairest scapy can do
start = time.perf_counter()
sendp([frame] * n, socket=sock, verbose=False)
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


def scapy_rate(frame: bytes, n: int) -> float:
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
            IF_A,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(out.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2000, help="frames scapy sends")
    parser.add_argument("--seconds", type=float, default=2.0, help="length of each stream")
    args = parser.parse_args()

    teardown()  # leftovers of a run that was killed
    try:
        setup()
        with tempfile.TemporaryDirectory(prefix="hcg-bench-") as agent_dir:
            tg = TrafficGenerator(LocalSession(), agent_dir=agent_dir)
            mac_a, mac_b = tg.mac_of(PORT_A), tg.mac_of(PORT_B)
            frame = bytes(udp_flow(mac_a, mac_b, IP_A, IP_B, 10000, 20000, seq=0, size=64))

            scapy_pps = scapy_rate(frame, args.n)
            flat = tg.stream(PORT_A, frame, PORT_B, pps=None, duration=args.seconds)
            ratio = flat.rate_achieved_pps / scapy_pps
            print(f"scapy sendp ({args.n} x 64 B frames):  {scapy_pps:12,.0f} pps")
            print(
                f"stream engine, unpaced ({args.seconds:g} s): {flat.rate_achieved_pps:12,.0f} pps"
                f"  (received {flat.received}/{flat.sent}, lost {flat.lost})"
            )
            verdict = "ok" if ratio >= GOAL_RATIO else "BELOW GOAL"
            print(f"ratio: {ratio:,.0f}x  (goal >= {GOAL_RATIO}x: {verdict})")
            print()
            print(f"{'requested':>10} {'achieved':>12} {'error %':>8} {'sent':>8} {'lost':>6}")
            worst = 0.0
            for pps in RATES:
                r = tg.stream(PORT_A, frame, PORT_B, pps=pps, duration=args.seconds)
                error = (r.rate_achieved_pps / pps - 1) * 100
                worst = max(worst, abs(error))
                print(
                    f"{pps:>10,} {r.rate_achieved_pps:>12,.1f} {error:>+8.3f} {r.sent:>8}"
                    f" {r.lost:>6}"
                )
            print(f"worst pacing error: {worst:.3f} %  (goal <= 1 %)")
    finally:
        teardown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
