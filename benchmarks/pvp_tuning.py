"""What guide 4's tuning buys on this lab: PVP NDR of the vm variant untuned, tuned, pinned.

    .venv/bin/python benchmarks/pvp_tuning.py [--topology topologies/virtual.yaml]
                                              [--frame 64] [--trial 2] [--width 0.1]
                                              [--pins 0,1] [--forms untuned,tuned,pinned]

Chapter 4 prescribes tuning (4.2.1 on the host, 4.3.1 in the guest, 4.2.5's vCPU pinning)
and says nothing of what it is worth; the test suite checks that it is applied
(test_testpmds_run_with_the_guides_settings), this measures its effect. Each form boots
the guest afresh and searches the NDR (MLRsearch, the PVP test's trials) at one frame size:

  untuned  the built-in guest without 4.3.1 (no isolcpus, no runtime steps), vCPUs float;
  tuned    4.3.1 applied (isolcpus for the guest's PMD lcores, NMI watchdog off,
           writeback workqueue and IRQs moved off them), vCPUs float;
  pinned   4.3.1 and each vCPU thread pinned to a host CPU (QMP query-cpus-fast + taskset),
           the topology's vcpu_pins or --pins.

Each NDR is printed with its ratio to the untuned one measured in the same run. The host's
own 4.2.1 steps (its kernel command line, its IRQs) are never applied by the suite: the
host's tuning as its kernel reports it is printed beside the figures.

On the virtual lab (2 CPUs, TCG) pinning costs more than it gives: the TCG vCPU threads,
QEMU's I/O thread, the host testpmd and the TG share two CPUs. With the defaults it takes
about 3 minutes here, one numbered line per step and one line per search trial; SIGTERM or
Ctrl-C closes the testpmds, the guest and the lab (framework/report/benchrun.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from framework.config import load_topology  # noqa: E402
from framework.config.model import Topology  # noqa: E402
from framework.dpdk.version import detect_dpdk_version  # noqa: E402
from framework.errors import FrameworkError  # noqa: E402
from framework.lab.hosts import provision  # noqa: E402
from framework.lab.tuning import Tuning  # noqa: E402
from framework.report import benchrun  # noqa: E402
from framework.report.benchrun import check_ndr_arguments, logged, ndr, ndr_parser  # noqa: E402
from framework.scenarios.pvp import Pvp  # noqa: E402
from framework.traffic.generator import TrafficGenerator  # noqa: E402

FORMS = ("untuned", "tuned", "pinned")


def arguments() -> argparse.Namespace:
    parser = ndr_parser(__doc__)
    parser.add_argument("--pins", default="",
                        help="host CPUs for the vCPUs of the pinned form, e.g. 0,1 (default: "
                             "the topology's vcpu_pins, else CPUs 0..n-1)")  # fmt: skip
    parser.add_argument(
        "--forms",
        default=",".join(FORMS),
        help=f"which forms to measure, of {','.join(FORMS)} (default: all)",
    )
    args = parser.parse_args()
    check_ndr_arguments(parser, args)
    args.forms = [f.strip() for f in args.forms.split(",") if f.strip()]
    if not args.forms or any(f not in FORMS for f in args.forms):
        parser.error(f"--forms takes some of {', '.join(FORMS)}, got {','.join(args.forms)}")
    try:
        args.pins = [int(c) for c in args.pins.split(",")] if args.pins else None
    except ValueError:
        parser.error(f"--pins takes CPU numbers separated by commas, got {args.pins!r}")
    return args


def with_pins(topology: Topology, pins: list[int] | None, pinned: bool) -> Topology:
    """The topology with pvp.vm's vcpu_pins set (pinned) or cleared (floating)."""
    assert topology.pvp is not None and topology.pvp.vm is not None
    vm = topology.vms[topology.pvp.vm]
    chosen = (pins or vm.vcpu_pins or list(range(vm.vcpus))) if pinned else None
    if chosen is not None and len(chosen) != vm.vcpus:
        raise FrameworkError(f"--pins names {len(chosen)} CPUs for {vm.vcpus} vCPUs")
    vms = {**topology.vms, topology.pvp.vm: vm.model_copy(update={"vcpu_pins": chosen})}
    return topology.model_copy(update={"vms": vms})


def tuning_line(tuning: Tuning) -> str:
    isolated = ",".join(map(str, sorted(tuning.isolated))) or "none"
    watchdog = {None: "unread", 0: "off"}.get(tuning.nmi_watchdog, "on")
    return f"isolated CPUs {isolated}, NMI watchdog {watchdog}"


def main() -> int:
    args = arguments()
    try:
        topology = load_topology(args.topology)
    except FrameworkError as exc:
        print(f"pvp_tuning: {exc}", file=sys.stderr)
        return 2
    if topology.pvp is None or topology.pvp.vm is None:
        print(f"pvp_tuning: topology {topology.name} has no pvp.vm (guide 4's VM)", file=sys.stderr)
        return 2
    spec = topology.pvp
    progress = benchrun.Progress(1 + 2 * len(args.forms))
    figures: dict[str, tuple[float, str, str]] = {}
    progress.step(f"lab: bringing up {topology.name}")
    with provision(topology) as hosts:
        host = hosts[spec.host]
        tg_host = next(h for h in hosts.values() if h.spec.role == "tg")
        tg = TrafficGenerator(tg_host.session, agent_dir=tg_host.work_dir)
        version = detect_dpdk_version(host.session, topology.dpdk.testpmd)
        benchrun.say(f"pvp_tuning: {topology.name}, DPDK {version}, {args.frame}-byte frames")
        for form in args.forms:
            shaped = with_pins(topology, args.pins, pinned=form == "pinned")
            pvp = Pvp(shaped, host, tg_host, version, "vm", tune_guest=form != "untuned")
            try:
                progress.step(f"{form}: host testpmd and guest")
                pvp.start_host_testpmd()
                pvp.start_guest()
                if not figures:
                    benchrun.say(f"  host {host.name}: {tuning_line(pvp.tuning()[host.name])} "
                                 "(4.2.1 is the host's own; never applied)")  # fmt: skip
                guest = pvp.guest_tuning()
                pins = pvp.vcpu_affinity()
                applied = (f"guest: {tuning_line(guest)}" if guest else "guest: not read") + (
                    "; vCPUs " + ", ".join(f"{v}->{sorted(c)}" for v, c in sorted(pins.items()))
                )
                benchrun.say(f"  {form}: {applied}")
                progress.step(f"{form}: NDR (a search)")
                pps, text = ndr(logged(pvp.trials(tg, args.frame), form), spec.min_pps,
                                spec.max_pps, args.trial, args.width)  # fmt: skip
                figures[form] = (pps, text, applied)
            finally:
                pvp.close()
    print_figures(figures)
    return 0


def print_figures(figures: dict[str, tuple[float, str, str]]) -> None:
    """Each form's NDR in kpps and as a ratio of the first form's (the untuned, by default)."""
    base_name = next(iter(figures))
    base = figures[base_name][0]
    print(f"\n{'form':<10} {'kpps':>9} {f'/{base_name}':>10}  NDR")
    for form, (pps, text, _) in figures.items():
        ratio = f"{pps / base:>10.2f}" if base else f"{'n/a':>10}"
        print(f"{form:<10} {pps / 1e3:>9.1f} {ratio}  {text}", flush=True)


if __name__ == "__main__":
    sys.exit(benchrun.run(main))
