"""Where guide 4's PVP result is bounded on the virtual lab: TG, vhost-user, or the DUT.

    .venv/bin/python benchmarks/pvp_limits.py [--topology topologies/virtual.yaml]
                                              [--frame 64] [--trial 2] [--width 0.1]
                                              [--raw-seconds 5] [--no-vm]

In one run on one lab, each as a ratio of the others:

  1. the TG's own back-to-back NDR through the switch, no DUT (TG port p0 <-> p1, both
     ways, the same stream engine and MLRsearch as the PVP test);
  2. the raw vhost-user -> virtio_user rate with no NIC and no forwarding step: a host
     testpmd sends on a vhost-user port (txonly), a testpmd with a virtio_user port on
     that socket counts what arrives (rxonly); the rate is its Rx counter over the time;
  3. PVP NDR of the container variant, and of the vm variant (a TCG guest here).

Goal: the container variant's NDR within 90 % of the smaller of (1) and (2): then the
result is bounded by the TG or by vhost-user itself, not by how the suite builds PVP. An
NDR that reached the search's max_pps (the topology's, x10 for the TG alone) or that the
generator bounded is marked so: it is a lower bound, not the figure's own limit.

With the defaults it takes about 2 minutes here (the vm variant's TCG guest about half of
it), one numbered line per step and one line per search trial. SIGTERM or Ctrl-C closes
the testpmds, the guest and the lab (framework/report/benchrun.py).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from framework.config import load_topology  # noqa: E402
from framework.config.model import PvpBenchmark  # noqa: E402
from framework.dpdk.args import EalOptions, TestPmdOptions  # noqa: E402
from framework.dpdk.launch import launch_testpmd  # noqa: E402
from framework.dpdk.modes import ForwardingMode  # noqa: E402
from framework.dpdk.version import DpdkVersion, detect_dpdk_version  # noqa: E402
from framework.errors import FrameworkError  # noqa: E402
from framework.lab.hosts import HostHandle, provision  # noqa: E402
from framework.report import benchrun  # noqa: E402
from framework.report.benchrun import check_ndr_arguments, logged, ndr, ndr_parser  # noqa: E402
from framework.scenarios.pvp import Pvp, Variant  # noqa: E402
from framework.traffic.generator import TrafficGenerator  # noqa: E402
from framework.traffic.packets import udp_flow  # noqa: E402
from framework.traffic.trials import (  # noqa: E402
    StreamTrials,
    TrialFlow,
    flow_markers,
    rate_text,
)

GOAL = 0.90


def tg_back_to_back(
    tg: TrafficGenerator, a: str, b: str, frame: int, spec: PvpBenchmark, args: argparse.Namespace
) -> tuple[float, str]:
    """NDR of the TG's two ports through the switch, both ways, no DUT."""
    # A source MAC of each flow's own: the engine ignores frames from the sending port's
    # MAC (a switch flooding them back), and here nothing swaps the addresses.
    flows = [
        TrialFlow(tx, rx, udp_flow(f"02:00:00:00:05:0{i}", "02:00:00:00:04:99", "198.18.6.1",
                                   "198.18.6.2", 5000 + i, 5001, seq=0, size=frame,
                                   marker=marker), marker)
        for i, ((tx, rx), marker) in enumerate(zip(((a, b), (b, a)), flow_markers(2), strict=True))
    ]  # fmt: skip
    trials = logged(StreamTrials(tg, flows, frame), "TG back-to-back")
    return ndr(trials, spec.min_pps, spec.max_pps * 10, args.trial, args.width)


def raw_vhost_rate(
    host: HostHandle, version: DpdkVersion, testpmd: str, frame: int, seconds: float
) -> float:
    """Frames per second a txonly vhost-user port delivers to an rxonly virtio_user port."""
    socket = f"{host.work_dir}/bench-raw.sock"
    host.session.run(["rm", "-f", socket])
    sender, _ = launch_testpmd(
        host, "bench-vhost-tx",
        EalOptions(lcores="0-1", memory_mb=256, no_pci=True,
                   vdevs=[f"net_vhost0,iface={socket},queues=1"]),
        TestPmdOptions(nb_cores=1, forward_mode=ForwardingMode.TXONLY, total_num_mbufs=16384),
        binary=testpmd, version=version,
    )  # fmt: skip
    receiver = None
    try:
        receiver, _ = launch_testpmd(
            host, "bench-virtio-rx",
            EalOptions(lcores="0-1", memory_mb=256, no_pci=True, single_file_segments=True,
                       vdevs=[f"virtio_user0,path={socket},queues=1"],
                       extra=["--main-lcore", "1"]),
            TestPmdOptions(nb_cores=1, forward_mode=ForwardingMode.RXONLY, total_num_mbufs=16384),
            binary=testpmd, version=version,
        )  # fmt: skip
        sender.command(f"set txpkts {frame - 4}")  # testpmd's lengths exclude the FCS
        receiver.start()
        sender.start()
        time.sleep(1.0)
        receiver.clear_port_stats()
        begin = time.monotonic()
        time.sleep(seconds)
        got = receiver.show_port_stats(0).rx_packets
        return got / (time.monotonic() - begin)
    finally:
        if receiver is not None:
            receiver.close()
        sender.close()
        host.session.run(["rm", "-f", socket], check=False)


def arguments() -> argparse.Namespace:
    parser = ndr_parser(__doc__)
    parser.add_argument("--raw-seconds", type=float, default=5.0,
                        help="how long the raw vhost-user rate is counted (default 5)")  # fmt: skip
    parser.add_argument("--no-vm", action="store_true", help="skip the (slow, TCG) vm variant")
    args = parser.parse_args()
    check_ndr_arguments(parser, args)
    if not 0 < args.raw_seconds <= 600:
        parser.error("--raw-seconds must be above 0 and at most 600 s")
    return args


def main() -> int:
    args = arguments()
    try:
        topology = load_topology(args.topology)
    except FrameworkError as exc:
        print(f"pvp_limits: {exc}", file=sys.stderr)
        return 2
    spec = topology.pvp
    if spec is None:
        print(f"pvp_limits: topology {topology.name} has no pvp section", file=sys.stderr)
        return 2
    variants: list[Variant] = ["container"] if args.no_vm else ["container", "vm"]
    progress = benchrun.Progress(3 + 2 * len(variants))
    figures: dict[str, tuple[float, str]] = {}
    progress.step(f"lab: bringing up {topology.name}")
    with provision(topology) as hosts:
        host = hosts[spec.host]
        tg_host = next(h for h in hosts.values() if h.spec.role == "tg")
        tg = TrafficGenerator(tg_host.session, agent_dir=tg_host.work_dir)
        version = detect_dpdk_version(host.session, topology.dpdk.testpmd)
        p0, p1 = tg_host.data_port(0).interface, tg_host.data_port(1).interface
        benchrun.say(f"pvp_limits: {topology.name}, DPDK {version}, {args.frame}-byte frames")
        progress.step("TG back-to-back NDR through the switch, no DUT (a search)")
        figures["TG back-to-back (switch, no DUT)"] = tg_back_to_back(
            tg, p0, p1, args.frame, spec, args
        )
        progress.step(f"vhost-user -> virtio_user raw rate, {args.raw_seconds:g} s")
        raw = raw_vhost_rate(host, version, topology.dpdk.testpmd, args.frame, args.raw_seconds)
        figures["vhost-user -> virtio_user raw, flat out (txonly/rxonly)"] = (
            raw, rate_text(raw, None)
        )  # fmt: skip
        for variant in variants:
            pvp = Pvp(topology, host, tg_host, version, variant)
            try:
                progress.step(f"PVP {variant} variant: host testpmd and guest")
                pvp.start_host_testpmd()
                pvp.start_guest()
                progress.step(f"PVP {variant} variant: NDR (a search)")
                trials = logged(pvp.trials(tg, args.frame), f"PVP {variant}")
                figures[f"PVP NDR, {variant} variant"] = ndr(
                    trials, spec.min_pps, spec.max_pps, args.trial, args.width
                )
            finally:
                pvp.close()
    print_figures(figures)
    return 0


def print_figures(figures: dict[str, tuple[float, str]]) -> None:
    """Each figure in kpps, each as a ratio of every other, and the goal's verdict."""
    names = list(figures)
    width = max(len(k) for k in names) + 3
    print(
        f"\n{'figure':<{width}} {'kpps':>9}"
        + "".join(f" {f'/{i + 1}':>8}" for i in range(len(names)))
    )
    for i, name in enumerate(names):  # row i: the figure, then figure i / figure j
        pps, text = figures[name]
        ratios = "".join(
            f" {pps / figures[other][0]:>8.2f}" if figures[other][0] else f" {'n/a':>8}"
            for other in names
        )
        print(f"{f'{i + 1}. {name}':<{width}} {pps / 1e3:>9.1f}{ratios}  {text}")
    bound = min(figures[names[0]][0], figures[names[1]][0])
    container = figures["PVP NDR, container variant"][0]
    share = container / bound if bound else 0.0
    limit = names[0] if figures[names[0]][0] <= figures[names[1]][0] else names[1]
    print(
        f"\ncontainer NDR is {share:.0%} of the smaller of 1 and 2 ({limit}); goal >= "
        f"{GOAL:.0%}: {'met' if share >= GOAL else 'NOT met'}",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(benchrun.run(main))
