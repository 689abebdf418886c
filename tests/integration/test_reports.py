"""The report plugin as a run leaves it on disk: HTML, JUnit, Allure results and report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from framework.report.plugin import (
    find_allure_cli,
    update_latest_link,
    write_environment_properties,
)

ROOT = Path(__file__).resolve().parents[2]

DEMO = textwrap.dedent(
    """
    import struct
    import threading
    import zlib

    import pytest

    from framework.report.attach import attach_image, attach_table, attach_text, step
    from framework.report.plugin import set_environment


    def _png(path):
        def chunk(kind, data):
            return (struct.pack(">I", len(data)) + kind + data
                    + struct.pack(">I", zlib.crc32(kind + data)))
        raw = b"".join(b"\\x00" + b"\\x10\\x80\\xc0" * 8 for _ in range(8))
        path.write_bytes(b"\\x89PNG\\r\\n\\x1a\\n"
                         + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0))
                         + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
        return path


    @pytest.fixture(scope="session", autouse=True)
    def lab(pytestconfig):
        set_environment(pytestconfig, {"DPDK version": "22.11.9", "Topology": "selftest"})


    def test_reports_pass(tmp_path):
        with step("guide step one"):
            attach_text("transcript", "testpmd> start")
        with step("guide step two"):
            attach_table("pvp table", ["size", "mpps"], [[64, "0.031"], [1518, "<b>"]])
            attach_image("plot", _png(tmp_path / "p.png"))
        sender = threading.Thread(target=attach_text, args=("sender thread log", "sent 10"))
        sender.start()
        sender.join()


    def test_reports_fail():
        with step("check the primary port"):
            assert 0 == 1


    @pytest.mark.skip(reason="no NIC here")
    def test_reports_skip():
        pass
    """
)


def _run(tmp_path: Path, reports: Path, *args: str) -> subprocess.CompletedProcess[str]:
    suite = tmp_path / "test_report_demo.py"
    suite.write_text(DEMO)
    # The child must not inherit this run's pytest settings (xdist worker ids, addopts).
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "framework.report.plugin",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            "--reports-dir",
            str(reports),
            str(suite),
            *args,
        ],
        check=False,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _run_dirs(reports: Path) -> list[Path]:
    return sorted(p for p in reports.iterdir() if p.is_dir() and not p.is_symlink())


def test_run_writes_every_report(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    proc = _run(tmp_path, reports)
    out = proc.stdout + proc.stderr
    # The failing demo test decides the exit status, whatever the reporting did.
    assert proc.returncode == 1, out

    (run,) = _run_dirs(reports)
    assert (reports / "latest").is_symlink()
    assert (reports / "latest").resolve() == run.resolve()
    assert f"reports in {run}" in out

    html = (run / "report.html").read_text()
    for name in ("test_reports_pass", "test_reports_fail", "test_reports_skip"):
        assert name in html
    assert not (run / "assets").exists(), "report.html must be self-contained"
    # Environment table, step log lines and the table extra travel inside the page data.
    assert "22.11.9" in html and "STEP guide step two" in html
    assert "&amp;lt;b&amp;gt;" in html or "&lt;b&gt;" in html
    assert "sender thread log" in html

    suite = ET.parse(run / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("3", "1", "1")

    results = run / "allure-results"
    by_name = {}
    for path in results.glob("*-result.json"):
        data = json.loads(path.read_text())
        by_name[data["name"]] = data
    assert {n: d["status"] for n, d in by_name.items()} == {
        "test_reports_pass": "passed",
        "test_reports_fail": "failed",
        "test_reports_skip": "skipped",
    }
    steps = [s["name"] for s in by_name["test_reports_pass"]["steps"]]
    assert steps == ["guide step one", "guide step two"]
    attached = {a["name"] for s in by_name["test_reports_pass"]["steps"] for a in s["attachments"]}
    assert attached == {"transcript", "pvp table", "pvp table (CSV)", "plot"}
    props = (results / "environment.properties").read_text()
    assert "DPDK\\ version=22.11.9" in props and "Topology=selftest" in props

    if find_allure_cli() is None:
        assert "Allure HTML report not generated" in out
    else:
        assert (run / "allure-report" / "index.html").stat().st_size > 0, out


def test_latest_follows_newest_run_and_user_paths_win(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    user_html = tmp_path / "mine" / "custom.html"
    first = _run(tmp_path, reports, "--no-allure-html")
    second = _run(tmp_path, reports, "--no-allure-html", "--html", str(user_html))
    assert (first.returncode, second.returncode) == (1, 1), second.stdout + second.stderr
    old, new = _run_dirs(reports)
    assert (old / "report.html").exists()
    assert (reports / "latest").resolve() == new.resolve()
    assert user_html.exists() and not (new / "report.html").exists()
    assert (new / "junit.xml").exists() and not (new / "allure-report").exists()


def test_xdist_workers_feed_the_controller_reports(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    proc = _run(tmp_path, reports, "--no-allure-html", "-n", "2")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (run,) = _run_dirs(reports)
    results = run / "allure-results"
    assert len(list(results.glob("*-result.json"))) == 3
    # set_environment ran in a worker's session fixture; the controller still wrote it.
    assert "DPDK\\ version=22.11.9" in (results / "environment.properties").read_text()
    assert "22.11.9" in (run / "report.html").read_text()


def test_environment_properties_escaping(tmp_path: Path) -> None:
    path = write_environment_properties(
        tmp_path, {"a key": "x=y", "path": "C:\\dpdk", "multi": "l1\nl2", "név": "µs"}
    )
    text = path.read_text(encoding="ascii")
    assert "a\\ key=x=y" in text
    assert "path=C\\:\\\\dpdk" not in text and "path=C:\\\\dpdk" in text
    assert "multi=l1\\nl2" in text
    assert "n\\u00e9v=\\u00b5s" in text


def test_latest_link_replaces_atomically(tmp_path: Path) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    update_latest_link(tmp_path, tmp_path / "one")
    update_latest_link(tmp_path, tmp_path / "two")
    assert os.readlink(tmp_path / "latest") == "two"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest", "one", "two"]
    (tmp_path / "latest").unlink()
    (tmp_path / "latest").mkdir()
    with pytest.raises(OSError, match="not a symlink"):
        update_latest_link(tmp_path, tmp_path / "two")


def _rendered(page: Path) -> str:
    """The DOM after the page's scripts ran in headless Chromium (both reports build their
    tables with JavaScript, so the raw file proves nothing about what a reader sees)."""
    import shutil
    import tempfile

    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium not installed (scripts/setup installs it)")
    with tempfile.TemporaryDirectory(prefix="howto-chromium-") as profile:
        done = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={profile}", "--virtual-time-budget=15000",
             "--dump-dom", page.as_uri()],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_html_reports_render_in_a_browser(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    _run(tmp_path, reports)
    (run,) = _run_dirs(reports)
    html = _rendered(run / "report.html")
    for name in ("test_reports_pass", "test_reports_fail"):
        assert f'id="test_report_demo.py::{name}"' in html, f"pytest-html renders a row for {name}"
    assert "1 Failed" in html and "1 Passed" in html and "1 Skipped" in html
    if find_allure_cli() is None:
        pytest.skip("Allure CLI not installed (scripts/setup installs it)")
    allure_dom = _rendered(run / "allure-report" / "index.html")
    assert "Failed" in allure_dom and "Passed" in allure_dom, "the Allure report renders results"


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["--collect-only"], id="collect-only"),
        pytest.param(["-k", "no_test_is_called_this"], id="everything-deselected"),
        pytest.param(["-m", "niantic and ("], id="bad-marker-expression"),
    ],
)
def test_latest_moves_only_for_a_run_that_ran_tests(tmp_path: Path, args: list[str]) -> None:
    reports = tmp_path / "reports"
    first = _run(tmp_path, reports, "--no-allure-html")
    assert first.returncode == 1, first.stdout + first.stderr
    (ran,) = _run_dirs(reports)
    again = _run(tmp_path, reports, "--no-allure-html", *args)
    assert (reports / "latest").resolve() == ran.resolve(), again.stdout + again.stderr
