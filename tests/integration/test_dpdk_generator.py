"""The DPDK-based generator (testpmd flowgen on the TG host) on the virtual lab's PVP set-up.

The virtual TG's ports are veths (af_packet): they send flat out and have no Tx rate
limiter, so here the generator shows that it counts what the DUT returns (and nothing
when the DUT returns nothing), and that a rated trial fails with one line naming why.
"""

from __future__ import annotations

import pytest

from framework.config import DEFAULT_TOPOLOGY, load_topology
from framework.dpdk.version import detect_dpdk_version
from framework.lab.hosts import provision
from framework.lab.leftovers import snapshot
from framework.scenarios.pvp import Pvp
from framework.traffic.dpdk_generator import DpdkGenerator, GeneratorError

pytestmark = pytest.mark.slow


def test_dpdk_generator_counts_what_the_dut_returns() -> None:
    topology = load_topology(DEFAULT_TOPOLOGY)
    assert topology.pvp is not None
    before = snapshot()
    with provision(topology) as hosts:
        dut, tg = hosts[topology.pvp.host], hosts["tg"]
        version = detect_dpdk_version(dut.session, topology.dpdk.testpmd)
        pvp = Pvp(topology, dut, tg, version, "container")
        try:
            pvp.start_host_testpmd()
            pvp.start_guest()
            generator = DpdkGenerator.start(
                tg, list(topology.pvp.tg_ports), testpmd=topology.dpdk.testpmd,
                version=version, frame_bytes=128,
            )  # fmt: skip
            try:
                # Silent first: frames of a flat-out trial linger in the DUT's rings.
                pvp.guest_pmd.stop()  # type: ignore[union-attr]  # start_guest() above set it
                silent = generator.flat_out(1.0)
                assert silent.sent > 1000 and silent.received == 0, (
                    f"with the guest forwarding nothing, nothing comes back: {silent}"
                )
                pvp.guest_pmd.start()  # type: ignore[union-attr]  # start_guest() above set it
                trial = generator.flat_out(1.0)
                assert trial.sent > 1000, f"flowgen sends on both ports: {trial}"
                assert 0 < trial.received <= trial.sent, f"the DUT returned frames: {trial}"
                assert trial.frame_bytes == 128
                with pytest.raises(GeneratorError, match=r"port 0 cannot limit its Tx rate"):
                    generator(1000, 1.0)
            finally:
                generator.close()
        finally:
            pvp.close()
    assert snapshot().new_since(before) == {}
