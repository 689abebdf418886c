"""Where guide 4's PVP result is bounded on the virtual lab: TG, vhost-user, or the DUT.

    .venv/bin/python benchmarks/pvp_limits.py [--topology topologies/virtual.yaml]
                                              [--frame 64] [--trial 2] [--no-vm]

In one run on one lab, each as a ratio of the others:

  1. the TG's own back-to-back NDR through the switch, no DUT (TG port p0 <-> p1, both
     ways, the same stream engine and MLRsearch as the PVP test);
  2. the raw vhost-user -> virtio_user rate with no NIC and no forwarding step: a host
     testpmd sends on a vhost-user port (txonly), a testpmd with a virtio_user port on
     that socket counts what arrives (rxonly); the rate is its Rx counter over the time;
  3. PVP NDR of the container variant, and of the vm variant (a TCG guest here).

Goal: the container variant's NDR within 90 % of the smaller of (1) and (2): then the
result is bounded by the TG or by vhost-user itself, not by how the suite builds PVP.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from framework.config import DEFAULT_TOPOLOGY, load_topology  # noqa: E402
from framework.dpdk.args import EalOptions, TestPmdOptions  # noqa: E402
from framework.dpdk.launch import launch_testpmd  # noqa: E402
from framework.dpdk.modes import ForwardingMode  # noqa: E402
from framework.dpdk.version import detect_dpdk_version  # noqa: E402
from framework.lab.hosts import provision  # noqa: E402
from framework.scenarios.pvp import Pvp  # noqa: E402
from framework.traffic.generator import TrafficGenerator  # noqa: E402
from framework.traffic.packets import udp_flow  # noqa: E402
from framework.traffic.trials import StreamTrials, TrialFlow, flow_markers, search_rates  # noqa: E402

GOAL = 0.90
RAW_SECONDS = 5.0


def ndr(trials: StreamTrials, lo: float, hi: float, trial_s: float) -> float:
    """NDR (pps) of a trial runner between lo and hi."""
    found = search_rates(trials, min_pps=lo, max_pps=hi, trial_s=trial_s, relative_width=0.1)
    return found.ndr.lower_pps or 0.0


def tg_back_to_back(tg: TrafficGenerator, a: str, b: str, frame: int, spec, trial_s: float):
    """NDR of the TG's two ports through the switch, both ways, no DUT."""
    # A source MAC of each flow's own: the engine ignores frames from the sending port's
    # MAC (a switch flooding them back), and here nothing swaps the addresses.
    flows = [
        TrialFlow(tx, rx, udp_flow(f"02:00:00:00:05:0{i}", "02:00:00:00:04:99", "198.18.6.1",
                                   "198.18.6.2", 5000 + i, 5001, seq=0, size=frame,
                                   marker=marker), marker)
        for i, ((tx, rx), marker) in enumerate(zip(((a, b), (b, a)), flow_markers(2), strict=True))
    ]  # fmt: skip
    return ndr(StreamTrials(tg, flows, frame), spec.min_pps, spec.max_pps * 10, trial_s)


def raw_vhost_rate(host, version, testpmd: str, frame: int) -> float:
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
        time.sleep(RAW_SECONDS)
        got = receiver.show_port_stats(0).rx_packets
        return got / (time.monotonic() - begin)
    finally:
        if receiver is not None:
            receiver.close()
        sender.close()
        host.session.run(["rm", "-f", socket], check=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topology", default=str(DEFAULT_TOPOLOGY))
    parser.add_argument("--frame", type=int, default=64)
    parser.add_argument("--trial", type=float, default=2.0, help="seconds per final trial")
    parser.add_argument("--no-vm", action="store_true", help="skip the (slow, TCG) vm variant")
    args = parser.parse_args()
    topology = load_topology(args.topology)
    spec = topology.pvp
    if spec is None:
        print(f"pvp_limits: topology {topology.name} has no pvp section", file=sys.stderr)
        return 2
    figures: dict[str, float] = {}
    with provision(topology) as hosts:
        host = hosts[spec.host]
        tg_host = next(h for h in hosts.values() if h.spec.role == "tg")
        tg = TrafficGenerator(tg_host.session, agent_dir=tg_host.work_dir)
        version = detect_dpdk_version(host.session, topology.dpdk.testpmd)
        p0, p1 = tg_host.data_port(0).interface, tg_host.data_port(1).interface
        print(f"pvp_limits: {topology.name}, DPDK {version}, {args.frame}-byte frames")
        figures["TG back-to-back (switch, no DUT)"] = tg_back_to_back(
            tg, p0, p1, args.frame, spec, args.trial
        )
        figures["vhost-user -> virtio_user raw, flat out (txonly/rxonly)"] = raw_vhost_rate(
            host, version, topology.dpdk.testpmd, args.frame
        )
        for variant in ("container", *(() if args.no_vm else ("vm",))):
            pvp = Pvp(topology, host, tg_host, version, variant)  # type: ignore[arg-type]
            try:
                pvp.start_host_testpmd()
                pvp.start_guest()
                trials = pvp.trials(tg, args.frame)
                figures[f"PVP NDR, {variant} variant"] = ndr(
                    trials, spec.min_pps, spec.max_pps, args.trial
                )
            finally:
                pvp.close()
    width = max(len(k) for k in figures)
    print(
        f"\n{'figure':<{width}}  {'kpps':>9}  "
        + "  ".join(f"/{i + 1}" for i in range(len(figures)))
    )
    names = list(figures)
    for i, name in enumerate(names):  # row i: the figure, then figure i / figure j
        ratios = "  ".join(
            f"{figures[name] / figures[other]:>5.2f}" if figures[other] else "  n/a"
            for other in names
        )
        print(f"{i + 1}. {name:<{width - 3}}  {figures[name] / 1e3:>9.1f}  {ratios}")
    bound = min(figures[names[0]], figures[names[1]])
    container = figures["PVP NDR, container variant"]
    share = container / bound if bound else 0.0
    limit = names[0] if figures[names[0]] <= figures[names[1]] else names[1]
    print(
        f"\ncontainer NDR is {share:.0%} of the smaller of 1 and 2 ({limit}); goal >= "
        f"{GOAL:.0%}: {'met' if share >= GOAL else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
