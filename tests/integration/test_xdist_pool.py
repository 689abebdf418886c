"""pytest-xdist over a pool of two virtual testbeds: one run directory, every test's testbed.

Runs the real guide-6 module with `-n 2 --dist load` (so its tests spread over both
workers) and `--topology` naming a directory of two virtual testbeds: each worker leases
its own testbed and builds its own lab; the reports of both workers land in one run
directory and say which testbed each test ran on.
"""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from framework.config import DEFAULT_TOPOLOGY
from framework.lab.leftovers import snapshot

ROOT = Path(__file__).resolve().parents[2]
MODULE = "testsuites/test_virtio_user_container.py"
# Its tests: two of the guide's form, two of its link following the host's vhost port,
# five of 6.3's limitations, the two-queue variant.
GUIDE6_TESTS = 10


def test_two_workers_two_testbeds_one_report(tmp_path: Path) -> None:
    pool = tmp_path / "pool"
    pool.mkdir()
    for suffix in ("a", "b"):
        text = DEFAULT_TOPOLOGY.read_text().replace("name: virtual\n", f"name: pool-{suffix}\n")
        (pool / f"pool-{suffix}.yaml").write_text(text)
    reports = tmp_path / "reports"
    before = snapshot()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", MODULE, "-p", "no:cacheprovider", "-n", "2",
         "--dist", "load", "--topology", str(pool), "--reports-dir", str(reports),
         "--no-allure-html", "-q"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert snapshot().new_since(before) == {}, "both workers' labs are gone"
    (run,) = [d for d in reports.iterdir() if d.is_dir() and not d.is_symlink()]
    testbeds = {
        case.get("name"): prop.get("value")
        for case in ET.parse(run / "junit.xml").getroot().iter("testcase")
        for prop in case.iter("property")
        if prop.get("name") == "testbed"
    }
    assert len(testbeds) == GUIDE6_TESTS, testbeds
    assert set(testbeds.values()) == {"pool-a", "pool-b"}, testbeds
    results = [json.loads(f.read_text()) for f in (run / "allure-results").glob("*-result.json")]
    labels = {
        label["value"] for r in results for label in r["labels"] if label["name"] == "testbed"
    }
    assert len(results) == GUIDE6_TESTS and labels == {"pool-a", "pool-b"}
    html = (run / "report.html").read_text()
    assert "<th>Testbed</th>" in html and "&lt;td&gt;pool-b&lt;/td&gt;" in html
