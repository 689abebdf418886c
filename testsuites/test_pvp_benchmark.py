"""Guide 4: the PVP reference benchmark with testpmd (chapter 4).

The host testpmd forwards between two NIC ports and two vhost-user ports (`set portlist
0,2,1,3`, io); the guest swaps MAC addresses between its two virtio ports (macswap,
chained, 256 descriptors). The guest is the QEMU VM of 4.2.5 (variant `vm`) or a
container testpmd with two virtio_user ports (variant `container`), whose virtio paths
are swept as DPDK's pvp_multi_paths plan does. For each, NDR and PDR per frame size with
MLRsearch, judged on every topology (a loss-free rate at or above pvp.min_pps, NDR at most
PDR), the guide's 4.4 results template, results.json, a table and a plot; where the
topology names a baseline, the regression gate too.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import allure
import pytest

from framework.config.model import PvpBenchmark, Topology
from framework.dpdk.verify import verify_forwarding, verify_pmd_settings, verify_queues
from framework.lab.tuning import verify_tuned
from framework.plugin import POOL_KEY, variant_id
from framework.report.attach import attach_image, attach_table, attach_text, step
from framework.report.benchmark import (
    PvpResult,
    ResultsTemplate,
    attach_tuning,
    gate,
    plot_results,
    record_result,
    recorded_results,
    update_baseline,
)
from framework.report.figures import record_figure
from framework.report.outcomes import fail_refused, skip_lacking, skip_not_applicable
from framework.report.plugin import run_directory
from framework.report.streams import attach_stream
from framework.scenarios.port_restart import PortRestart, restart_ports
from framework.scenarios.pvp import DEFAULT_PATH, Pvp, virtio_paths
from framework.traffic.checks import verify_frames_intact, verify_sender
from framework.traffic.generator import TrafficGenerator
from framework.traffic.packets import swap_macs
from framework.traffic.stream import StreamResult, WindowAccount
from framework.traffic.trials import (
    RateSearch,
    Trial,
    search_problem,
    search_rates,
    verify_search,
    verify_trial,
)
from framework.traffic.verify import verify_packets
from framework.traffic.windows import verify_clean_outside, verify_resumed, verify_silent
from framework.verify import verify, wait_for_dut
from framework.virt.verify import verify_vcpu_pins

pytestmark = [
    pytest.mark.guide(4),
    pytest.mark.virtio,
    pytest.mark.vhost,
    pytest.mark.benchmark,
    # rate searches: no other run's guide on the CPUs meanwhile
    pytest.mark.cpu_exclusive,
    allure.parent_suite("DPDK HowTo guides"),
    allure.suite("4 PVP reference benchmark setup using testpmd"),
]

VM_MARK = pytest.mark.vms("pvp_vm", why="guide 4's guest (4.2.5): two vhost-user NICs")
CONTAINER = pytest.mark.container
SETUPS = [
    *(pytest.param(("container", path, 1), id=f"container-{path.id}", marks=CONTAINER)
      for path in virtio_paths()),
    pytest.param(("container", DEFAULT_PATH, 2), id="container-split-mergeable-2q",
                 marks=CONTAINER),
    # QEMU sets mergeable buffers and the ring layout, the guest PMD takes `vectorized`;
    # virtio-net in QEMU 7.2 offers no IN_ORDER, so the in-order paths are container-only.
    *(pytest.param(("vm", path, 1), id=f"vm-{path.id}", marks=VM_MARK)
      for path in virtio_paths() if not path.in_order),
]  # fmt: skip
CHECK_FRAMES = 32  # frames per direction of the end-to-end check
GUEST_RESTARTS = 2  # the guest's ports restarted (the plans restart the host's only)
HOLD_S = 0.5  # ports kept stopped in each restart
BETWEEN_S = 1.5  # traffic before the first restart and after each
# The restart stream: a fifth of the NDR, at most 1000 pps: what matters is that it
# resumes, and over 30 s a path that holds the NDR for 1 s still drops a burst now and
# then at a higher rate (a TCG guest at half its NDR; a container at 4,300 pps while other
# runs shared the CPUs), where 1000 pps leaves a ring's worth of slack for a stall.
STREAM_SHARE, STREAM_MAX_PPS = 0.2, 1000.0
STREAM_MAX_S = 600  # the stream's bound; it is stopped after the last restart
# How soon after its start command the stream must be back (measured on the virtual lab:
# 23-60 ms in a container, 25-143 ms in a TCG guest at a fifth of its NDR).
RESUME_S = 1.0
RESTART_TRIAL_S = 2.0
RESTART_SHARE = 0.85  # after the restarts, within 15 % of the NDR found before


def _frame_sizes(config: pytest.Config) -> list[int]:
    pool = config.stash.get(POOL_KEY, [])
    # Every xdist worker collects the same items: take them from the pool's first testbed.
    spec = pool[0].pvp if pool else None
    return spec.frame_sizes if spec is not None else [64]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Frame sizes from the topology's pvp section (a short list on the virtual lab)."""
    if "frame_bytes" in metafunc.fixturenames:
        sizes = _frame_sizes(metafunc.config)
        metafunc.parametrize("frame_bytes", sizes, ids=[f"{s}B" for s in sizes])


def topology_selection(item: pytest.Item, topology: Topology) -> str | None:
    """Why the topology's declared selection leaves this test out (None: it runs).

    Called at collection (framework.plugin): the rate searches of set-ups other than the
    guide's (its path, one queue pair) run at pvp.other_paths_frame_sizes only, the port restarts on
    pvp.restart_setups only: declared choices for time, not skips.
    """
    callspec = getattr(item, "callspec", None)
    if topology.pvp is None or callspec is None:
        return None
    setups = topology.pvp.restart_setups
    if item.originalname == "test_vhost_port_restart" and setups is not None:  # type: ignore[attr-defined]
        if variant_id(item) in setups:
            return None
        return (
            f"topology {topology.name}: pvp.restart_setups {setups}, the ports of these "
            "set-ups only are restarted (time)"
        )
    params = callspec.params
    if "pvp" not in params or "frame_bytes" not in params:
        return None
    _, path, queues = params["pvp"]
    # the guide's own set-up: split-mergeable with one queue pair (4.2.4's --rxq=1 --txq=1)
    sizes = topology.pvp.selected_sizes(path == DEFAULT_PATH and queues == 1)
    if params["frame_bytes"] in sizes:
        return None
    return (
        f"topology {topology.name}: pvp.other_paths_frame_sizes {sizes}, set-ups other than "
        f"{DEFAULT_PATH.id} with one queue pair are measured at these sizes only (time)"
    )


@pytest.fixture(scope="module")
def spec(topology: Topology) -> PvpBenchmark:
    """The topology's PVP wiring; the guide is skipped without one."""
    if topology.pvp is None:
        skip_lacking(
            f"topology {topology.name} has no pvp section (guide 4: two host NIC ports, each "
            "cabled to a TG port)"
        )
    return topology.pvp


@pytest.fixture(scope="module", params=SETUPS)
def pvp(
    request: pytest.FixtureRequest,
    spec: PvpBenchmark,
    topology: Topology,
    hosts,
    tg_host,
    dpdk_version,
) -> Iterator[Pvp]:
    """4.2.4 and 4.3.3: the host testpmd, then the guest (VM or container) forwarding."""
    variant, path, queues = request.param
    setup = Pvp(topology, hosts[spec.host], tg_host, dpdk_version, variant, path, queues)
    if path.packed and path.vectorized and not setup.host_has_avx512():
        skip_lacking(f"{path.id}: DPDK's packed-ring vectorized path needs AVX512; "
                    f"{spec.host}'s CPU has no avx512f")  # fmt: skip
    try:
        with step("4.2.4: testpmd on the host: two NIC ports, two vhost-user ports, "
                  "`set portlist 0,2,1,3`, io, start"):  # fmt: skip
            setup.start_host_testpmd()
        guest = "4.2.5/4.3.3: the VM" if variant == "vm" else "the container (virtio_user)"
        with step(f"{guest}: testpmd macswap, chained, 256 descriptors ({path.id})"):
            setup.start_guest()
        attach_text("command lines", "\n".join(" ".join(r.argv) for r in setup.launches))
        refused = setup.vectorized_refused() if path.vectorized else None
        if refused and path.rx_path not in setup.rx_paths().values():
            # What the path needs of the host was checked above (AVX512 for packed): a PMD
            # that then turns the path down is the DUT refusing the variant, not a testbed
            # lacking something, and must not leave the row as an expected skip.
            fail_refused(f"{path.id}: the virtio PMD did not take the vectorized path: {refused}")
        yield setup
    finally:
        setup.close()


@dataclass(frozen=True)
class Searched:
    """One NDR/PDR search of a set-up at one frame size, as reported."""

    result: PvpResult
    found: RateSearch


@pytest.fixture(scope="module")
def searches(pvp: Pvp) -> dict[int, Searched]:
    """The set-up's searches by frame size, made by whichever test needs one first.

    test_ndr_and_pdr fills it; a test needing the NDR that runs without it (`-k restart`)
    searches itself. One per set-up (it follows the pvp fixture), none shared beyond it.
    """
    return {}


def test_testpmds_chain_the_pvp_path(pvp: Pvp) -> None:
    """The host chains NIC0<->vhost0 and NIC1<->vhost1; the guest chains its two ports.

    Steps:
        `show config fwd` on the host and in the guest; the guest PMD's log.

    Verify:
        Host: io forwarding, streams 0->2, 2->0, 1->3, 3->1 (ports 0, 1 the NICs; 2, 3 the
        vhost-user ports), as `set portlist 0,2,1,3` makes them. Guest: macswap, port 0 ->
        1 and 1 -> 0. The guest's virtio PMD took the Rx path the parameter asks for.
    """
    with step("Host: show config fwd"):
        host = pvp.host_forwarding()
        nics, vhosts = pvp.switch.nic_ports, pvp.switch.vhost_ports
        want = {(n, v) for n, v in zip(nics, vhosts, strict=True)}
        want |= {(v, n) for n, v in want}
        attach_text("host show config fwd", repr(host))
        verify_forwarding(
            host,
            "guide 4.2.4: --forward-mode=io; `set portlist 0,2,1,3` chains each NIC with its "
            "vhost-user port",
            mode="io",
            paths=want,
        )
    with step("Guest: show config fwd"):
        guest = pvp.guest_pmd.show_config_fwd()
        attach_text("guest show config fwd", repr(guest))
        verify_forwarding(
            guest,
            "guide 4.3.3: macswap, --port-topology=chained over two ports (0->1, 1->0)",
            mode="macswap",
            paths=[(0, 1), (1, 0)],
        )
    with step(f"Guest: the virtio PMD uses the {pvp.path.rx_path} Rx path"):
        paths = pvp.rx_paths()
        attach_text("guest Rx paths", repr(paths))
        verify(
            paths and set(paths.values()) == {pvp.path.rx_path},
            f"{pvp.path.id} ({pvp.path.devargs}): expected the {pvp.path.rx_path} Rx path on "
            f"both ports; the PMD logged {paths or 'none'}",
        )


def test_testpmds_run_with_the_guides_settings(pvp: Pvp) -> None:
    """Both testpmds forward as 4.2.4 and 4.3.3 set them up, as they report it themselves.

    Steps:
        `show config cores`, `show config rxtx` and `show port N rss-hash` of the host's
        and of the guest's testpmd; the CPUs each machine's kernel isolates (4.2.1, 4.3.1).

    Verify:
        Host (4.2.4, `-l 0,2,3,4,5 --rxq=1 --txq=1 --nb-cores=4`): its PMD lcores are
        pvp.host_lcores but the main one, on CPUs its kernel isolates where the topology
        names pvp.isolated_cpus ("isolated CPUs 2 to 5 will be used as lcores for PMD
        threads"); one queue each way per port (the set-up's count); no RSS with one queue.
        Guest (4.3.3, `-l 0,1,2 --rxq=1 --txq=1 --rxd=256 --txd=256 --disable-rss
        --nb-cores=2`): its PMD lcores are pvp.guest_lcores but the main one, isolated in
        the guest the suite boots (4.3.1 isolcpus); one queue each way; 256 descriptors
        each way; RSS off. The guest the suite boots is tuned as 4.3.1 says (isolcpus at
        boot; NMI watchdog off, writeback and IRQs off the PMD CPUs, but for IRQs its
        kernel will not move). VM (4.2.5, `qmp-vcpu-pin`): where the topology names vcpu_pins,
        each vCPU's thread runs on its CPU only, as the host's kernel reports it.
    """
    with step("Host (4.2.4): forwarding lcores, queues and RSS as the host testpmd reports"):
        verify_pmd_settings(
            pvp.host_settings(),
            "guide 4.2.4: isolated CPUs used as lcores for PMD threads, --rxq=1 --txq=1",
            pvp.host_guide_settings(),
        )
    with step("Guest (4.3.3): forwarding lcores, queues, descriptors and RSS as it reports"):
        verify_pmd_settings(
            pvp.guest_settings(),
            "guide 4.3.3: --rxq=1 --txq=1 --rxd=256 --txd=256 --disable-rss, PMD lcores isolated",
            pvp.guest_guide_settings(),
        )
    tuned = pvp.guest_tuning() if pvp.guest_isolates_its_lcores else None
    with step("4.3.1: the guest's tuning as its kernel reports it" if tuned else
              "4.3.1: not applied (a container, or a disk image's own kernel)"):  # fmt: skip
        if tuned:
            attach_tuning({"guest": tuned})
            verify_tuned(
                tuned,
                "guide 4.3.1: isolcpus, NMI watchdog off, writeback and IRQs off the PMD CPUs",
            )
    pins = pvp.vcpu_pins
    with step(f"4.2.5: the VM's vCPUs pinned to host CPUs {pins} (qmp-vcpu-pin)" if pins else
              "4.2.5: vCPUs not pinned (no VM, or the topology names no vcpu_pins)"):  # fmt: skip
        if pins:
            verify_vcpu_pins(
                pvp.vcpu_affinity(), "guide 4.2.5: qmp-vcpu-pin puts each vCPU on its CPU", pins
            )


def test_frames_cross_the_pvp_path_each_way(pvp: Pvp, traffic_generator: TrafficGenerator) -> None:
    """Before measuring: a few frames cross each way, MACs swapped by the guest.

    Steps:
        32 frames of 64 bytes from TG port 0, then 32 from TG port 1.

    Verify:
        Each arrives exactly once on the other TG port, byte for byte with its MAC
        addresses swapped, and nothing comes back on the port that sent it.
    """
    a, b = pvp.tg_ports
    for tx, rx in ((a, b), (b, a)):
        with step(f"{CHECK_FRAMES} frames TG {tx} -> DUT -> TG {rx}"):
            frames = pvp.check_frames(traffic_generator, tx, CHECK_FRAMES)
            verify_packets(traffic_generator, frames, tx, rx, swap_macs, silent_ports=[tx])


def test_ndr_and_pdr(
    pvp: Pvp,
    spec: PvpBenchmark,
    frame_bytes: int,
    traffic_generator: TrafficGenerator,
    searches: dict[int, Searched],
    request: pytest.FixtureRequest,
) -> None:
    """NDR (0 % loss) and PDR (pvp.pdr_loss_ratio) at one frame size, reported as 4.4 asks.

    Steps:
        MLRsearch between pvp.min_pps and pvp.max_pps, traffic both ways, final trials of
        pvp.trial_s seconds; the host's (and the VM's) tuning read.

    Verify:
        A loss-free rate at or above pvp.min_pps exists (else the first lossy trial is
        named), and NDR is at most PDR. The report has every trial (frames intended,
        sent, received, lost), NDR and PDR (kpps, Mbit/s, % of line rate where there is
        one; "generator-bound: >= X" where the generator, not the DUT, stopped the
        search), the guide's results template and the plot of the run's results. Where
        the topology names a baseline, NDR is within its tolerance of the baseline's
        (with --update-baseline the result becomes the baseline instead).
    """
    if frame_bytes not in spec.frame_sizes:
        skip_not_applicable(f"{frame_bytes} B is not in this testbed's pvp.frame_sizes")
    searched = _search(pvp, spec, frame_bytes, traffic_generator, searches, request)
    result = searched.result
    # A rate bounded by the generator or the search's ceiling is a lower bound, not the
    # DUT's figure: it is recorded apart, so that no comparison takes it for one.
    bound = {"ndr": result.ndr_limit, "pdr": result.pdr_limit}
    for name, value in (("NDR", result.ndr_pps), ("PDR", result.pdr_pps)):
        limit = bound[name.lower()]
        label = name if limit is None else f"{name} ({limit}-bound, lower bound)"
        record_figure(label, value, "pps", better="higher", tolerance=0.2)
    with step(f"Verify: a loss-free rate at or above pvp.min_pps ({spec.min_pps:,.0f} pps), "
              "NDR <= PDR"):  # fmt: skip
        verify_search(searched.found, f"guide 4.4: {result.key}", spec.min_pps)
    baseline = spec.baseline
    if baseline is None:
        return
    baseline = baseline if baseline.is_absolute() else request.config.rootpath / baseline
    if request.config.getoption("--update-baseline"):
        with step(f"--update-baseline: {result.key} into {baseline}"):
            update_baseline(baseline, result)
        return
    with step(f"Regression gate: NDR against {baseline} (tolerance {spec.tolerance:.0%})"):
        problem = gate(result, baseline, spec.tolerance)
        verify(problem is None, problem or "")


def _search(
    pvp: Pvp,
    spec: PvpBenchmark,
    frame_bytes: int,
    tg: TrafficGenerator,
    searches: dict[int, Searched],
    request: pytest.FixtureRequest,
) -> Searched:
    """The set-up's NDR/PDR search at frame_bytes: made and reported once, then reused."""
    if frame_bytes in searches:
        return searches[frame_bytes]
    trials = pvp.trials(tg, frame_bytes)

    def trial(rate: float, seconds: float) -> Trial:
        with step(f"Trial: {rate:,.0f} pps of {frame_bytes}-byte frames for {seconds:g} s"):
            return trials(rate, seconds)

    started = pvp.now()
    found = search_rates(
        trial, min_pps=spec.min_pps, max_pps=spec.max_pps, trial_s=spec.trial_s,
        relative_width=spec.relative_width, pdr_loss_ratio=spec.pdr_loss_ratio,
    )  # fmt: skip
    minutes = (pvp.now() - started) / 60
    tuning = pvp.tuning()
    attach_tuning(tuning)
    untuned = [f"{where}: {what}" for where, t in tuning.items() for what in t.untuned()]
    result = PvpResult.from_search(
        found, variant=pvp.variant, path=pvp.path.id, queues=pvp.queues,
        frame_bytes=frame_bytes, pdr_loss_ratio=spec.pdr_loss_ratio,
        line_rate_gbps=spec.line_rate_gbps, untuned=untuned,
    )  # fmt: skip
    template = pvp.results_template(tg, spec, minutes, tuning)
    with step(f"Result: NDR {result.ndr_text}, PDR {result.pdr_text}"):
        _report(result, found.trials, template, request)
    searches[frame_bytes] = Searched(result, found)
    return searches[frame_bytes]


def test_every_queue_carries_traffic(
    pvp: Pvp, spec: PvpBenchmark, traffic_generator: TrafficGenerator
) -> None:
    """With two queues, traffic crosses the vhost-user/virtio ports on every queue.

    Steps:
        A trial at pvp.min_pps with two streams per direction (distinct addresses).

    Verify:
        Nothing is lost; on each queue the host's vhost ports and the guest's ports both
        sent and received packets.
    """
    if pvp.queues < 2:
        skip_not_applicable("one queue pair: see the two-queue set-up")
    pvp.clear_stats()
    with step(f"Trial: {spec.min_pps:,.0f} pps for 1 s, {2 * pvp.queues} streams"):
        trial = pvp.trials(traffic_generator, spec.frame_sizes[0])(spec.min_pps, 1.0)
    verify_trial(trial, "every queue pair's streams cross the DUT whole at the lowest rate")
    rows = pvp.queue_counts()
    attach_table(
        "per-queue packets",
        ["queue", "host vhost TX", "guest RX", "guest TX", "host vhost RX"],
        [[q, *counts] for q, counts in enumerate(rows)],
    )
    verify_queues(
        rows,
        f"{2 * pvp.queues} streams use all {pvp.queues} queues, both ways",
        ["host vhost TX", "guest RX", "guest TX", "host vhost RX"],
    )


def test_vhost_port_restart(
    pvp: Pvp,
    spec: PvpBenchmark,
    traffic_generator: TrafficGenerator,
    searches: dict[int, Searched],
    request: pytest.FixtureRequest,
) -> None:
    """Ports stopped and started under traffic, as DPDK's port-restart plans do.

    Steps:
        The set-up's NDR at the first frame size (test_ndr_and_pdr's, or searched here when
        run without it). With a sequenced stream crossing the path at a fifth of that NDR
        (at most STREAM_MAX_PPS): pvp.restart_rounds times stop the host's vhost-user
        ports, keep them stopped HOLD_S, start them; GUEST_RESTARTS times the same with
        the guest's ports. Then a trial at the NDR, one flow per direction and queue.

    Verify:
        There is an NDR (as test_ndr_and_pdr judges it); no frame arrives while ports are
        stopped; after each start the stream is back within RESUME_S; every frame arrives
        whole and in order, nothing is lost or duplicated outside the restarts (after
        each restart the path carries the stream's rate without loss); after the last
        one the NDR trial receives within 15 % of the NDR, and with two queues every
        queue carries traffic on both sides both ways.
    """
    size = spec.frame_sizes[0]
    searched = _search(pvp, spec, size, traffic_generator, searches, request)
    problem = search_problem(searched.found, spec.min_pps)
    verify(problem is None, f"no NDR to restart at: {searched.result.key}: {problem}")
    ndr = searched.result.ndr_pps
    pps = min(STREAM_SHARE * ndr, STREAM_MAX_PPS)
    host = ("the host's vhost-user ports", pvp.stop_host_vhost_ports, pvp.start_host_vhost_ports)
    guest = ("the guest's ports", pvp.stop_guest_ports, pvp.start_guest_ports)
    plan = [(n, host) for n in range(1, spec.restart_rounds + 1)]
    plan += [(n, guest) for n in range(1, GUEST_RESTARTS + 1)]
    with step(f"A stream at {pps:,.0f} pps; {spec.restart_rounds} restarts of the host's "
              f"vhost-user ports, {GUEST_RESTARTS} of the guest's"):  # fmt: skip
        with pvp.stream(traffic_generator, pps)(duration=STREAM_MAX_S) as run:
            run.wait_started()
            wait_for_dut(BETWEEN_S)
            restarts = []
            for round_, (what, stop, start) in plan:
                restarts.append(restart_ports(what, round_, stop, start, HOLD_S))
                wait_for_dut(BETWEEN_S)
            run.stop()
        stream = run.wait()
    verify_sender(stream, "the restart stream judges the path")
    _verify_restarts(stream, restarts)
    with step(f"After the last restart: {ndr:,.0f} pps (NDR) for {RESTART_TRIAL_S:g} s"):
        pvp.clear_stats()
        again = pvp.trials(traffic_generator, size)(ndr, RESTART_TRIAL_S)
        verify(
            again.received_pps >= RESTART_SHARE * ndr,
            f"after {len(restarts)} restarts the rate comes back within 15 % of NDR {ndr:,.0f} pps",
            seen=f"received {again.received_pps:,.0f} pps ({again.lost} of {again.sent} lost)",
        )
        if pvp.queues > 1:
            verify_queues(
                pvp.queue_counts(),
                f"after the restarts {2 * pvp.queues} streams use all {pvp.queues} queues, "
                "both ways",
                ["host vhost TX", "guest RX", "guest TX", "host vhost RX"],
            )


def _verify_restarts(stream: StreamResult, restarts: list[PortRestart]) -> None:
    """Silence while stopped, back after each start, nothing amiss outside the restarts."""
    account = stream.account(*(r.window(stream) for r in restarts))
    attach_stream("stream across the port restarts", stream, [w.window for w in account.windows])
    attach_table(
        "port restarts in traffic",
        ["restart", "stopped (s)", "outage (ms)", "frames lost", "back after start (ms)"],
        [[r.name, f"{r.start_at - r.stopped_at:.2f}", f"{w.downtime_ms:.1f}", w.lost,
          _back_after(stream, r, w)] for r, w in zip(restarts, account.windows, strict=True)],
    )  # fmt: skip
    with step("Every frame crosses the path whole and in order, the restarts included"):
        verify_frames_intact(stream, "traffic crosses the path across the port restarts")
    with step("Nothing arrives while the ports are stopped"):
        for restart in restarts:
            verify_silent(
                stream,
                *restart.stopped_span(stream),
                f"{restart.what} stopped: no traffic crosses (restart {restart.round})",
            )
    with step(f"The stream is back within {RESUME_S:g} s of each start"):
        for restart, window in zip(restarts, account.windows, strict=True):
            verify_resumed(window, f"after {restart.name} the stream resumes", within_s=RESUME_S)
    with step("Nothing is lost, duplicated or reordered outside the restarts"):
        verify_clean_outside(account, "the path forwards unharmed between the restarts")


def _back_after(stream: StreamResult, restart: PortRestart, window: WindowAccount) -> str:
    """How long after the start command the stream's outage in the window ended."""
    if window.outage is None:
        return "no outage"
    if window.outage.open_ended:
        return "never"
    return f"{(window.outage.end_s - stream.at(restart.start_at)) * 1000:.0f}"


def _report(result: PvpResult, trials: list[Trial], template: ResultsTemplate, request) -> None:
    """Every trial, the table, the template, results.json and the plot of the run so far."""
    attach_table(
        f"rate trials ({result.key})",
        ["offered pps", "seconds", "intended", "sent", "received", "lost", "loss %",
         "TG sent pps"],
        [[f"{t.offered_pps:,.0f}", f"{t.duration_s:.1f}", t.intended, t.sent, t.received,
          t.lost, f"{100 * t.loss_ratio:.3f}",
          f"{t.achieved_pps:,.0f}" + (f" (TG limit: {t.unsent} unsent)" if t.unsent else
                                      " (TG limit)" if t.generator_limited else "")]
         for t in trials],
    )  # fmt: skip

    def share(pps: float) -> str:
        part = result.line_rate_share(pps)
        return "no line rate (virtual ports)" if part is None else f"{100 * part:.1f} %"

    def mpps(pps: float, limit: str | None) -> str:
        return f"{pps / 1e6:.4f}" if limit is None else f">= {pps / 1e6:.4f} ({limit}-bound)"

    attach_table(
        f"result ({result.key})",
        ["frame bytes", "NDR Mpps", "NDR Mbit/s", "NDR % of line rate", "PDR Mpps",
         f"PDR loss ≤ {100 * result.pdr_loss_ratio:g} %", "tuning"],
        [[result.frame_bytes, mpps(result.ndr_pps, result.ndr_limit),
          f"{result.ndr_mbit_s:.1f}", share(result.ndr_pps),
          mpps(result.pdr_pps, result.pdr_limit), share(result.pdr_pps),
          "untuned" if result.untuned else "tuned"]],
    )  # fmt: skip
    attach_text(
        f"4.4 results template ({result.key})",
        template.render(result.ndr_mpps, result.untuned, result.ndr_limit),
    )
    directory = run_directory(request.config)
    if directory is None:
        return
    pvp_dir = directory / "pvp"
    record_result(pvp_dir, result, template, {"guide": "4"})
    png = plot_results(recorded_results(pvp_dir), pvp_dir / "pvp.png", "PVP NDR / PDR")
    attach_image("NDR and PDR per frame size (this run)", png)
