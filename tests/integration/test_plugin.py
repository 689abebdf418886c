"""The pytest plugin as a user meets it: topology selection, capability skips, bad input."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from tests.integration.topology_files import unreachable_lab

ROOT = Path(__file__).resolve().parents[2]

NEEDS_HARDWARE = textwrap.dedent(
    """
    import pytest

    @pytest.mark.niantic
    def test_needs_niantic(topology):
        assert "niantic" in topology.capabilities()

    @pytest.mark.requires("vhost_net", "kvm")
    def test_needs_vhost_net(topology):
        assert "vhost_net" in topology.capabilities()

    def test_needs_nothing(topology):
        assert topology.hosts
    """
)


def _run_pytest(tmp_path: Path, suite: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """pytest in a child process with the project's plugin and ini, reports in tmp_path."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "framework.plugin", "-p", "no:cacheprovider",
         "-c", str(ROOT / "pytest.ini"), "--rootdir", str(tmp_path),
         "--reports-dir", str(tmp_path / "r"), "--no-allure-html", "-rs", str(suite), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def _pytest(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    suite = tmp_path / "test_caps.py"
    suite.write_text(NEEDS_HARDWARE)
    return _run_pytest(tmp_path, suite, *args)


def test_virtual_lab_skips_hardware_tests_naming_the_capability(tmp_path: Path) -> None:
    done = _pytest(tmp_path)
    assert done.returncode == 0, done.stdout
    assert "1 passed, 2 skipped" in done.stdout
    assert (
        "topology 'virtual' lacks niantic (an Intel 82599 (ixgbe) NIC on a DUT host)" in done.stdout
    )
    assert "lacks vhost_net (the vhost-net kernel module (/dev/vhost-net)); kvm" in done.stdout


def test_lab_topology_selects_hardware_tests(tmp_path: Path) -> None:
    # These tests only read the topology: no lab host is contacted.
    done = _pytest(tmp_path, "--topology", str(ROOT / "topologies" / "lab.yaml"))
    assert done.returncode == 0, done.stdout
    assert "3 passed" in done.stdout


def test_bad_topology_path_is_one_line(tmp_path: Path) -> None:
    done = _pytest(tmp_path, "--topology", str(tmp_path / "missing.yaml"))
    assert done.returncode == 4
    errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
    assert errors == [
        f"ERROR: {tmp_path / 'missing.yaml'}: cannot read topology: No such file or directory"
    ]
    assert "Traceback" not in done.stderr + done.stdout


def test_bad_topology_field_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        (ROOT / "topologies" / "virtual.yaml")
        .read_text()
        .replace("ageing_time: 0", "ageing_time: -5")
    )
    done = _pytest(tmp_path, "--topology", str(bad))
    assert done.returncode == 4
    assert (
        f"ERROR: {bad}: switch.ageing_time: Input should be greater than or equal to 0 (got -5)"
        in done.stderr
    )


def test_unknown_marker_is_refused(tmp_path: Path) -> None:
    suite = tmp_path / "test_typo.py"
    suite.write_text("import pytest\n\n@pytest.mark.nantic\ndef test_x():\n    pass\n")
    done = _run_pytest(tmp_path, suite)
    assert done.returncode != 0
    assert "'nantic' not found in `markers` configuration option" in done.stdout


def test_a_module_that_fails_to_import_is_its_own_error_not_the_plugins(tmp_path: Path) -> None:
    suite = tmp_path / "test_broken_import.py"
    suite.write_text("from framework.traffic.verify import nothing\n\ndef test_x():\n    pass\n")
    done = _run_pytest(tmp_path, suite)
    assert done.returncode == 2, done.stdout[-2000:]
    assert "cannot import name 'nothing'" in done.stdout
    # the plugin once folded the collection error into the summary as a test and crashed
    said = done.stdout + done.stderr
    assert "AttributeError" not in said and "INTERNALERROR" not in said, said[-2000:]


def test_missing_testpmd_binary_is_one_line(tmp_path: Path) -> None:
    topo = tmp_path / "nobinary.yaml"
    topo.write_text(
        (ROOT / "topologies" / "virtual.yaml")
        .read_text()
        .replace("testpmd: /usr/bin/dpdk-testpmd", "testpmd: /opt/missing/dpdk-testpmd")
    )
    suite = tmp_path / "test_version.py"
    suite.write_text("def test_needs_dpdk(dpdk_version):\n    assert dpdk_version\n")
    done = _run_pytest(tmp_path, suite, "--topology", str(topo))
    line = _stopped_with_one_line(done, "ERROR: cannot tell the DPDK version")
    assert "/opt/missing/dpdk-testpmd" in line, done.stdout


def _stopped_with_one_line(done: subprocess.CompletedProcess[str], start: str) -> str:
    """The run ended with exit status 3 and one ERROR line, last, also in its reports."""
    output = done.stdout + done.stderr
    assert done.returncode == 3, output
    for noise in ("Traceback", "INTERNALERROR", "_pytest.outcomes.Exit"):
        assert noise not in output, output
    errors = [line for line in output.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1 and errors[0].startswith(start), output
    assert done.stdout.strip().splitlines()[-1] == errors[0], "the error is the last line"
    message = errors[0].removeprefix("ERROR: ")
    (run,) = [d for d in (Path(done.args[done.args.index("--reports-dir") + 1])).iterdir()
              if d.is_dir() and not d.is_symlink()]  # fmt: skip
    assert (run / "error.txt").read_text() == message + "\n"
    junit = ET.parse(run / "junit.xml").getroot()
    assert [p.get("value") for p in junit.iter("property") if p.get("name") == "run_stopped"] == [
        message
    ]
    assert "Run stopped" in (run / "report.html").read_text()
    return errors[0]


def test_unreachable_lab_names_every_host_in_one_line(tmp_path: Path) -> None:
    topo, lab = unreachable_lab(tmp_path)
    assert set(lab["hosts"]) == {"host_server_1", "host_server_2", "tg"}
    suite = tmp_path / "test_unreachable.py"
    suite.write_text(
        "def test_reads_the_topology(topology):\n    assert topology.hosts\n\n\n"
        "def test_needs_the_hosts(hosts):\n    assert hosts\n"
    )
    started = time.monotonic()
    done = _run_pytest(tmp_path, suite, "--topology", str(topo))
    # In parallel: one connect timeout (10 s) for the three hosts, not three in a row.
    assert time.monotonic() - started < 25, done.stdout
    line = _stopped_with_one_line(
        done, "ERROR: cannot bring up topology 'lab': 3 of 3 hosts unreachable over SSH: "
    )
    for name, host in lab["hosts"].items():
        assert f"{name} at {host['address']}:{host['ssh_port']} (" in line, line
    assert "1 passed" in done.stdout, "the tests before the failing fixture ran"
