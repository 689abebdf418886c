"""Guide 4's tuning read from a host and from the built-in guest (captured output)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from framework.lab.tuning import cpu_list, parse_tuning, refused_irqs, runtime_tuning_script

DATA = Path(__file__).parents[1] / "data"


def test_the_development_machine_is_untuned() -> None:
    tuning = parse_tuning((DATA / "host" / "tuning_dev_machine.txt").read_text())
    assert tuning.online == {0, 1} and tuning.isolated == frozenset()
    assert tuning.hugepages == {"1048576kB": 0, "2048kB": 1024}
    assert tuning.nmi_watchdog == 0 and tuning.writeback_mask == 0x3
    assert tuning.smt_active is False and tuning.turbo is None  # no intel_pstate/cpufreq
    assert len(tuning.irq_masks) > 5 and tuning.cpu_mhz and tuning.cpu_model
    assert tuning.untuned() == ["no isolated CPUs (kernel command line: isolcpus=)"]


def test_the_built_in_guest_through_its_console() -> None:
    # The first line carries a late "guest# " prompt, as the console delivers it.
    tuning = parse_tuning((DATA / "guest" / "tuning_builtin_guest.txt").read_text())
    assert "hugepages=256" in tuning.cmdline
    assert tuning.hugepages["2048kB"] == 256
    assert tuning.cpu_model.startswith("QEMU TCG CPU")
    assert tuning.irq_masks[0] == 0x3 and tuning.turbo is None


def test_steps_not_in_effect_are_named() -> None:
    tuning = parse_tuning(
        "__howto_tuning__ isolated 2-7\n"
        "__howto_tuning__ smt 1\n"
        "__howto_tuning__ no_turbo 0\n"
        "__howto_tuning__ nmi_watchdog 1\n"
        "__howto_tuning__ writeback ffffffff,ffffffff\n"
        "__howto_tuning__ irq 24 00000000,000000fc\n"
        "__howto_tuning__ irq 25 3\n"
        "__howto_tuning__ hugepages 1048576kB 6\n"
    )
    assert tuning.isolated_mask == 0xFC and tuning.irqs_on_isolated == [24]
    assert tuning.untuned() == [
        "turbo boost is on (4.2.1: disable turbo-boost)",
        "hyper-threading is on (4.2.1: disable hyper-threads)",
        "the NMI watchdog is on (echo 0 > /proc/sys/kernel/nmi_watchdog)",
        "the writeback cpumask includes isolated CPUs",
        "1 IRQs may run on isolated CPUs",
    ]
    tuned = parse_tuning(
        "__howto_tuning__ isolated 2-7\n__howto_tuning__ smt 0\n__howto_tuning__ no_turbo 1\n"
        "__howto_tuning__ nmi_watchdog 0\n__howto_tuning__ writeback ffffffff03\n"
        "__howto_tuning__ irq 24 3\n__howto_tuning__ hugepages 1048576kB 6\n"
    )
    assert tuned.untuned() == []


def test_cpu_lists() -> None:
    assert cpu_list("2-7,9") == {2, 3, 4, 5, 6, 7, 9}
    assert cpu_list("") == set() and cpu_list("0") == {0}


def test_the_built_in_guest_tuned_as_4_3_1_says() -> None:
    """Booted with isolcpus=1, then runtime_tuning_script run in it (captured, DPDK's
    built-in guest under TCG): IRQs 0 and 2 refused, everything else off CPU 1."""
    before = parse_tuning((DATA / "guest" / "tuning_builtin_guest_isolcpus_1.txt").read_text())
    assert before.isolated == {1} and before.online == {0, 1}
    assert before.untuned() == [
        "the writeback cpumask includes isolated CPUs",
        "16 IRQs may run on isolated CPUs",
    ]
    assert "nmi_watchdog" in runtime_tuning_script({1}, {0, 1})
    refused = refused_irqs((DATA / "guest" / "runtime_tuning_output.txt").read_text())
    assert refused == {0, 2}
    after = parse_tuning((DATA / "guest" / "tuning_builtin_guest_tuned.txt").read_text())
    assert after.writeback_mask == 0x1 and after.irqs_on_isolated == [0, 2]
    assert after.untuned() == ["2 IRQs may run on isolated CPUs"]
    assert dataclasses.replace(after, unmovable_irqs=refused).untuned() == []
    with pytest.raises(ValueError, match="must be some of"):
        runtime_tuning_script({0, 1}, {0, 1})
