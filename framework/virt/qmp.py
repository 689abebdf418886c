"""QMP, QEMU's control protocol, as a synchronous client with timestamped events.

QEMU listens for QMP on TCP at the host's management address, so the controller talks to
it directly with qemu.qmp (asyncio), whatever host the VM runs on.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Mapping
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING, Any

from framework.virt.errors import VmError

if TYPE_CHECKING:
    from framework.remote.session import Session

log = logging.getLogger("howto.virt")

Event = tuple[float, str, dict[str, Any]]


class QmpConnection:
    """qemu.qmp behind a synchronous API: a private event loop on a daemon thread.

    The loop keeps running between commands so events are received (and timestamped) as
    they happen, not when the next command happens to be sent.
    """

    def __init__(self, name: str) -> None:
        from qemu.qmp import QMPClient

        self.name = name
        self.events: list[Event] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"qmp-{name}", daemon=True
        )
        self._thread.start()
        self._client = QMPClient(name)
        self._watcher: Any = None

    def _call(self, coro: Any, timeout: float) -> Any:
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout)
        except FutureTimeout:
            future.cancel()
            raise

    def connect(self, address: tuple[str, int], timeout: float) -> None:
        """Connect and start recording events; raises whatever qemu.qmp or the wait raise."""
        from qemu.qmp import EventListener

        async def go() -> None:
            listener = EventListener()
            self._client.register_listener(listener)
            await self._client.connect(address)

            async def watch() -> None:
                async for event in listener:
                    # QMP's "data" is a JSON object when present (absent for most events).
                    data = event.get("data")
                    fields = dict(data) if isinstance(data, Mapping) else {}
                    self.events.append((time.time(), str(event["event"]), fields))

            self._watcher = asyncio.ensure_future(watch())

        self._call(go(), timeout)

    def execute(
        self, command: str, args: dict[str, Any] | None = None, timeout: float = 30.0
    ) -> Any:
        """Run one QMP command and return its answer.

        Raises:
            VmError: QEMU answered with an error, or not within `timeout` seconds.
        """
        from qemu.qmp import QMPError

        try:
            return self._call(self._client.execute(command, args), timeout)
        except FutureTimeout as exc:
            raise VmError(f"{self.name}: QMP {command} got no answer in {timeout:g} s") from exc
        except QMPError as exc:
            raise VmError(f"{self.name}: QMP {command}: {exc}") from exc

    def close(self) -> None:
        """Disconnect and stop the loop; never fails (QEMU may already be gone)."""

        async def go() -> None:
            if self._watcher is not None:
                self._watcher.cancel()
            await self._client.disconnect()

        try:
            self._call(go(), 5)
        except Exception as exc:  # already gone; closing must never fail
            log.debug("qmp %s disconnect: %s", self.name, exc)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self._loop.close()


def free_port(session: Session, address: str) -> int:
    """A TCP port nobody listens on at `address`, asked on the host itself."""
    script = (
        "import socket,sys\n"
        "s=socket.socket(); s.bind((sys.argv[1],0)); print(s.getsockname()[1]); s.close()"
    )
    result = session.run(["python3", "-c", script, address], check=False)
    if result.ok and result.stdout.strip().isdigit():
        return int(result.stdout.strip())
    raise VmError(f"{session.name}: cannot pick a free TCP port on {address}: {result.stderr}")
