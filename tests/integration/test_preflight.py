"""python -m framework.lab.preflight against real hosts: the virtual lab's sshd namespaces.

A copy of the virtual topology that asks for what this machine does not have must fail
exactly those checks, one line each; a lab whose hosts do not answer names each host.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def preflight(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return subprocess.run(
        [sys.executable, "-m", "framework.lab.preflight", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def failures(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [
        line.removeprefix("FAIL ") for line in done.stdout.splitlines() if line.startswith("FAIL")
    ]


@pytest.mark.selftest
def test_preflight_names_each_missing_thing(tmp_path: Path) -> None:
    topo = yaml.safe_load((ROOT / "topologies" / "virtual.yaml").read_text())
    topo["dpdk"]["version"] = "21.11"  # this machine has 22.11
    topo["vms"]["pvp_vm"]["qemu"] = "qemu-system-sparc64"  # not installed here
    topo["hosts"]["host_server_1"]["capabilities"].append("vhost_net")  # no /dev/vhost-net
    path = tmp_path / "wrong.yaml"
    path.write_text(yaml.safe_dump(topo, sort_keys=False))
    report = tmp_path / "checks.json"
    done = preflight("--topology", str(path), "--json", str(report))
    assert done.returncode == 3, done.stdout + done.stderr
    failed = failures(done)
    assert len(failed) == 4, failed  # DPDK on both DUT hosts, the VM's QEMU, vhost-net
    assert sum("DPDK: /usr/bin/dpdk-testpmd is DPDK 22.11" in f and "says 21.11" in f
               for f in failed) == 2, failed  # fmt: skip
    assert any(
        f.startswith("host_server_1: QEMU: qemu-system-sparc64 does not run") for f in failed
    )
    assert "host_server_1: vhost-net: /dev/vhost-net missing" in failed
    checks = json.loads(report.read_text())
    assert {c["host"] for c in checks} == set(topo["hosts"])
    assert done.stdout.splitlines()[-1] == f"pre-flight: {len(checks)} checks, 4 failed"


def test_preflight_of_an_unreachable_lab_names_each_host(tmp_path: Path) -> None:
    lab = yaml.safe_load((ROOT / "topologies" / "lab.yaml").read_text())
    # loopback ports where nothing listens: never the sample's hosts, nothing leaves here
    for port, host in enumerate(lab["hosts"].values(), start=1):
        host.update(address="127.0.0.1", ssh_port=port)
        host.pop("key_file", None)
    path = tmp_path / "unreachable.yaml"
    path.write_text(yaml.safe_dump(lab, sort_keys=False))
    done = preflight("--topology", str(path))
    assert done.returncode == 3, done.stdout + done.stderr
    failed = failures(done)
    assert [f.split(":")[0] for f in failed] == list(lab["hosts"]), failed
    assert all("SSH: at 127.0.0.1:" in f for f in failed), failed


def test_preflight_of_a_bad_topology_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nkind: lab\nhosts: {tg: {role: tg, ssh_port: twenty-two}}\n")
    done = preflight("--topology", str(path))
    assert done.returncode == 4, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "hosts.tg.ssh_port" in lines[0], done.stderr
