"""Guide 6 (virtio_user for container networking) as one object.

The guide's set-up, on a DUT host: a testpmd on the host with a vhost-user port (step 4),
a testpmd in a container with a virtio_user port on that socket (step 5). To carry traffic
from the traffic generator, the host testpmd also owns the host's NIC port toward the
switch and forwards between it and the vhost-user port (io), and the container testpmd
sends every packet back (macswap), so a frame from the TG crosses vhost-user twice and
returns to the TG with its MAC addresses swapped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from framework.config.model import DEFAULT_HUGEPAGE_MOUNT, DpdkBuild
from framework.container import ContainerEngine
from framework.container.image import ImageBuild
from framework.container.memory import ContainerMemory, read_memory
from framework.container.testpmd import start_container_testpmd, testpmd_image
from framework.dpdk.args import (
    EalOptions,
    TestPmdOptions,
    Translation,
    translate_guide_command,
)
from framework.dpdk.launch import LaunchRecord, file_prefix
from framework.dpdk.modes import ForwardingMode
from framework.dpdk.parsers import PortInfo
from framework.dpdk.testpmd import StartAttempt, TestPmd, TestPmdStartError
from framework.dpdk.version import DpdkVersion
from framework.lab.hosts import HostHandle, PortHandle
from framework.report.attach import attach_text
from framework.report.drift import Drift, attach_drift
from framework.scenarios import guest_dpdk
from framework.scenarios.stages import Made
from framework.scenarios.vhost_switch import VhostSwitch
from framework.traffic.generator import TrafficGenerator
from framework.traffic.packets import STREAM_DST_IP, swap_macs, udp_flow
from framework.traffic.trials import StreamTrials, TrialFlow, flow_markers

log = logging.getLogger("howto.guide6")

# The guide's own command lines (17.05), reported next to what ran instead.
GUIDE_HOST_COMMAND = (
    "$(testpmd) -l 0-1 -n 4 --socket-mem 1024,1024 --vdev 'eth_vhost0,iface=/tmp/sock0' "
    "--file-prefix=host --no-pci -- -i"
)
GUIDE_CONTAINER_COMMAND = (
    "docker run -i -t -v /tmp/sock0:/var/run/usvhost -v /dev/hugepages:/dev/hugepages "
    "dpdk-app-testpmd testpmd -l 6-7 -n 4 -m 1024 --no-pci "
    "--vdev=virtio_user0,path=/var/run/usvhost --file-prefix=container "
    "-- -i --txqflags=0xf00 --disable-hw-vlan"
)
CONTAINER_SOCKET = "/var/run/usvhost"  # where the guide mounts the socket in the container
# DPDK's reconnect form (virtio_user server=1): the container makes the socket, in a
# directory of the host mounted here.
CONTAINER_SOCKET_DIR = "/var/run/usvhost.d"
SOCKET_NAME = "vhost-user0.sock"
# Both testpmds fit in the virtual lab's 1 GiB of 2 MB hugepages with room to spare.
MEMORY_MB = 128
MBUFS = 16384
# 6.3: the vhost side takes at most VHOST_MEMORY_MAX_NREGIONS (8) memory regions, one per
# hugepage file. A container testpmd kept to 8 pages of 2 MB stays within them without
# --single-file-segments: EAL reserves the 16 MB up front, testpmd's own tables take about
# 10 MB of it, 1536 mbufs fit in the rest (measured on 22.11: 1792 still do, 2048 make the
# heap grow a 9th page, and virtio_user then reports "Too many memory regions").
EIGHT_REGIONS_MB = 16
EIGHT_REGIONS_MBUFS = 1536
# Who a non-root container runs as: nobody:nogroup, on Debian and most others.
NON_ROOT = "65534:65534"
# 6.3's HUGEFILE_FMT ("%smap_%d") with EAL's default prefix "rte": the very name of a first
# hugepage file, given to the container's testpmd executable.
HUGEFILE_LOOKALIKE = "/usr/local/bin/rtemap_0"


@dataclass(frozen=True)
class ContainerForm:
    """How step 5's container testpmd runs: the set-up's form, or one 6.3 speaks of.

    The set-up's form (all defaults) is the guide's line as 22.11 runs it on 2 MB pages:
    --single-file-segments keeps the container's memory in one file (6.3's third
    limitation). The other fields reproduce the other limitations.
    """

    single_file_segments: bool = True
    huge_unlink: bool = False  # 6.3: "cannot work with --huge-unlink"
    no_huge: bool = False  # 6.3: "cannot work with --no-huge"
    memory_mb: int = MEMORY_MB
    mbufs: int = MBUFS
    user: str | None = None  # "uid:gid" testpmd runs as; None: root (6.3: "a must")
    # A hugetlbfs directory `user` owns for its hugepage files, and the vhost-user socket
    # given to `user`: what a non-root EAL and virtio_user need and the guide's mounts deny.
    user_owns_its_files: bool = False
    # The container runs the DPDK under test's testpmd mounted at this path (6.3: "should
    # not use file name like HUGEFILE_FMT"); None: the image's own.
    program: str | None = None

    def describe(self) -> str:
        """The form in the words of testpmd's options, for a report step."""
        words = [
            *(["--single-file-segments"] if self.single_file_segments else []),
            *(["--huge-unlink"] if self.huge_unlink else []),
            *(["--no-huge"] if self.no_huge else []),
            f"-m {self.memory_mb}",
            f"--total-num-mbufs={self.mbufs}",
        ]
        if self.user:
            owns = ", owning a hugetlbfs dir and the socket" if self.user_owns_its_files else ""
            words.append(f"as user {self.user}{owns}")
        if self.program:
            words.append(f"run as {self.program}")
        return " ".join(words)


STEP_5 = ContainerForm()


@dataclass
class ContainerNetworking:
    """Guide 6 on one DUT host: a host testpmd (vhost-user) and a container testpmd."""

    host: HostHandle
    version: DpdkVersion
    build: DpdkBuild
    queues: int = 1  # the guide's lines have no queues=: one queue pair each
    # The host's hugetlbfs, mounted at the same path in the container.
    hugepage_mount: str = DEFAULT_HUGEPAGE_MOUNT
    # Distinguishes the socket, file prefixes and container of several set-ups on one host.
    name: str = "guide6"
    launches: list[LaunchRecord] = field(default_factory=list)
    # Each guide command line as translated, with the release it was translated for.
    translations: list[tuple[Translation, DpdkVersion]] = field(default_factory=list)
    _containers: list[str] = field(default_factory=list)
    _granted: list[str] = field(default_factory=list)  # hugetlbfs dirs made for a user
    _form: ContainerForm = STEP_5  # the running (or last started) container's form
    # DPDK's reconnect form instead of the guide's: virtio_user server=1 makes the socket,
    # the host's vhost port connects to it (client=1), and either side may restart.
    reconnect: bool = False
    engine = Made[ContainerEngine]("build_image()")
    image = Made[ImageBuild]("build_image()")
    # The release of the container's testpmd (a mix's guest build's, else `version`).
    container_version = Made[DpdkVersion]("build_image()")
    switch = Made[VhostSwitch]("start_host_testpmd()")
    container_pmd = Made[TestPmd]("start_container_testpmd()")

    @property
    def testpmd(self) -> str:
        """The host's testpmd (the build's)."""
        return self.build.host_testpmd

    @property
    def socket(self) -> str:
        """The vhost-user socket on the host (the container sees it mounted)."""
        if self.reconnect:
            return f"{self.socket_dir}/{SOCKET_NAME}"
        return f"{self.host.work_dir}/{self.name}-{SOCKET_NAME}"

    @property
    def socket_dir(self) -> str:
        """The reconnect form's directory for the container's socket, on the host."""
        return f"{self.host.work_dir}/{self.name}-sockets"

    @property
    def nic(self) -> PortHandle:
        """The host's NIC port toward the switch."""
        return self.host.data_port(0)

    # -- guide steps 1-3: DPDK and the container image ---------------------------------

    def build_image(self) -> ImageBuild:
        """Steps 2-3 ("write a Dockerfile", "build a Docker image"), from the DPDK under test.

        The image is a mix's guest build's, where the test is a mix's.
        """
        self.engine, self.image = testpmd_image(self.host, self.build)
        self.container_version = guest_dpdk.container_version(
            self.host.session, self.build, self.version
        )
        return self.image

    # -- guide step 4 ------------------------------------------------------------------

    def start_host_testpmd(self) -> TestPmd:
        """Step 4: a testpmd on the host with a vhost-user port (and the NIC port)."""
        self._translate(GUIDE_HOST_COMMAND, self.testpmd, self.version)
        self._new_switch()
        return self.restart_host_testpmd()

    def _translate(self, guide: str, testpmd: str, version: DpdkVersion) -> None:
        """The guide's command line as the build of `version` spells it, kept as drift."""
        done = translate_guide_command(guide, version, testpmd)
        self.translations.append((done, version))
        attach_drift([Drift(done.original, done.command, "; ".join(done.changes))])

    def _new_switch(self) -> None:
        # in the form of the moment: the socket's place and the vhost port's role follow it
        self.switch = VhostSwitch(
            self.host, self.version, self.testpmd, [self.socket], name=f"{self.name}-vhost",
            queues=self.queues, memory_mb=MEMORY_MB, client=self.reconnect,
        )  # fmt: skip

    def quit_host_testpmd(self) -> str:
        """`quit` the host testpmd: its vhost-user port goes with it. What it printed."""
        output = self.switch.pmd.quit()
        self._attach(self.switch.pmd)
        self.switch.close()
        return output

    def restart_host_testpmd(self) -> TestPmd:
        """Step 4's host testpmd again, the same command line (after quit_host_testpmd)."""
        pmd = self.switch.start()
        self.launches.append(self.switch.launch)
        return pmd

    @property
    def host_pmd(self) -> TestPmd:
        """The host testpmd (the vhost-user side)."""
        return self.switch.pmd

    @property
    def nic_port(self) -> int:
        """The host testpmd's port id of the NIC."""
        return self.switch.nic_port

    @property
    def vhost_port(self) -> int:
        """The host testpmd's port id of the vhost-user port."""
        return self.switch.vhost_ports[0]

    # -- guide step 5 ------------------------------------------------------------------

    def start_container_testpmd(self, form: ContainerForm = STEP_5) -> TestPmd:
        """Step 5: a container instance with a virtio_user port on the mounted socket.

        In the set-up's form unless `form` says otherwise. Raises TestPmdStartError if
        testpmd does not start; the container is removed by stop_container() either way.
        """
        if ContainerNetworking.image.peek(self) is None:
            self.build_image()
        self._translate(GUIDE_CONTAINER_COMMAND, self.image.testpmd, self.container_version)
        queues = self.queues
        server = ",server=1" if self.reconnect else ""
        self._form = form
        eal = EalOptions(
            # Forward on lcore 0: the host testpmd forwards on lcore 1.
            lcores="0-1",
            memory_mb=form.memory_mb,
            no_pci=True,
            file_prefix=self.container_prefix,
            single_file_segments=form.single_file_segments,
            huge_unlink=form.huge_unlink,
            no_huge=form.no_huge,
            vdevs=[f"virtio_user0,path={self.container_socket},queues={queues}{server}"],
            extra=["--main-lcore", "1"],
        )
        mounts = [(self.socket, CONTAINER_SOCKET), (self.hugepage_mount, self.hugepage_mount)]
        if self.reconnect:
            self.host.session.run(["mkdir", "-p", "--", self.socket_dir])
            mounts[0] = (self.socket_dir, CONTAINER_SOCKET_DIR)
        if form.program:
            guest = self.build.guest_side
            mounts.append((guest.on_host(guest.testpmd), form.program))
        if form.user and form.user_owns_its_files:
            eal.extra += ["--huge-dir", self._grant(form.user)]
        app = TestPmdOptions(rxq=queues, txq=queues, total_num_mbufs=form.mbufs, nb_cores=1)
        self._containers.append(self.container_name)
        started = start_container_testpmd(
            self.host, self.engine, self.image, self._container_suffix, eal, app,
            testpmd=form.program, version=self.container_version, mounts=mounts,
            user=form.user,
        )  # fmt: skip
        self.launches.append(started.launch)
        self.container_pmd = started.pmd
        self.container_pmd.set_fwd(ForwardingMode.MACSWAP)
        self.container_pmd.start()
        return self.container_pmd

    @property
    def container_socket(self) -> str:
        """The socket's path in the container."""
        return f"{CONTAINER_SOCKET_DIR}/{SOCKET_NAME}" if self.reconnect else CONTAINER_SOCKET

    def use_reconnect_form(self, on: bool) -> None:
        """Steps 4 and 5 again, in DPDK's reconnect form (on) or in the guide's (off)."""
        self.stop_container()
        self.switch.close()
        self.reconnect = on
        self._new_switch()
        self.restart_host_testpmd()
        self.start_container_testpmd()

    def container_link(self, *, up: bool, timeout: float = 10.0) -> PortInfo:
        """The container's virtio_user port once its link is up (down), or after `timeout`."""
        return self.container_pmd.wait_link(0, up=up, timeout=timeout)

    def attempt_container(self, form: ContainerForm) -> StartAttempt:
        """Step 5 in a form 6.3 says cannot work: what came of it, refused or started.

        A container that started stays up (stop_container() ends it).
        """
        try:
            pmd = self.start_container_testpmd(form)
        except TestPmdStartError as error:
            return StartAttempt.of(error)
        return StartAttempt(" ".join(pmd.argv), None, pmd.startup_output)

    @property
    def _container_suffix(self) -> str:
        return f"{self.name}-virtio-user"

    @property
    def container_name(self) -> str:
        """The container engine's name of the container testpmd's container."""
        return f"howto-{self.host.prefix}-{self._container_suffix}"

    @property
    def container_prefix(self) -> str:
        """The container testpmd's --file-prefix (its hugepage files are <prefix>map_N)."""
        return file_prefix(self.host, self._container_suffix)

    def _grant(self, user: str) -> str:
        """A hugetlbfs directory `user` owns, and the vhost-user socket given to `user`."""
        uid = user.split(":")[0]
        directory = f"{self.hugepage_mount.rstrip('/')}/{self.container_prefix}-{uid}"
        self.host.session.run(["mkdir", "-p", "--", directory])
        self._granted.append(directory)
        self.host.session.run(["chown", "--", user, directory, self.socket])
        return directory

    def container_memory(self) -> ContainerMemory:
        """Where the running container testpmd's memory lives, seen from the host."""
        hugetlbfs = self._granted[-1] if self._form.user_owns_its_files else self.hugepage_mount
        return read_memory(
            self.host.session, self.engine, self.container_name, hugetlbfs, self.container_prefix
        )

    # -- what the host sees ------------------------------------------------------------

    def host_vhost_info(self) -> PortInfo:
        """`show port info` of the host's vhost-user port."""
        return self.host_pmd.show_port_info(self.vhost_port)

    def wait_vhost_link_up(self, timeout: float = 10.0) -> PortInfo:
        """The host's vhost-user port once it is up, or as it is after `timeout` s."""
        return self.host_pmd.wait_link_up(self.vhost_port, timeout=timeout, check=False)

    def queue_counts(self, queues: int) -> list[list[int]]:
        """Per queue: the host vhost port's TX, the container's RX and TX, the host's RX.

        For the `queues` the guide's form has, not the set-up's own count: a set-up that
        came up with fewer shows its missing queues as carrying nothing.
        """
        host = self.host_pmd.show_port_xstats(self.vhost_port)
        container = self.container_pmd.show_port_xstats(0)
        return [
            [host.get(f"tx_q{q}_good_packets", 0), container.get(f"rx_q{q}_good_packets", 0),
             container.get(f"tx_q{q}_good_packets", 0), host.get(f"rx_q{q}_good_packets", 0)]
            for q in range(queues)
        ]  # fmt: skip

    def clear_stats(self) -> None:
        """Zero the counters of both testpmds."""
        for pmd in (self.host_pmd, self.container_pmd):
            if pmd.alive:
                pmd.clear_counters()

    # -- teardown ----------------------------------------------------------------------

    def stop_container(self) -> None:
        """Quit the container testpmd and remove its container (transcript to the report).

        Also what was given to a non-root container: its hugetlbfs directory (and the
        hugepage files in it) goes, the socket is root's again.
        """
        if pmd := ContainerNetworking.container_pmd.peek(self):
            self._attach(pmd)
            pmd.close()
            del self.container_pmd
        if engine := ContainerNetworking.engine.peek(self):
            for name in dict.fromkeys(self._containers):
                engine.remove(name)
            self._containers.clear()
        if self._granted:
            self.host.session.run(["rm", "-rf", "--", *self._granted], check=False)
            self.host.session.run(["chown", "--", "0:0", self.socket], check=False)
            self._granted.clear()

    def trials(self, tg: TrafficGenerator, port: str, frame_bytes: int) -> StreamTrials:
        """Rate trials from the TG through the container and back to the same TG port.

        One stream per queue pair, each with its own addresses, for RSS to spread.
        """
        dut_mac = self.host_pmd.show_port_info(self.nic_port).mac.lower()
        markers = flow_markers(self.queues)
        flow_list = [
            TrialFlow(
                port,
                port,
                udp_flow(
                    tg.mac_of(port),
                    dut_mac,
                    f"198.18.1.{index + 1}",
                    STREAM_DST_IP,
                    10000 + index,
                    20000,
                    seq=0,
                    size=frame_bytes,
                    marker=marker,
                ),
                marker,
                expect=swap_macs,  # the container swaps the MACs; the host forwards io
            )  # fmt: skip
            for index, marker in enumerate(markers)
        ]
        return StreamTrials(tg, flow_list, frame_bytes)

    def close(self) -> None:
        """Remove the container, the host testpmd and the socket."""
        self.stop_container()
        if switch := ContainerNetworking.switch.peek(self):
            if switch.running:
                self._attach(switch.pmd)
            switch.close()  # also removes the socket it served
        self.host.session.run(["rm", "-rf", "--", self.socket_dir], check=False)

    def _attach(self, pmd: TestPmd) -> None:
        try:
            attach_text(f"{pmd.shell.name} transcript", pmd.shell.transcript)
        except Exception as exc:  # a report problem must not mask teardown
            log.warning("could not attach transcript: %s", exc)

    def report_commands(self) -> str:
        """The guide's command lines, their translation, and what this run started."""
        lines: list[str] = []
        for translation, version in self.translations:
            lines += [
                f"guide (17.05): {translation.original}",
                f"  as DPDK {version} spells it: {translation.command}",
            ]
            lines += [f"  - {change}" for change in translation.changes]
        for record in self.launches:
            lines.append(f"ran on {record.host} ({record.name}): {' '.join(record.argv)}")
            lines += [f"  - {change}" for change in record.changes]
        return "\n".join(lines)
