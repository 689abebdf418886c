"""DPDK on a host: version detection, version-aware testpmd argv, typed testpmd shell."""

from framework.dpdk.args import (
    CommandTranslation,
    EalOptions,
    TestPmdOptions,
    Translation,
    testpmd_argv,
    translate_guide_command,
    translate_testpmd_command,
)
from framework.dpdk.modes import ForwardingMode, VfRxMode
from framework.dpdk.testpmd import TestPmd, TestPmdParseError, TestPmdStartError
from framework.dpdk.version import DpdkVersion, detect_dpdk_version

__all__ = [
    "CommandTranslation",
    "DpdkVersion",
    "EalOptions",
    "ForwardingMode",
    "TestPmd",
    "TestPmdOptions",
    "TestPmdParseError",
    "TestPmdStartError",
    "Translation",
    "VfRxMode",
    "detect_dpdk_version",
    "testpmd_argv",
    "translate_guide_command",
    "translate_testpmd_command",
]
