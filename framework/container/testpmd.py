"""A testpmd in a container on a DUT host (guides 4 and 6): one way to start it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from framework.config.model import DpdkBuild
from framework.container.engine import ContainerEngine
from framework.container.image import ImageBuild, build_testpmd_image
from framework.dpdk.args import EalOptions, TestPmdOptions, testpmd_argv
from framework.dpdk.launch import LaunchRecord
from framework.dpdk.testpmd import TestPmd
from framework.dpdk.version import DpdkVersion
from framework.lab.hosts import HostHandle


@dataclass
class ContainerTestPmd:
    """What started: the typed testpmd, its container's name and its command line."""

    pmd: TestPmd
    container: str
    launch: LaunchRecord
    # testpmd's own argv inside the container (the launch's is the engine's command line)
    testpmd_argv: list[str]


def testpmd_image(host: HostHandle, build: DpdkBuild) -> tuple[ContainerEngine, ImageBuild]:
    """The host's container engine and a testpmd image of `build`'s guest side.

    That is the DPDK under test, or a mix's guest build. With no working engine the
    "container" is a plain host process (that build's host_testpmd): nothing to build.
    """
    build = build.guest_side
    preferred = host.spec.container_engine
    engine = ContainerEngine.probe(
        host.session,
        preferred=preferred if preferred != "none" else "process",
        work_dir=host.work_dir,
    )
    if engine.kind == "process":
        ref = f"host:{build.host_testpmd}"
        return engine, ImageBuild(ref, False, 0.0, 0, build.host_testpmd)
    image = build_testpmd_image(host.session, build.testpmd, engine=engine, enter=build.enter)
    return engine, replace(image, testpmd=build.testpmd)


def start_container_testpmd(
    host: HostHandle,
    engine: ContainerEngine,
    image: ImageBuild,
    name: str,
    eal: EalOptions,
    app: TestPmdOptions,
    *,
    testpmd: str | None = None,
    version: DpdkVersion,
    mounts: Sequence[tuple[str, str]],
    timeout: float = 60,
    user: str | None = None,
) -> ContainerTestPmd:
    """Run testpmd in a container named after the run and `name`, mounts as given.

    A container of that name left by an earlier test of this run is removed first.
    `user` ("uid:gid") runs it as that user; None: as root, as the guides do. `testpmd`:
    another path in the container than the image's (one mounted there).
    """
    changes: list[str] = []
    inner = testpmd_argv(testpmd or image.testpmd, eal, app, version, changes)
    container = f"howto-{host.prefix}-{name}"
    engine.remove(container)
    argv, env = engine.run_argv(image.ref, inner, name=container, mounts=list(mounts), user=user)
    full = ["env", *(f"{k}={v}" for k, v in env.items()), *argv] if env else argv
    pmd = TestPmd.launch(
        host.session, full, name=f"{host.name}/{container}", version=version, timeout=timeout
    )
    return ContainerTestPmd(pmd, container, LaunchRecord(name, host.name, full, changes), inner)
