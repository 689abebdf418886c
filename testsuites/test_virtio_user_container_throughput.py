"""Guide 6's two forms measured: NDR per frame size, single queue and queues=2.

As DPDK's container test plan reports them: the guide's set-up (a host testpmd with a
vhost-user port and the NIC, a container testpmd with virtio_user, macswap), traffic from
the TG through both and back, through the same rate-trial interface and MLRsearch as
guide 4's PVP benchmark. Figures, not pass/fail, apart from "nothing lost at the lowest
rate". In a module of its own so that guide 6's functional module stays quick.
"""

from __future__ import annotations

from collections.abc import Iterator

import allure
import pytest

from framework.config.model import Topology
from framework.dpdk.version import DpdkVersion
from framework.lab.hosts import HostHandle
from framework.report.attach import attach_table, step
from framework.report.figures import record_figure
from framework.scenarios.container_networking import ContainerNetworking
from framework.traffic.generator import TrafficGenerator
from framework.traffic.trials import RateSearch, search_rates, verify_trial

pytestmark = [
    pytest.mark.guide(6),
    pytest.mark.virtio,
    pytest.mark.vhost,
    pytest.mark.container,
    pytest.mark.benchmark,
    pytest.mark.cpu_exclusive,
    allure.parent_suite("DPDK HowTo guides"),
    allure.suite("6 virtio_user for container networking"),
]

FORMS = [pytest.param(1, id="single-queue"), pytest.param(2, id="queues-2")]
MIN_PPS, MAX_PPS = 1000, 40000


@pytest.fixture(scope="module", params=FORMS)
def guide(
    request: pytest.FixtureRequest, host_server_1: HostHandle, dpdk_version: DpdkVersion, topology
) -> Iterator[ContainerNetworking]:
    """Steps 1-5 of guide 6 in one of its forms."""
    setup = ContainerNetworking(
        host_server_1, dpdk_version, topology.dpdk, request.param,
        hugepage_mount=host_server_1.spec.hugepages.mount,
    )  # fmt: skip
    try:
        with step(f"Steps 1-5 with queues={request.param}"):
            setup.build_image()
            setup.start_host_testpmd()
            setup.start_container_testpmd()
            setup.wait_vhost_link_up()
        yield setup
    finally:
        setup.close()


@pytest.fixture(scope="module")
def searches() -> dict[tuple[int, int], RateSearch]:
    """The searches of this module so far, by (queues, frame size): the report compares
    the two forms once both ran (a report only: no verdict depends on another test)."""
    return {}


def _sizes(config: pytest.Config) -> list[int]:
    from framework.plugin import POOL_KEY

    pool = config.stash.get(POOL_KEY, [])
    return pool[0].pvp.frame_sizes if pool and pool[0].pvp is not None else [64]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Frame sizes from the topology's pvp section, as guide 4 uses."""
    if "frame_bytes" in metafunc.fixturenames:
        sizes = _sizes(metafunc.config)
        metafunc.parametrize("frame_bytes", sizes, ids=[f"{s}B" for s in sizes])


def test_throughput(
    guide: ContainerNetworking,
    topology: Topology,
    frame_bytes: int,
    traffic_generator: TrafficGenerator,
    tg_port: str,
    searches: dict[tuple[int, int], RateSearch],
) -> None:
    """NDR and PDR of one form at one frame size.

    Steps:
        A trial at MIN_PPS; MLRsearch between MIN_PPS and MAX_PPS as the topology's
        `rate_searches` says (trial length, width), one stream per queue,
        TG -> host NIC -> vhost-user -> container (macswap) -> back to the same TG port.

    Verify:
        Nothing is lost at MIN_PPS. The report has NDR and PDR in kpps and Mbit/s, every
        trial, and with both forms run the two-queue NDR against the single-queue one.
    """
    trials = guide.trials(traffic_generator, tg_port, frame_bytes)
    searching = topology.rate_searches
    with step(f"Nothing is lost at {MIN_PPS:,} pps"):
        first = trials(MIN_PPS, searching.trial_s)
        verify_trial(first, "nothing is lost or altered at the lowest rate")
    with step("NDR and PDR (MLRsearch)"):
        found = search_rates(
            trials, min_pps=MIN_PPS, max_pps=MAX_PPS, trial_s=searching.trial_s,
            relative_width=searching.relative_width,
        )  # fmt: skip
    searches[(guide.queues, frame_bytes)] = found
    ndr, pdr = found.ndr.lower_pps or 0.0, found.pdr.lower_pps or 0.0
    record_figure("NDR", ndr, "pps", better="higher", tolerance=0.2)
    rows = [[f"{t.offered_pps:,.0f}", t.sent, t.received, t.lost] for t in found.trials]
    attach_table(f"trials (queues={guide.queues}, {frame_bytes} B)",
                 ["offered pps", "sent", "received", "lost"], rows)  # fmt: skip
    figures = [[guide.queues, frame_bytes, f"{ndr / 1e3:.1f}", f"{ndr * frame_bytes * 8 / 1e6:.1f}",
                f"{pdr / 1e3:.1f}"]]  # fmt: skip
    other = searches.get((3 - guide.queues, frame_bytes))
    if other is not None and other.ndr.lower_pps:
        two, one = (ndr, other.ndr.lower_pps) if guide.queues == 2 else (other.ndr.lower_pps, ndr)
        figures.append(["2 vs 1 queue", frame_bytes, f"{two / one:.2f}x", "", ""])
    attach_table(
        f"guide 6 throughput (queues={guide.queues}, {frame_bytes} B; the testpmds share 2 CPUs)",
        ["queues", "frame bytes", "NDR kpps", "NDR Mbit/s", "PDR 0.5 % kpps"],
        figures,
    )
