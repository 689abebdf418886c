"""The container layer of guide 6: a testpmd image built from the host, run by podman (or,
without an engine, as a plain process), driven over a PTY and removed without a trace."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import pytest

from framework.container.engine import ContainerEngine
from framework.container.image import CONTAINER_PMDS, build_testpmd_image, ensure_testpmd_image
from framework.errors import ConfigError
from framework.remote import LocalSession

pytestmark = pytest.mark.container

PROMPT = re.compile(r"testpmd> $")
TAG = f"t{os.getpid()}"
FILE_PREFIX = f"hcc-ct{os.getpid()}"
# Small, hugepage-free EAL: enough for a net_null port and the prompt.
NO_HUGE = ["-l", "0-1", "--no-huge", "-m", "64", "--no-pci"]


@pytest.fixture(scope="module")
def session() -> LocalSession:
    return LocalSession()


@pytest.fixture(scope="module")
def work_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("howto-container"))


@pytest.fixture(scope="module")
def podman(session: LocalSession, work_dir: str) -> Iterator[ContainerEngine]:
    engine = ContainerEngine.probe(session, "podman", work_dir=work_dir)
    if engine.kind != "podman":
        pytest.skip(f"no container engine: {engine.fallback_reason}")
    yield engine
    engine.remove_all(f"howto-{TAG}")


@pytest.fixture(scope="module")
def image(session: LocalSession, podman: ContainerEngine) -> str:
    return ensure_testpmd_image(session, engine=podman)


@pytest.fixture
def hugepage_files(session: LocalSession) -> Iterator[str]:
    """A file prefix whose hugepage files and runtime dir are removed afterwards."""
    yield FILE_PREFIX
    session.run(
        ["bash", "-c", 'rm -rf -- /dev/hugepages/"$1"map_* /var/run/dpdk/"$1"', "-", FILE_PREFIX]
    )


def test_image_is_built_once_and_reused(session: LocalSession, podman: ContainerEngine) -> None:
    first = build_testpmd_image(session, engine=podman)
    again = build_testpmd_image(session, engine=podman)
    assert again.ref == first.ref and not again.built
    assert re.fullmatch(r"localhost/howto-dpdk-testpmd:[0-9a-f]{12}", first.ref)
    # A different PMD set is a different image: the tag is a hash of the inputs.
    fewer = build_testpmd_image(session, engine=podman, pmds=CONTAINER_PMDS[:-1])
    assert fewer.ref != first.ref
    podman.remove_image(fewer.ref)
    assert not podman.image_exists(fewer.ref)


def test_testpmd_quits_cleanly_in_the_container(
    session: LocalSession, podman: ContainerEngine, image: str
) -> None:
    # Without libgcc_s.so.1 in the image, glibc aborts pthread_cancel on quit (exit 139).
    argv, env = podman.run_argv(
        image,
        [
            "dpdk-testpmd",
            *NO_HUGE,
            "--file-prefix",
            FILE_PREFIX,
            "--vdev",
            "net_null0",
            "--",
            "-i",
            "--total-num-mbufs=2048",
        ],
        name=f"howto-{TAG}-quit",
        interactive=False,
    )
    result = session.run(argv, env=env, stdin="quit\n", check=False, timeout=60)
    assert result.exit_code == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Bye..." in result.stdout


def test_container_testpmd_answers_and_is_removed(
    session: LocalSession, podman: ContainerEngine, image: str, hugepage_files: str
) -> None:
    name = f"howto-{TAG}-shell"
    argv, env = podman.run_argv(
        image,
        [
            "dpdk-testpmd",
            "-l",
            "0-1",
            "-m",
            "64",
            "--no-pci",
            "--single-file-segments",
            "--file-prefix",
            hugepage_files,
            "--vdev",
            "net_null0",
            "--",
            "-i",
            "--total-num-mbufs=2048",
        ],
        name=name,
        mounts=[("/dev/hugepages", "/dev/hugepages")],
    )
    shell = session.open_shell(argv, env=env, name=name, prompt=PROMPT, timeout=60)
    try:
        shell.expect()
        assert podman.names(f"howto-{TAG}") == [name]
        info = shell.send_command("show port info 0")
        assert "Driver name: net_null" in info
        # testpmd in the container used the host's hugepages through the bind mount.
        assert session.run(
            ["bash", "-c", 'ls /dev/hugepages/"$1"map_*', "-", hugepage_files], check=False
        ).ok
    finally:
        podman.remove(name)
        shell.close()
    assert podman.names(f"howto-{TAG}") == []
    podman.remove(name)  # idempotent


def test_remove_all_leaves_no_howto_container(
    session: LocalSession, podman: ContainerEngine, image: str
) -> None:
    shells = []
    try:
        for index in range(2):
            name = f"howto-{TAG}-many{index}"
            argv, env = podman.run_argv(
                image,
                [
                    "dpdk-testpmd",
                    *NO_HUGE,
                    "--file-prefix",
                    f"{FILE_PREFIX}m{index}",
                    "--vdev",
                    "net_null0",
                    "--",
                    "-i",
                    "--total-num-mbufs=2048",
                ],
                name=name,
            )
            shells.append(session.open_shell(argv, env=env, name=name, prompt=PROMPT, timeout=60))
            shells[-1].expect()
        assert len(podman.names(f"howto-{TAG}-many")) == 2
        removed = podman.remove_all(f"howto-{TAG}-many")
        assert sorted(removed) == [f"howto-{TAG}-many0", f"howto-{TAG}-many1"]
    finally:
        for shell in shells:
            shell.close()
    assert podman.names(f"howto-{TAG}") == []
    with pytest.raises(ConfigError):
        podman.remove_all("")  # never everything on the host


def test_bad_container_name_is_one_clear_line(podman: ContainerEngine, image: str) -> None:
    with pytest.raises(ConfigError, match="must start with 'howto-'"):
        podman.run_argv(image, ["dpdk-testpmd"], name="testpmd")


@pytest.fixture
def process_engine(session: LocalSession, work_dir: str) -> Iterator[ContainerEngine]:
    engine = ContainerEngine.probe(session, "process", work_dir=work_dir)
    yield engine
    engine.remove_all(f"howto-{TAG}")


def test_unusable_engine_falls_back_to_a_process(session: LocalSession, work_dir: str) -> None:
    engine = ContainerEngine.probe(session, "docker", work_dir=work_dir)
    if engine.kind == "docker":
        pytest.skip("docker works on this host: no fallback to observe")
    assert engine.kind == "process"
    assert engine.fallback_reason and engine.fallback_reason.startswith("docker unusable")
    assert "\n" not in engine.fallback_reason
    assert "plain host process" in engine.description


def test_process_fallback_runs_testpmd_with_mounts_as_paths(
    session: LocalSession, process_engine: ContainerEngine, hugepage_files: str
) -> None:
    name = f"howto-{TAG}-proc"
    image = ensure_testpmd_image(session, engine=process_engine)
    assert image == "host:/usr/bin/dpdk-testpmd"
    # /mnt/howto-huge exists only "inside the container": the process engine must hand
    # testpmd the host path it is mounted from, or EAL finds no hugetlbfs there and exits.
    argv, env = process_engine.run_argv(
        image,
        [
            "dpdk-testpmd",
            "-l",
            "0-1",
            "-m",
            "64",
            "--no-pci",
            "--single-file-segments",
            "--huge-dir",
            "/mnt/howto-huge",
            "--file-prefix",
            hugepage_files,
            "--vdev",
            "net_null0",
            "--",
            "-i",
            "--total-num-mbufs=2048",
        ],
        name=name,
        mounts=[("/dev/hugepages", "/mnt/howto-huge")],
    )
    assert "/mnt/howto-huge" not in argv and "/dev/hugepages" in argv
    shell = session.open_shell(argv, env=env, name=name, prompt=PROMPT, timeout=60)
    try:
        shell.expect()
        assert process_engine.names(f"howto-{TAG}") == [name]
        assert "Driver name: net_null" in shell.send_command("show port info 0")
    finally:
        process_engine.remove(name)
        shell.close()
    assert process_engine.names(f"howto-{TAG}") == []
