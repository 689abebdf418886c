"""The run registry: prefixes, subnet choice, hugepage fit, and liveness by flock."""

from __future__ import annotations

import ipaddress
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from framework.lab import runs
from framework.lab.runs import Registry, RunRecord

ROOT = Path(__file__).resolve().parents[2]
NET = ipaddress.ip_network


def record(prefix: str = "hc-1abc", **changes) -> RunRecord:
    fields = dict(
        prefix=prefix,
        pid=4242,
        started=time.mktime((2025, 1, 31, 9, 40, 2, 0, 0, -1)),
        command="python -m pytest testsuites/test_virtio_user_container.py",
        subnet="198.18.0.0/24",
        hugepages=512,
        hugepage_mounts=("/dev/hugepages",),
    )
    fields.update(changes)
    return RunRecord(**fields)


def test_prefixes_fit_linux_interface_names() -> None:
    for name_prefix in ("hc", "abcdef"):
        prefix = runs.new_prefix(name_prefix, [])
        assert re.fullmatch(rf"{name_prefix}-[0-9][0-9a-z]{{3}}", prefix)
        assert len(f"{prefix}-ctl") <= 15
    with pytest.raises(ValueError, match="too long"):
        runs.new_prefix("abcdefg", [])


def test_new_prefix_avoids_taken_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    picks = iter("1abc" + "1abc" + "2xyz")
    monkeypatch.setattr(runs.secrets, "choice", lambda _alphabet: next(picks))
    assert runs.new_prefix("hc", {"hc-1abc"}) == "hc-2xyz"


def test_prefix_pattern_finds_run_names_only() -> None:
    pattern = runs.prefix_pattern(["hc"])
    found = {
        name: (m.group(1) if (m := pattern.match(name)) else None)
        for name in [
            "hc-3k9a-host_server_1",
            "hc-3k9a-ctl",
            "hc-3k9a-host-server-1-container-virtio-usermap_0",
            "howto-hc-3k9a-lab-x1y2z3",
            "howto-hc-3k9a-container-virtio-user",
            # names of the previous naming scheme and of other things: not a run's
            "hc-host_server_1",
            "hc-ctl",
            "hc-switch",
            "howto-hc-lab-gcwkpkbd",
            "hc-host-server-1-vm1-switchmap_0",
            "xy-3k9a-tg",
        ]
    }
    assert found == {
        "hc-3k9a-host_server_1": "hc-3k9a",
        "hc-3k9a-ctl": "hc-3k9a",
        "hc-3k9a-host-server-1-container-virtio-usermap_0": "hc-3k9a",
        "howto-hc-3k9a-lab-x1y2z3": "hc-3k9a",
        "howto-hc-3k9a-container-virtio-user": "hc-3k9a",
        "hc-host_server_1": None,
        "hc-ctl": None,
        "hc-switch": None,
        "howto-hc-lab-gcwkpkbd": None,
        "hc-host-server-1-vm1-switchmap_0": None,
        "xy-3k9a-tg": None,
    }


def test_subnet_candidates_start_at_the_preferred_block_and_wrap() -> None:
    blocks = list(runs.subnet_candidates(NET("198.19.255.0/24"), fixed=False))
    assert blocks[:2] == [NET("198.19.255.0/24"), NET("198.18.0.0/24")]
    assert len(blocks) == 512 and all(b.subnet_of(runs.MANAGEMENT_RANGE) for b in blocks)
    assert list(runs.subnet_candidates(NET("198.18.4.0/24"), fixed=True)) == [NET("198.18.4.0/24")]


def test_pick_subnet_skips_live_runs_and_routes() -> None:
    live = [record(subnet="198.18.0.0/24"), record("hc-2abc", subnet="198.18.2.0/24")]
    routes = [NET("198.18.1.128/25"), NET("192.0.2.0/24")]
    picked = runs.pick_subnet(NET("198.18.0.0/24"), fixed=False, runs=live, routes=routes)
    assert picked == NET("198.18.3.0/24")
    assert runs.pick_subnet(NET("198.18.0.0/24"), fixed=True, runs=live, routes=[]) is None
    assert runs.pick_subnet(NET("198.18.0.0/24"), fixed=False, runs=[], routes=[NET(
        "198.18.0.0/15")]) is None  # fmt: skip


def test_hugepages_fit_counts_what_live_runs_may_still_take() -> None:
    a, b = record("hc-1aaa", hugepages=512), record("hc-2bbb", hugepages=512, pid=77)
    # 1024 free, nobody running: fits.
    assert runs.hugepage_shortfall(512, 1024, [], {}) is None
    # One run holds 512 and has used 200 of them (free is 824): 512 are still free for us.
    assert runs.hugepage_shortfall(512, 824, [a], {"hc-1aaa": 200}) is None
    # Two runs hold 512 each: nothing is left, and the line names both.
    line = runs.hugepage_shortfall(512, 1024, [a, b], {})
    assert line is not None and "\n" not in line
    assert line.startswith("2 MB hugepages: this run needs 512, 0 are free once live runs")
    assert "run hc-1aaa (pid 4242, started 2025-01-31 09:40:02, `python -m pytest" in line
    assert "run hc-2bbb (pid 77," in line
    # Something that is not a run uses them: said so.
    assert "no run of this suite holds any" in (runs.hugepage_shortfall(512, 100, [], {}) or "")
    assert runs.hugepage_shortfall(0, 0, [a, b], {}) is None


def test_record_round_trips_and_describes_itself() -> None:
    rec = record()
    assert RunRecord.from_json(rec.to_json()) == rec
    assert rec.describe() == (
        "run hc-1abc (pid 4242, started 2025-01-31 09:40:02, "
        "`python -m pytest testsuites/test_virtio_user_container.py`)"
    )


def test_wait_seconds_from_the_environment() -> None:
    assert runs.wait_seconds({}) == runs.DEFAULT_WAIT_S
    assert runs.wait_seconds({runs.WAIT_ENV: "0"}) == 0
    assert runs.wait_seconds({runs.WAIT_ENV: " 12.5 "}) == 12.5
    for bad in ("soon", "-1"):
        with pytest.raises(ValueError, match=f"^HOWTO_LAB_WAIT='{bad}': expected a number"):
            runs.wait_seconds({runs.WAIT_ENV: bad})


def test_registry_needs_its_lock(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="locked"):
        Registry(tmp_path).scan()


def test_a_lease_is_live_until_released(tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    with registry.locked():
        lease = registry.register(record())
        with pytest.raises(FileExistsError):
            registry.register(record())
    # Another Registry object in the same process opens its own lock: still live.
    with Registry(tmp_path).locked() as other:
        live, dead = other.scan()
    assert [r.prefix for r in live] == ["hc-1abc"] and dead == []
    lease.release()
    lease.release()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock"]


HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from framework.lab.runs import Registry, RunRecord
    registry = Registry(Path(sys.argv[1]))
    with registry.locked():
        lease = registry.register(RunRecord(prefix="hc-9zzz", pid=0, started=time.time(),
                                            command="holder", subnet="198.18.9.0/24"))
    print("HELD", flush=True)
    time.sleep(600)
    """
)


def test_a_killed_owners_lease_is_dead(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "HELD"
        registry = Registry(tmp_path)
        with registry.locked():
            live, dead = registry.scan()
        assert [r.prefix for r in live] == ["hc-9zzz"] and dead == []
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        with registry.locked():
            live, dead = registry.scan()
            assert live == [] and [lease.prefix for lease in dead] == ["hc-9zzz"]
            assert dead[0].record is not None and dead[0].record.command == "holder"
            dead[0].release()
        assert sorted(p.name for p in tmp_path.iterdir()) == [".lock"]
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_command_of_keeps_both_ends() -> None:
    # A child of known, long command line: this process's own may be short enough to fit.
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(30)", "x" * 60, "the-end"]
    )
    try:
        whole = f"{Path(sys.executable).name} -c import time; time.sleep(30) {'x' * 60} the-end"
        deadline = time.monotonic() + 5
        while runs.command_of(child.pid, limit=10_000) != whole and time.monotonic() < deadline:
            time.sleep(0.05)  # until the child has exec'd
        assert runs.command_of(child.pid, limit=10_000) == whole
        short = runs.command_of(child.pid, limit=40)
        assert len(short) <= 40 and " ... " in short
        assert short.startswith(whole[:20]) and short.endswith(whole[-15:])
    finally:
        child.kill()
        child.wait()
    assert runs.command_of(2**22 + 1) == "?"


def test_pages_used_counts_the_files_in_a_runs_hugetlbfs_directory(tmp_path: Path) -> None:
    """A non-root testpmd's hugepage files live in a directory named with the run's prefix
    (guide 6's root-privilege limitation): they are the run's pages too."""
    page = b"\1" * runs.HUGEPAGE_BYTES
    (tmp_path / "hc-1abc-host-server-1-pvp-hostmap_0").write_bytes(page)
    own = tmp_path / "hc-1abc-host-server-1-guide6-virtio-user-65534"
    own.mkdir()
    (own / "hc-1abc-host-server-1-guide6-virtio-usermap_0").write_bytes(page)
    (tmp_path / "hc-2xyz-host-server-1-pvp-hostmap_0").write_bytes(page)  # another run's
    assert runs.pages_used("hc-1abc", [str(tmp_path)]) == 2
