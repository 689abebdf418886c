"""iperf3's client against a server that is between two tests, on loopback (real iperf3)."""

from __future__ import annotations

import shutil
import socket
import struct
import subprocess
import threading
from collections.abc import Iterator

import pytest

from framework.remote import LocalSession
from framework.traffic import tcp

pytestmark = pytest.mark.skipif(not shutil.which(tcp.IPERF3), reason="iperf3 is not installed")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def port() -> Iterator[int]:
    port = _free_port()
    yield port
    subprocess.run(["pkill", "-f", f"iperf3 -s -1 -B 127.0.0.1 -p {port}"], check=False)


def _resets_then_serves(port: int, resets: int) -> threading.Thread:
    """A listener that resets its first `resets` clients, then a real one-test iperf3 server.

    As iperf3's server does between tests: a client queued on the socket it closes is
    reset before its test begins.
    """
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen()

    listener.settimeout(tcp.REFUSED_GRACE_S + 5)

    def serve() -> None:
        with listener:
            for _ in range(resets):
                try:
                    client, _ = listener.accept()
                except TimeoutError:  # the client gave up: no server after all
                    return
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                client.close()
        subprocess.Popen([tcp.IPERF3, "-s", "-1", "-B", "127.0.0.1", "-p", str(port)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def test_a_client_reset_before_its_test_began_asks_again(port: int) -> None:
    _resets_then_serves(port, resets=1)
    result = tcp.run_client(LocalSession(), "127.0.0.1", seconds=1, port=port)
    assert result.bytes_received > 0 and result.seconds > 0.5, result


def test_a_server_that_keeps_resetting_fails_with_its_error(port: int) -> None:
    _resets_then_serves(port, resets=1000)
    with pytest.raises(tcp.TcpError) as caught:
        tcp.run_client(LocalSession(), "127.0.0.1", seconds=1, port=port)
    assert "Connection reset by peer" in str(caught.value), caught.value
