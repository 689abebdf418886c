"""framework.lab.sriov against a fake sysfs tree: guide 1's VF set-up, vfio-pci binding and
restore, with a LocalSession. modprobe and ip are recorded, never run on this machine."""

from __future__ import annotations

import logging
import shlex
from pathlib import Path

import pytest

from framework.errors import RemoteError
from framework.lab.sriov import (
    GUIDE_READ_NUMVFS,
    GUIDE_RMMOD,
    GUIDE_WRITE_NUMVFS,
    NOT_IN_GUIDE,
    SriovError,
    SriovPf,
    VirtualFunction,
)
from framework.remote.session import CommandResult, LocalSession

PF = "0000:09:00.0"
VF = "0000:09:10.0"
VF0 = VirtualFunction("lab1", PF, 0, VF)


class FakeHost(LocalSession):
    """A LocalSession over a fake sysfs that never runs modprobe or ip.

    With kernel=True, writes to a driver's unbind file and to drivers_probe act as the kernel
    would on the driver symlink (driver_override first, else the device's own
    driver: ixgbe for the PF, ixgbevf for the VF).
    """

    def __init__(self, sysfs: Path, *, kernel: bool = False, modprobe_error: str = "") -> None:
        super().__init__("lab1")
        self.sysfs, self.kernel, self.modprobe_error = sysfs, kernel, modprobe_error
        self.commands: list[str] = []
        self.gone = False
        self.ip_json = ""

    def _execute(self, command: str, timeout: float | None, stdin: str | None) -> CommandResult:
        if self.gone:
            raise RemoteError(f"{self.name}: cannot reach 10.0.0.1:22 over SSH: timed out")
        self.commands.append(command)
        argv = shlex.split(command)
        if argv[0] == "modprobe":
            code = 1 if self.modprobe_error else 0
            return CommandResult(self.name, command, code, "", self.modprobe_error)
        if argv[0] == "ip":
            out = self.ip_json if argv[1:3] == ["-j", "link"] else ""
            return CommandResult(self.name, command, 0, out, "")
        result = super()._execute(command, timeout, stdin)
        if self.kernel and result.ok and argv[:2] == ["sh", "-c"]:
            self._react(*shlex.split(argv[2])[1:4:2])
        return result

    def _react(self, value: str, path: str) -> None:
        devices = self.sysfs / "bus/pci/devices"
        link = devices / value / "driver"
        if path.endswith("/unbind") and link.is_symlink():
            link.unlink()
        elif path.endswith("/drivers_probe") and not link.is_symlink():
            override = (devices / value / "driver_override").read_text().strip()
            own = "ixgbe" if value == PF else "ixgbevf"
            link.symlink_to(f"../../drivers/{override or own}")

    def ran(self, program: str) -> list[str]:
        return [c for c in self.commands if c.split()[0] == program]


def make_sysfs(root: Path, *, total: int = 8, numvfs: int = 0) -> Path:
    sysfs = root / "sys"
    pci = sysfs / "bus/pci"
    pf, vf = pci / "devices" / PF, pci / "devices" / VF
    for d in (pf / "net/ens3f0", vf, pci / "drivers/ixgbevf", pci / "drivers/vfio-pci"):
        d.mkdir(parents=True)
    (pf / "sriov_totalvfs").write_text(f"{total}\n")
    (pf / "sriov_numvfs").write_text(f"{numvfs}\n")
    (pf / "virtfn0").symlink_to(f"../{VF}")
    (vf / "driver").symlink_to("../../drivers/ixgbevf")
    for driver in ("ixgbevf", "vfio-pci"):
        (pci / "drivers" / driver / "unbind").write_text("")
    (pci / "drivers_probe").write_text("")
    return sysfs


@pytest.fixture
def sysfs(tmp_path: Path) -> Path:
    return make_sysfs(tmp_path)


def numvfs(sysfs: Path) -> str:
    return (sysfs / "bus/pci/devices" / PF / "sriov_numvfs").read_text().strip()


def driver_link(sysfs: Path) -> Path:
    return sysfs / "bus/pci/devices" / VF / "driver"


def point_driver(sysfs: Path, driver: str) -> None:
    driver_link(sysfs).unlink()
    driver_link(sysfs).symlink_to(f"../../drivers/{driver}")


# -- enable, total_vfs, vf --------------------------------------------------------------------


def test_enable_reads_writes_and_reads_back(sysfs: Path) -> None:
    pf = SriovPf(FakeHost(sysfs), PF, sysfs=str(sysfs))
    assert pf.total_vfs() == 8 and pf.num_vfs() == 0
    assert pf.enable() == [VF0]
    assert numvfs(sysfs) == "1"
    path = f"{sysfs}/bus/pci/devices/{PF}/sriov_numvfs"
    assert (GUIDE_WRITE_NUMVFS, f"echo 1 > {path}") in pf.steps
    assert [ran for guide, ran in pf.steps if guide == GUIDE_READ_NUMVFS][-2:] == [
        f"cat {path}",
        f"cat {path}",
    ]


def test_steps_pair_each_guide_line_with_what_ran(sysfs: Path) -> None:
    pf = SriovPf(FakeHost(sysfs), PF, sysfs=str(sysfs))
    pf.unbind(pf.enable()[0])
    guided = [(g, r.split()[0]) for g, r in pf.steps if g != NOT_IN_GUIDE]
    # The guide's script, in its order: cat, echo 1 >, cat, rmmod (here: echo > unbind).
    assert guided == [
        (GUIDE_READ_NUMVFS, "cat"),
        (GUIDE_WRITE_NUMVFS, "echo"),
        (GUIDE_READ_NUMVFS, "cat"),
        (GUIDE_RMMOD, "echo"),
    ]
    assert pf.steps[-1] == (GUIDE_RMMOD, f"echo {VF} > {sysfs}/bus/pci/drivers/ixgbevf/unbind")


def test_enable_remembers_the_count_found_and_restore_puts_it_back(sysfs: Path) -> None:
    host = FakeHost(sysfs)
    pf = SriovPf(host, PF, sysfs=str(sysfs))
    pf.enable(1)
    pf.enable(1)  # a second enable keeps the first count found (0), not 1
    pf.restore()
    assert numvfs(sysfs) == "0"
    pf.steps.clear()
    pf.restore()  # nothing left to do
    assert pf.steps == []


def test_enable_goes_through_zero_from_another_count_and_back(tmp_path: Path) -> None:
    sysfs = make_sysfs(tmp_path, numvfs=2)
    pf = SriovPf(FakeHost(sysfs), PF, sysfs=str(sysfs))
    pf.enable(1)
    writes = [ran.split()[1] for _, ran in pf.steps if ran.startswith("echo")]
    assert writes == ["0", "1"]  # the kernel refuses 2 -> 1 directly
    pf.steps.clear()
    pf.restore()
    assert [ran.split()[1] for _, ran in pf.steps if ran.startswith("echo")] == ["0", "2"]
    assert numvfs(sysfs) == "2"


def test_enable_refuses_more_vfs_than_the_pf_supports(tmp_path: Path) -> None:
    sysfs = make_sysfs(tmp_path, total=2)
    pf = SriovPf(FakeHost(sysfs), PF, sysfs=str(sysfs))
    with pytest.raises(SriovError, match=r"^lab1: 0000:09:00.0 supports 2 VFs .*3 asked$"):
        pf.enable(3)
    assert numvfs(sysfs) == "0"


def test_enable_fails_when_sriov_numvfs_reads_otherwise(sysfs: Path) -> None:
    class Refusing(FakeHost):
        def _react(self, value: str, path: str) -> None:
            Path(path).write_text("0\n")  # as a PF whose VFs could not be created

    pf = SriovPf(Refusing(sysfs, kernel=True), PF, sysfs=str(sysfs))
    with pytest.raises(SriovError, match="sriov_numvfs reads 0 after writing 1"):
        pf.enable()


def test_no_sriov_totalvfs_is_named(sysfs: Path) -> None:
    (sysfs / "bus/pci/devices" / PF / "sriov_totalvfs").unlink()
    pf = SriovPf(FakeHost(sysfs), PF, sysfs=str(sysfs))
    with pytest.raises(SriovError) as error:
        pf.enable()
    assert str(error.value) == "lab1: 0000:09:00.0: no SR-IOV (no sriov_totalvfs)"


def test_a_pf_that_does_not_exist_is_named(sysfs: Path) -> None:
    pf = SriovPf(FakeHost(sysfs), "0000:0a:00.0", host="server-46", sysfs=str(sysfs))
    with pytest.raises(SriovError, match=r"^server-46: no PCI device 0000:0a:00.0 "):
        pf.total_vfs()


def test_vf_without_virtfn_link(sysfs: Path) -> None:
    pf = SriovPf(FakeHost(sysfs), PF, sysfs=str(sysfs))
    assert pf.vf(0).pci == VF
    with pytest.raises(SriovError, match=r"^lab1: 0000:09:00.0 has no VF 1 \(no virtfn1"):
        pf.vf(1)


@pytest.mark.parametrize("address", ["09:00.0", "0000:09:00.8", "0000:09:00.0; reboot", "../x"])
def test_pci_addresses_are_checked_before_use(sysfs: Path, address: str) -> None:
    host = FakeHost(sysfs)
    with pytest.raises(SriovError, match="is not of the form 0000:09:00.0"):
        SriovPf(host, address, sysfs=str(sysfs))
    with pytest.raises(SriovError, match="is not of the form"):
        SriovPf(host, PF, sysfs=str(sysfs)).driver(address)
    assert host.commands == []


# -- drivers ----------------------------------------------------------------------------------


def test_driver_is_the_symlink_basename_or_none(sysfs: Path) -> None:
    pf = SriovPf(FakeHost(sysfs), PF, sysfs=str(sysfs))
    assert pf.driver(VF) == "ixgbevf"
    driver_link(sysfs).unlink()
    assert pf.driver(VF) is None


def test_unbind_writes_the_address_to_its_drivers_unbind(sysfs: Path) -> None:
    pf = SriovPf(FakeHost(sysfs), PF, sysfs=str(sysfs))
    assert pf.unbind(VF0) == "ixgbevf"
    assert (sysfs / "bus/pci/drivers/ixgbevf/unbind").read_text() == f"{VF}\n"
    assert (sysfs / "bus/pci/drivers/vfio-pci/unbind").read_text() == ""


def test_unbind_of_an_unbound_vf_writes_nothing(sysfs: Path) -> None:
    driver_link(sysfs).unlink()
    pf = SriovPf(FakeHost(sysfs), PF, sysfs=str(sysfs))
    assert pf.unbind(VF0) is None
    assert (sysfs / "bus/pci/drivers/ixgbevf/unbind").read_text() == ""


def test_bind_vfio_unbinds_overrides_and_probes(sysfs: Path) -> None:
    host = FakeHost(sysfs, kernel=True)
    pf = SriovPf(host, PF, sysfs=str(sysfs))
    pf.bind_vfio(VF0)
    vf_dir = sysfs / "bus/pci/devices" / VF
    assert (vf_dir / "driver_override").read_text() == "vfio-pci\n"
    assert (sysfs / "bus/pci/drivers/ixgbevf/unbind").read_text() == f"{VF}\n"
    assert (sysfs / "bus/pci/drivers_probe").read_text() == f"{VF}\n"
    assert pf.driver(VF) == "vfio-pci"
    assert host.ran("modprobe") == ["modprobe vfio-pci"]


def test_bind_vfio_when_the_kernel_bound_it(sysfs: Path) -> None:
    point_driver(sysfs, "vfio-pci")  # what the kernel does on drivers_probe
    pf = SriovPf(FakeHost(sysfs), PF, sysfs=str(sysfs))
    pf.bind_vfio(VF0)
    assert (sysfs / "bus/pci/drivers_probe").read_text() == f"{VF}\n"


def test_bind_vfio_says_what_the_vf_is_bound_to_when_it_fails(sysfs: Path) -> None:
    host = FakeHost(sysfs, modprobe_error="modprobe: FATAL: Module vfio-pci not found\n")
    pf = SriovPf(host, PF, sysfs=str(sysfs))
    with pytest.raises(SriovError) as error:
        pf.bind_vfio(VF0)  # no kernel: the driver link stays on ixgbevf
    message = str(error.value)
    assert message == (
        f"lab1: VF 0 ({VF}) of {PF} is not bound to vfio-pci: bound to ixgbevf; "
        "modprobe vfio-pci: modprobe: FATAL: Module vfio-pci not found"
    )
    assert "\n" not in message


def test_bind_vfio_failure_when_left_unbound(sysfs: Path) -> None:
    driver_link(sysfs).unlink()
    pf = SriovPf(FakeHost(sysfs), PF, sysfs=str(sysfs))
    with pytest.raises(SriovError, match="is not bound to vfio-pci: bound to no driver$"):
        pf.bind_vfio(VF0)


# -- PF interface and VF link -----------------------------------------------------------------


def test_pf_interface(sysfs: Path) -> None:
    pf = SriovPf(FakeHost(sysfs), PF, sysfs=str(sysfs))
    assert pf.pf_interface() == "ens3f0"
    (sysfs / "bus/pci/devices" / PF / "net/ens3f1").mkdir()
    with pytest.raises(SriovError, match="found ens3f0, ens3f1$"):
        pf.pf_interface()


def test_pf_without_kernel_interface(sysfs: Path) -> None:
    (sysfs / "bus/pci/devices" / PF / "net/ens3f0").rmdir()
    (sysfs / "bus/pci/devices" / PF / "net").rmdir()
    pf = SriovPf(FakeHost(sysfs), PF, sysfs=str(sysfs))
    with pytest.raises(SriovError, match=r"^lab1: 0000:09:00.0 needs one kernel .*found none$"):
        pf.pf_interface()


def test_set_vf_link_runs_ip_on_the_pf_interface(sysfs: Path) -> None:
    host = FakeHost(sysfs)
    pf = SriovPf(host, PF, sysfs=str(sysfs))
    pf.set_vf_link(VF0, "disable")
    assert host.ran("ip") == ["ip link set dev ens3f0 vf 0 state disable"]
    with pytest.raises(SriovError, match="link state 'down' is not one of"):
        pf.set_vf_link(VF0, "down")  # type: ignore[arg-type]  # a wrong state on purpose
    assert len(host.ran("ip")) == 1


# `ip -j link show dev ens3f0` of a kernel PF with two VFs, in iproute2's form (ipaddress.c,
# print_vfinfo: one object per VF with "vf" and "address"). Written out, not captured: no
# SR-IOV NIC on this machine, and the kernel has no netdevsim to make one.
PF_LINK_JSON = (
    '[{"ifindex":4,"ifname":"ens3f0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],'
    '"mtu":1500,"address":"90:e2:ba:00:00:01","vfinfo_list":['
    '{"vf":0,"link_type":"ether","address":"3a:9c:41:07:5e:12","broadcast":"ff:ff:ff:ff:ff:ff",'
    '"spoofchk":true,"link_state":"auto","trust":false},'
    '{"vf":1,"link_type":"ether","address":"00:00:00:00:00:00",'
    '"broadcast":"ff:ff:ff:ff:ff:ff","spoofchk":true,"link_state":"auto","trust":false}]}]'
)


def test_vf_address_is_the_pfs_record_of_that_vf(sysfs: Path) -> None:
    host = FakeHost(sysfs)
    host.ip_json = PF_LINK_JSON
    pf = SriovPf(host, PF, sysfs=str(sysfs))
    assert pf.vf_address(VF0) == "3A:9C:41:07:5E:12"
    assert pf.vf_address(VirtualFunction("lab1", PF, 1, "0000:09:10.2")) == "00:00:00:00:00:00"
    assert host.ran("ip") == ["ip -j link show dev ens3f0"] * 2


def test_vf_address_of_a_vf_the_pf_does_not_list_is_named(sysfs: Path) -> None:
    host = FakeHost(sysfs)
    host.ip_json = PF_LINK_JSON.replace('"vf":0,', '"vf":5,')
    pf = SriovPf(host, PF, sysfs=str(sysfs))
    with pytest.raises(SriovError, match=r"^lab1: `ip link show dev ens3f0` lists no address for"):
        pf.vf_address(VF0)
    host.ip_json = "not json"
    with pytest.raises(SriovError, match="lists no address for .*: not json$"):
        pf.vf_address(VF0)


# -- restore ----------------------------------------------------------------------------------


def test_restore_unbinds_vfio_and_removes_the_vfs_it_created(sysfs: Path) -> None:
    host = FakeHost(sysfs, kernel=True)
    pf = SriovPf(host, PF, sysfs=str(sysfs))
    pf.bind_vfio(pf.enable()[0])
    pf.restore()
    assert (sysfs / "bus/pci/drivers/vfio-pci/unbind").read_text() == f"{VF}\n"
    assert (sysfs / "bus/pci/devices" / VF / "driver_override").read_text() == "\n"
    assert numvfs(sysfs) == "0"


def test_restore_gives_a_kept_vf_back_to_its_driver(tmp_path: Path) -> None:
    sysfs = make_sysfs(tmp_path, numvfs=1)
    pf = SriovPf(FakeHost(sysfs, kernel=True), PF, sysfs=str(sysfs))
    pf.bind_vfio(pf.enable(1)[0])
    assert pf.driver(VF) == "vfio-pci"
    pf.restore()
    assert pf.driver(VF) == "ixgbevf"
    assert numvfs(sysfs) == "1"


def test_restore_names_what_it_could_not_undo(tmp_path: Path) -> None:
    sysfs = make_sysfs(tmp_path, numvfs=1)
    pf = SriovPf(FakeHost(sysfs, kernel=True), PF, sysfs=str(sysfs))
    pf.bind_vfio(pf.vf(0))
    (sysfs / "bus/pci/drivers/vfio-pci/unbind").unlink()
    (sysfs / "bus/pci/drivers/vfio-pci").rmdir()  # the write fails, as a refused unbind
    with pytest.raises(SriovError, match=r"^lab1: 0000:09:00.0: not restored: .*still bound"):
        pf.restore()


def test_restore_only_warns_when_the_host_is_gone(
    sysfs: Path, caplog: pytest.LogCaptureFixture
) -> None:
    host = FakeHost(sysfs, kernel=True)
    pf = SriovPf(host, PF, sysfs=str(sysfs))
    pf.bind_vfio(pf.enable()[0])
    host.gone = True
    with caplog.at_level(logging.WARNING, logger="howto.sriov"):
        pf.restore()
    assert "lab1: could not restore SR-IOV of 0000:09:00.0" in caplog.text
    assert "cannot reach" in caplog.text


# -- a DPDK PF (guide 5.1) -----------------------------------------------------------------


def _pf_bound_to_ixgbe(sysfs: Path) -> Path:
    pf = sysfs / "bus/pci/devices" / PF
    (sysfs / "bus/pci/drivers/ixgbe").mkdir()
    (sysfs / "bus/pci/drivers/ixgbe/unbind").write_text("")
    (pf / "driver").symlink_to("../../drivers/ixgbe")
    (pf / "driver_override").write_text("\n")
    params = sysfs / "module/vfio_pci/parameters"
    params.mkdir(parents=True)
    (params / "enable_sriov").write_text("N\n")
    return pf


def test_a_dpdk_pf_is_bound_to_vfio_with_sriov_on_and_given_back(sysfs: Path) -> None:
    pf = _pf_bound_to_ixgbe(sysfs)
    host = FakeHost(sysfs, kernel=True)
    sriov = SriovPf(host, PF, sysfs=str(sysfs))
    sriov.bind_pf_vfio()
    assert sriov.driver(PF) == "vfio-pci"
    enable = sysfs / "module/vfio_pci/parameters/enable_sriov"
    assert enable.read_text().strip() == "Y"
    (vf,) = sriov.enable(1)
    sriov.bind_vfio(vf)
    probe = f"echo {PF} > {sysfs}/bus/pci/drivers_probe"
    assert ("dpdk-devbind.py -b igb_uio 01:00.0", probe) in sriov.steps
    sriov.restore()
    assert numvfs(sysfs) == "0"
    assert (pf / "driver").resolve().name == "ixgbe"
    assert (pf / "driver_override").read_text().strip() == ""
    assert enable.read_text().strip() == "N"


def test_a_dpdk_pf_that_vfio_will_not_take_is_named(sysfs: Path) -> None:
    _pf_bound_to_ixgbe(sysfs)
    host = FakeHost(sysfs, modprobe_error="modprobe: FATAL: Module vfio-pci not found")
    why = "bound to ixgbe; modprobe vfio-pci: modprobe: FATAL"
    with pytest.raises(SriovError, match=rf"lab1: PF {PF} is not bound to vfio-pci: {why}"):
        SriovPf(host, PF, sysfs=str(sysfs)).bind_pf_vfio()
