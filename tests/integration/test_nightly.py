"""scripts/nightly as a lab CI job meets it: exit codes, pre-flight and published reports.

Each case runs the real script (set-up, pytest with --preflight, the summary's verdict) on
the virtual lab or on a lab topology whose hosts are loopback ports where nothing
listens (never the sample's hosts, no traffic off this machine).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.integration.topology_files import unreachable_lab, virtual_variant

ROOT = Path(__file__).resolve().parents[2]
NIGHTLY = ROOT / "scripts" / "nightly"
GUIDE6_QUICK = (
    "testsuites/test_virtio_user_container.py"
    "::test_vhost_user_port_comes_up_when_the_container_connects"
)


def nightly(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Run scripts/nightly with reports under tmp_path; return it and the published dir."""
    published = tmp_path / "published"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["NIGHTLY_PUBLISH"] = str(published)
    done = subprocess.run(
        [str(NIGHTLY), "--reports-dir", str(tmp_path / "reports"), "--no-allure-html", *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    return done, published


def last_line(done: subprocess.CompletedProcess[str]) -> str:
    return done.stdout.strip().splitlines()[-1]


def test_nightly_exit_codes_without_a_lab(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nkind: lab\nhosts: {tg: {role: tg, ssh_port: twenty-two}}\n")
    done, _ = nightly(tmp_path, "--topology", str(bad))
    assert done.returncode == 4, done.stdout + done.stderr
    assert "hosts.tg.ssh_port" in done.stderr and "BAD INPUT" in last_line(done)

    done, _ = nightly(tmp_path, "-k", "no_test_is_called_this")
    assert done.returncode == 5, done.stdout + done.stderr
    assert "NO TESTS" in last_line(done)

    # Nothing ran, so no summary: that proves nothing and must not read as a sign-off.
    done, _ = nightly(tmp_path, "--collect-only", "-m", "niantic")
    assert done.returncode == 6, done.stdout + done.stderr
    assert "cannot sign off: no conformance summary was written" in done.stderr
    assert "NOTHING PROVEN, NOT A SIGN-OFF" in last_line(done)

    # Every Niantic test skips on the virtual lab: nothing failed, nothing signs off.
    done, published = nightly(tmp_path, "-m", "niantic")
    assert done.returncode == 6, done.stdout + done.stderr
    assert "nightly: cannot sign off: no guide passed" in done.stderr
    assert "NOT A SIGN-OFF" in last_line(done)
    summary = json.loads((published / "summary.json").read_text())
    assert not summary["sign_off"]["ok"] and summary["sign_off"]["guides_skipped"] == [1, 3, 5]


def test_nightly_stops_on_an_unreachable_lab_and_publishes_why(tmp_path: Path) -> None:
    topo, _ = unreachable_lab(tmp_path)
    done, published = nightly(tmp_path, "--topology", str(topo), "-m", "niantic")
    assert done.returncode == 3, done.stdout + done.stderr
    assert "3 of 3 hosts unreachable over SSH" in (published / "error.txt").read_text()
    summary = json.loads((published / "summary.json").read_text())
    assert any("unreachable" in r for r in summary["sign_off"]["reasons"])
    assert "LAB NOT USABLE" in last_line(done)


@pytest.mark.selftest
def test_nightly_preflight_on_the_virtual_lab(tmp_path: Path) -> None:
    # A topology naming another DPDK release: pre-flight names it on each DUT host, exit 3.
    other = virtual_variant(tmp_path, "other-dpdk", lambda t: t["dpdk"].update(version="21.11"))
    done, published = nightly(tmp_path, "--topology", str(other), GUIDE6_QUICK)
    assert done.returncode == 3, done.stdout + done.stderr
    error = (published / "error.txt").read_text()
    assert error.startswith("pre-flight of topology 'virtual': "), error
    assert re.search(r"host_server_1: DPDK: .* is DPDK 22\.11.*says 21\.11", error), error
    assert "FAIL" in (published / "preflight-virtual.txt").read_text()

    # The same test on the real virtual topology: pre-flight passes, the test too.
    done, published = nightly(tmp_path, GUIDE6_QUICK)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASS" in last_line(done)
    checks = (published / "preflight-virtual.txt").read_text().splitlines()
    assert checks and all(line.startswith("ok") for line in checks), checks
    summary = json.loads((published / "summary.json").read_text())
    assert summary["sign_off"]["ok"] and summary["sign_off"]["guides_passed"] == [6]
