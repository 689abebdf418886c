"""Send rate of the sequenced-stream engine against the fastest sender the veth allows
(goal: >= 80 %), against scapy's sendp (goal: >= 200x), and its pacing accuracy at 1k,
10k and 50k pps (goal: within 1 %).

    .venv/bin/python benchmarks/stream_rate.py [--loop-n 100] [-n 2000] [--seconds 2]
                                               [--repeat 3]

Everything runs in one go on one veth pair between two network namespaces
(howto-bench-<pid>-a/-b) created for the run and deleted afterwards. Run it under
`flock /tmp/howto-machine.lock` when other runs may create namespaces.

The ceiling is benchmarks/stream_ceiling.c, compiled with gcc into a temporary directory:
a plain C sender, sendmmsg (64 frames a call) on a PACKET_QDISC_BYPASS socket, stamping
frames as the engine does. It and the engine send flat out to the same receiver on the
peer: the agent's own (ReceiverProcess, a forked child counting every stamped frame).
On a veth the kernel's receive processing runs inside the sender's system call, so every
rate includes the peer's receive path: with frames addressed to the peer, its IPv4 input
costs about as much as the send itself, so each sender is also measured with frames to a
foreign MAC (the peer's stack drops them at once; the capture still counts them), closer
to a TG in a real lab, where the receive path is the DUT's. A receiver that falls behind
loses frames (received < sent); the send rate is what is compared.

The engine runs through TrafficGenerator on its automatic path (which must be sendmmsg),
and on the PACKET_TX_RING and per-frame send() paths for comparison. Two scapy
baselines, each in its own process inside namespace a, only the sending timed:

  * sendp(pkt) called once per packet in a loop: what a test author naively writes;
  * sendp([pkt] * n): the whole list in one call (one socket): scapy at its best.

Each figure is measured --repeat times, interleaved (the machine may be shared); the
median is used, the range is shown. With the defaults it takes about 1.5 minutes (2 s
streams, 3 repeats), printing one numbered line as each measurement starts. SIGTERM or
Ctrl-C stops it: the streams and senders it started end, its namespaces are deleted, and
it exits with 128 + the signal's number (framework/report/benchrun.py).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from framework.lab.virtual import remove_run  # noqa: E402
from framework.remote.session import LocalSession  # noqa: E402
from framework.report import benchrun  # noqa: E402
from framework.traffic.agent import ReceiverProcess, prepare_frame  # noqa: E402
from framework.traffic.generator import TrafficGenerator  # noqa: E402
from framework.traffic.packets import DEFAULT_MARKER, udp_flow  # noqa: E402

PREFIX = "howto-bench-"
RUN = f"{PREFIX}{os.getpid()}"  # every name of this run starts with it
NS_A, NS_B = f"{RUN}-a", f"{RUN}-b"
IF_A, IF_B = "hba0", "hbb0"
PORT_A, PORT_B = f"{NS_A}:{IF_A}", f"{NS_B}:{IF_B}"
IP_A, IP_B = "198.19.201.1", "198.19.201.2"
FOREIGN_MAC = "02:48:43:47:00:01"  # nobody's: the peer passes it to taps, not to IPv4
CEILING_SOURCE = Path(__file__).with_name("stream_ceiling.c")
GOAL_RATIO = 200
GOAL_CEILING = 0.80
RATES = (1_000, 10_000, 50_000)
LINGER = 0.3

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


def ip(*args: str, check: bool = True) -> str:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and done.returncode:
        raise RuntimeError(f"`ip {' '.join(args)}` failed: {done.stderr.strip()}")
    return done.stdout


@contextmanager
def veth_pair() -> Iterator[None]:
    """The run's two namespaces and the veth between them, removed however the run ends.

    The lab's own removal (framework/lab/virtual.py) takes them down: it first kills any
    process still inside (a sender or receiver the run started), then deletes them.
    """
    remove_stale()
    try:
        for ns in (NS_A, NS_B):
            ip("netns", "add", ns)
            for conf in ("all", "default"):  # no IPv6 chatter in the measurements
                ip("netns", "exec", ns, "sysctl", "-qw", f"net.ipv6.conf.{conf}.disable_ipv6=1")
        ip("link", "add", IF_A, "netns", NS_A, "type", "veth", "peer", "name", IF_B,
           "netns", NS_B)  # fmt: skip
        for ns, ifname in ((NS_A, IF_A), (NS_B, IF_B)):
            ip("-n", ns, "link", "set", ifname, "up")
        yield
    finally:
        with benchrun.deferred():
            remove_run(RUN, [])


def remove_stale() -> None:
    """Remove the namespaces of benchmark runs that were killed (their pid is gone)."""
    stale = {
        run for run, pid in re.findall(rf"^({PREFIX}(\d+))-[ab]\b", ip("netns", "list"), re.M)
        if not Path(f"/proc/{pid}").exists()
    }  # fmt: skip
    for run in sorted(stale):
        remove_run(run, [])


def build_ceiling(tmp: str) -> str | None:
    """Compile the C sender; None (and a line saying why) where gcc cannot."""
    binary = os.path.join(tmp, "stream_ceiling")
    gcc = shutil.which("gcc")
    if gcc is None:
        print("ceiling: no gcc on this machine, the ceiling sender is not measured")
        return None
    done = subprocess.run(
        [gcc, "-O2", "-o", binary, str(CEILING_SOURCE)], capture_output=True, text=True
    )
    if done.returncode:
        print(f"ceiling: gcc failed: {done.stderr.strip().splitlines()[-1:]}")
        return None
    return binary


def ceiling_rate(binary: str, frame: bytes, seconds: float) -> tuple[float, str]:
    """Rate of the C sender, with the engine's receiver counting on the peer."""
    stamp_at = frame.find(DEFAULT_MARKER) + len(DEFAULT_MARKER)
    frame = bytes(prepare_frame(frame, stamp_at))  # as the engine sends it: real checksum
    # the receiver checks every frame whole, as it does for the engine's streams
    expect = [(stamp_at, frame)]
    with ReceiverProcess([PORT_B], DEFAULT_MARKER, expect, None) as receiver:
        receiver.start(time.monotonic() + seconds + 60)
        out = subprocess.run(
            ["ip", "netns", "exec", NS_A, binary, IF_A, frame.hex(), str(stamp_at), str(seconds)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        time.sleep(LINGER)  # as the engine lingers for frames in flight
        seen = receiver.collect()[PORT_B]
    sent, took, errors = int(out[0]), float(out[1]), int(out[2])
    return sent / took, (
        f"{seen['n']}/{sent} received, {seen['altered']} altered, {errors} failed calls"
    )


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


def engine_rate(tg: TrafficGenerator, frame: bytes, path: str, seconds: float) -> tuple[float, str]:
    # as a context: a stop mid-stream ends the agent's stream before the namespaces go
    with tg.start_stream(
        PORT_A, frame, PORT_B, pps=None, duration=seconds, linger=LINGER, tx_path=path
    ) as run:
        r = run.wait()
    want = "mmsg" if path == "auto" else path
    assert run.tx_path == want, f"asked for {path}, got {run.tx_path}: {run.tx_path_note}"
    note = (
        f"{r.received}/{r.sent} received, {r.lost} lost, {r.altered} altered, "
        f"{r.tx_errors} tx errors"
    )
    return r.rate_achieved_pps, note


WHAT = {
    "ceiling": "C sendmmsg + PACKET_QDISC_BYPASS (the ceiling)",
    "auto": "engine, auto path (sendmmsg)",
    "ring": "engine, PACKET_TX_RING",
    "send": "engine, per-frame send()",
}


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--loop-n", type=int, default=100, help="packets of the sendp loop")
    parser.add_argument("-n", type=int, default=2000, help="packets of the sendp list")
    parser.add_argument("--seconds", type=float, default=2.0, help="length of each stream")
    parser.add_argument("--repeat", type=int, default=3, help="measurements of each figure")
    args = parser.parse_args()
    for name, least in (("loop_n", 1), ("n", 1), ("repeat", 1)):
        if getattr(args, name) < least:
            parser.error(f"--{name.replace('_', '-')} must be at least {least}")
    if not 0 < args.seconds <= 600:
        parser.error(f"--seconds must be above 0 and at most 600, got {args.seconds:g}")
    return args


def main() -> int:
    args = arguments()
    with veth_pair(), tempfile.TemporaryDirectory(prefix=f"{RUN}-") as tmp:
        binary = build_ceiling(tmp)
        tg = TrafficGenerator(LocalSession(), agent_dir=os.path.join(tmp, "agent"))
        mac_a, mac_b = tg.mac_of(PORT_A), tg.mac_of(PORT_B)
        frames = {
            "the peer": bytes(udp_flow(mac_a, mac_b, IP_A, IP_B, 10000, 20000, seq=0, size=64)),
            "a foreign MAC": bytes(
                udp_flow(mac_a, FOREIGN_MAC, IP_A, IP_B, 10000, 20000, seq=0, size=64)
            ),
        }
        benchrun.say(f"64 B frames on a veth pair ({NS_A} <-> {NS_B}); {load()} at the start")
        senders = ("ceiling", "auto", "ring", "send") if binary else ("auto", "ring", "send")
        figures = [(s, to) for to in frames for s in senders]
        rates: dict[object, list[float]] = {k: [] for k in ("loop", "list", *figures)}
        notes: dict[object, list[str]] = {k: [] for k in figures}
        progress = benchrun.Progress(args.repeat * (2 + len(figures)) + len(RATES))
        for round_ in range(1, args.repeat + 1):
            of = f"repeat {round_} of {args.repeat}"
            progress.step(f"{of}: scapy sendp(pkt) per packet, {args.loop_n} packets")
            rates["loop"].append(scapy_rate(frames["the peer"], args.loop_n, "loop"))
            benchrun.say(f"    {rates['loop'][-1]:,.0f} pps")
            progress.step(f"{of}: scapy sendp(list of {args.n}), one call")
            rates["list"].append(scapy_rate(frames["the peer"], args.n, "list"))
            benchrun.say(f"    {rates['list'][-1]:,.0f} pps")
            for sender, to in figures:
                progress.step(f"{of}: {WHAT[sender]}, unpaced, to {to}, {args.seconds:g} s")
                if binary is not None and sender == "ceiling":
                    rate, note = ceiling_rate(binary, frames[to], args.seconds)
                else:
                    rate, note = engine_rate(tg, frames[to], sender, args.seconds)
                rates[sender, to].append(rate)
                notes[sender, to].append(note)
                benchrun.say(f"    {rate:,.0f} pps; {note}")
        pacing = []
        for pps in RATES:
            progress.step(f"pacing: {pps:,} pps for {args.seconds:g} s")
            with tg.start_stream(
                PORT_A, frames["the peer"], PORT_B, pps=pps, duration=args.seconds
            ) as run:
                pacing.append((pps, run.wait(), run.tx_path or "?"))
    print()
    print(f"scapy sendp(pkt) per packet, loop of {args.loop_n}: {spread(rates['loop'])}")
    print(f"scapy sendp(list of {args.n}), one call:     {spread(rates['list'])}")
    for sender, to in figures:
        print(f"{WHAT[sender]}, unpaced, to {to}, {args.seconds:g} s:")
        print(f"    {spread(rates[sender, to])}")
        for note in notes[sender, to]:
            print(f"    {note}")
    median = {k: statistics.median(v) for k, v in rates.items()}
    if binary:
        for to in frames:
            for sender in ("auto", "ring", "send"):
                ratio = median[sender, to] / median["ceiling", to]
                verdict = "met" if ratio >= GOAL_CEILING else "NOT met"
                goal = f"  goal >= {GOAL_CEILING:.0%} {verdict}" if sender == "auto" else ""
                pair = f"{median[sender, to]:,.0f} / {median['ceiling', to]:,.0f} pps"
                print(f"{WHAT[sender]} / ceiling, to {to}: {ratio:6.1%}  ({pair}){goal}")
    for base, name in (("loop", "sendp per packet"), ("list", "sendp of a list")):
        ratio = median["auto", "the peer"] / median[base]
        verdict = "met" if ratio >= GOAL_RATIO else "NOT met"
        print(f"engine (auto) vs {name + ':':18} {ratio:10,.1f}x  goal >= {GOAL_RATIO}x {verdict}")
    print()
    print(f"pacing (auto path), {args.seconds:g} s streams")
    print(f"{'requested':>10} {'achieved':>12} {'error %':>8} {'sent':>8} {'lost':>6} {'path':>5}")
    worst = 0.0
    for pps, r, path in pacing:
        error = (r.rate_achieved_pps / pps - 1) * 100
        worst = max(worst, abs(error))
        print(f"{pps:>10,} {r.rate_achieved_pps:>12,.1f} {error:>+8.3f} {r.sent:>8}"
              f" {r.lost:>6} {path:>5}")  # fmt: skip
    print(f"worst pacing error: {worst:.3f} %  (goal <= 1 %)")
    print(f"{load()} at the end", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(benchrun.run(main))
