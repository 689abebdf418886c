"""Bad topology files and options as a user meets them: one line naming the culprit.

Each case runs pytest in a child process with the project's plugin and asserts the exit
status (4, pytest's usage error), that the error is one line with the expected words, that
it is the last line printed, and that no traceback or INTERNALERROR appears.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from framework.errors import HostsUnreachable, RemoteError
from framework.lab.hosts import connect_all

ROOT = Path(__file__).resolve().parents[2]
VIRTUAL = (ROOT / "topologies" / "virtual.yaml").read_text()
SUITE = "def test_reads_the_topology(topology):\n    assert topology.hosts\n"


def _run(tmp_path: Path, *args: str, reports: str | None = None) -> subprocess.CompletedProcess:
    suite = tmp_path / "test_suite.py"
    suite.write_text(SUITE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "framework.plugin", "-p", "no:cacheprovider",
         "-c", str(ROOT / "pytest.ini"), "--rootdir", str(tmp_path),
         "--reports-dir", reports or str(tmp_path / "r"), "--no-allure-html",
         str(suite), *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def one_line_error(done: subprocess.CompletedProcess, code: int, *words: str) -> str:
    """The run's single ERROR line, after checking its exit code, place and words."""
    output = done.stdout + done.stderr
    assert done.returncode == code, output
    assert "Traceback" not in output and "INTERNALERROR" not in output, output
    errors = [line for line in output.splitlines() if "ERROR" in line or "Error" in line]
    assert len(errors) == 1 and errors[0].startswith("ERROR: "), output
    stream = done.stderr if errors[0] in done.stderr else done.stdout
    assert stream.strip().splitlines()[-1] == errors[0], "the error is the last line"
    for word in words:
        assert word in errors[0], (word, errors[0])
    return errors[0]


def _topology(tmp_path: Path, content: str | bytes) -> Path:
    path = tmp_path / "topo.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def test_binary_topology_file(tmp_path: Path) -> None:
    topo = _topology(tmp_path, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe")
    line = one_line_error(_run(tmp_path, "--topology", str(topo)), 4, str(topo), "not UTF-8")
    assert line.endswith(
        "line 1: not UTF-8 text (byte 0x89 at offset 0); a topology is a YAML text file"
    )


def test_latin1_topology_file_names_the_line(tmp_path: Path) -> None:
    text = VIRTUAL.replace("description: Virtual", "description: Virtu\xe9l")
    topo = _topology(tmp_path, text.encode("latin-1"))
    line = text[: text.index("\xe9")].count("\n") + 1
    one_line_error(_run(tmp_path, "--topology", str(topo)), 4, f"{topo}: line {line}: not UTF-8")


def test_huge_topology_file_is_refused_at_once(tmp_path: Path) -> None:
    topo = _topology(tmp_path, VIRTUAL)
    with topo.open("ab") as f:
        f.truncate(60 * 1024 * 1024)  # 60 MB, sparse
    started = time.monotonic()
    done = _run(tmp_path, "--topology", str(topo))
    assert time.monotonic() - started < 30
    one_line_error(done, 4, f"{topo}: is 60.0 MiB, over the 256 KiB limit for a topology file")


def test_host_defined_twice(tmp_path: Path) -> None:
    twice = VIRTUAL.replace("  tg:\n", "  host_server_1:\n    role: dut\n  tg:\n")
    topo = _topology(tmp_path, twice)
    first = VIRTUAL.splitlines().index("  host_server_1:") + 1
    second = twice.splitlines().index("  host_server_1:", first) + 1
    one_line_error(
        _run(tmp_path, "--topology", str(topo)), 4,
        f"{topo}: hosts.host_server_1: defined twice, at lines {first} and {second}",
    )  # fmt: skip


def test_unquoted_version_says_to_quote_it(tmp_path: Path) -> None:
    topo = _topology(tmp_path, VIRTUAL.replace("version: auto", "version: 22.10"))
    one_line_error(
        _run(tmp_path, "--topology", str(topo)), 4,
        f"{topo}: dpdk.version: expected text, but YAML reads the unquoted 22.10 as the "
        'number 22.1; put it in quotes: "22.10"',
    )  # fmt: skip


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('mac: "52:54:00:00:00:01"', 'mac: "52:54:00:00:01"',
         "vms.vm1.nics[0].mac: expected a MAC address of six hex bytes joined by ':', "
         "e.g. '52:54:00:00:00:01' (got '52:54:00:00:01')"),
        ("{name: p1, interface: eth2", "{name: p1, interface: eth2-with-a-long-name",
         "hosts.tg.ports[1].interface: expected a kernel interface name of up to 15 letters"),
        ("  tg:\n", "  t g:\n",
         "hosts.t g: expected a name of up to 32 letters, digits, '_' or '-' that starts "
         "with a letter, e.g. 'host_server_1' (got 't g')"),
        ("name_prefix: hc", "name_prefix: HC",
         "virtual_lab.name_prefix: expected 2 to 6 lowercase letters or digits"),
    ],
)  # fmt: skip
def test_pattern_errors_are_words(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert old in VIRTUAL
    topo = _topology(tmp_path, VIRTUAL.replace(old, new))
    line = one_line_error(_run(tmp_path, "--topology", str(topo)), 4, expected)
    assert "should match pattern" not in line and "]{" not in line


def test_pci_address_error_is_words(tmp_path: Path) -> None:
    lab = (ROOT / "topologies" / "lab.yaml").read_text()
    topo = _topology(tmp_path, lab.replace('pci: "0000:09:00.0"', 'pci: "09:00.0"'))
    one_line_error(
        _run(tmp_path, "--topology", str(topo)), 4,
        "hosts.host_server_1.ports[0].pci: expected a PCI address domain:bus:device.function "
        "in hex, e.g. '0000:09:00.0' (got '09:00.0')",
    )  # fmt: skip


def test_reports_dir_with_missing_parent(tmp_path: Path) -> None:
    reports = tmp_path / "no" / "such" / "reports"
    done = _run(tmp_path, reports=str(reports))
    one_line_error(done, 4, f"--reports-dir {reports}: {reports.parent} does not exist")
    assert not (tmp_path / "no").exists(), "a typo must not grow a directory tree"


def test_reports_dir_under_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    reports = tmp_path / "file" / "reports"
    done = _run(tmp_path, reports=str(reports))
    one_line_error(done, 4, f"--reports-dir {reports}: {tmp_path / 'file'} is not a directory")


def test_reports_dir_unwritable(tmp_path: Path) -> None:
    # sysfs refuses new directories, even to root.
    done = _run(tmp_path, reports="/sys/howto-reports")
    one_line_error(
        done, 4,
        "--reports-dir /sys/howto-reports: cannot create a run directory in /sys/howto-reports: ",
    )  # fmt: skip


def test_usage_error_leaves_no_run_directory(tmp_path: Path) -> None:
    topo = _topology(tmp_path, b"\xff")
    one_line_error(_run(tmp_path, "--topology", str(topo)), 4, "not UTF-8")
    assert list((tmp_path / "r").iterdir()) == [], "no empty run directory, no `latest`"


class FakeSession:
    """Connects after `delay` seconds, or fails the way SSHSession.connect does."""

    def __init__(self, name: str, address: str, delay: float, error: OSError | None) -> None:
        self.name, self.address, self.port = name, address, 22
        self.delay, self.error, self.closed = delay, error, False

    def connect(self) -> FakeSession:
        time.sleep(self.delay)
        if self.error is not None:
            raise RemoteError(f"{self.name}: cannot reach {self.address}") from self.error
        return self

    def close(self) -> None:
        self.closed = True


def test_connect_all_tries_every_host_at_once_and_names_each_failure() -> None:
    sessions = {
        "host_server_1": FakeSession("host_server_1", "198.18.255.250", 0.5, None),
        "host_server_2": FakeSession(
            "host_server_2", "198.18.255.251", 0.5, TimeoutError("timed out")
        ),
        "tg": FakeSession("tg", "198.18.255.252", 0.5, OSError(113, "No route to host")),
    }
    started = time.monotonic()
    with pytest.raises(HostsUnreachable) as info:
        connect_all(sessions)  # type: ignore[arg-type]  # fakes stand in for SSHSessions
    assert time.monotonic() - started < 1.2, "in parallel, not one timeout after another"
    assert str(info.value) == (
        "2 of 3 hosts unreachable over SSH: host_server_2 at 198.18.255.251:22 (timed out); "
        "tg at 198.18.255.252:22 (No route to host)"
    )
    assert all(s.closed for s in sessions.values()), "the reachable host is closed too"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("-m", "niantic and ("),
         "-m 'niantic and (': at column 14: expected not OR left parenthesis OR identifier"),
        (("-k", "pvp or"), "-k 'pvp or': at column 7: expected not OR left parenthesis"),
        (("-m", "nianitc"), "-m 'nianitc': unknown marker(s) nianitc; pytest.ini declares "),
    ],
)  # fmt: skip
def test_bad_selection_expression_ends_at_once(
    tmp_path: Path, args: tuple[str, str], expected: str
) -> None:
    # pytest reads -m and -k only once the tests are collected: the run directory made,
    # the guide modules imported. The plugin reads them first, so nothing is left behind.
    (tmp_path / "r").mkdir()
    started = time.monotonic()
    done = _run(tmp_path, *args)
    assert time.monotonic() - started < 10
    one_line_error(done, 4, expected)
    assert list((tmp_path / "r").iterdir()) == [], "no run directory, no `latest`"
    assert "test session starts" not in done.stdout, "nothing was collected"


def test_an_unknown_dpdk_build_is_one_line(tmp_path: Path) -> None:
    # tests/conftest.py's HOWTO_DPDK_BUILD is overridden by the option
    done = _run(tmp_path, "--dpdk-build", "23.07")
    one_line_error(done, 4, "--dpdk-build 23.07", "has the builds installed, 24.11")


@pytest.mark.parametrize(
    ("script", "args", "says"),
    [
        ("setup", ["--dpdk"], "setup: ERROR: --dpdk needs a release, e.g. --dpdk 24.11"),
        ("setup", ["--bogus"], "setup: ERROR: unknown option '--bogus' (known: --dpdk RELEASE,"),
        ("setup", ["--dpdk-source"], "setup: ERROR: --dpdk-source needs a source: debian,"),
        ("dpdk-root", ["23.07"], "dpdk-root: ERROR: no Debian root known for DPDK '23.07'"),
        ("dpdk-build", [], "dpdk-build: ERROR: usage: scripts/dpdk-build SOURCE [NAME]"),
        ("dpdk-build", ["/nonexistent/dpdk-25.11.tar.xz"], "dpdk-build: ERROR: no tarball"),
        ("dpdk-build", ["/etc"], "dpdk-build: ERROR: /etc is not a DPDK tree"),
        ("dpdk-build", ["debian", "../x"], "dpdk-build: ERROR: build name '../x'"),
    ],
)
def test_the_set_up_scripts_refuse_bad_options_in_one_line(
    script: str, args: list[str], says: str
) -> None:
    # refused before anything is installed or built
    done = subprocess.run(
        [str(ROOT / "scripts" / script), *args], capture_output=True, text=True, timeout=30
    )
    assert done.returncode != 0 and done.stdout == "", done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(says), done.stderr
