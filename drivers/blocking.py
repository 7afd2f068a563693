"""A one-thread executor for blocking calls whose thread never keeps the process alive.

`concurrent.futures.ThreadPoolExecutor` joins its (non-daemon) threads at interpreter exit, so
a call that never returns — an NVML call stuck in a wedged kernel driver — would hang the
console's exit. `DaemonWorker` runs submitted callables in order on one daemon thread and hands
back `concurrent.futures.Future`s (await them with `asyncio.wrap_future`). A caller that gives
up on a stuck worker calls `stop()` and starts a new one; the old thread exits by itself once
its call returns.
"""

from __future__ import annotations

import concurrent.futures
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["DaemonWorker"]

_T = TypeVar("_T")


class DaemonWorker:
    """Runs submitted callables one at a time, in order, on a single daemon thread."""

    def __init__(self, name: str) -> None:
        self._queue: queue.SimpleQueue[
            tuple[concurrent.futures.Future[Any], Callable[[], Any]] | None
        ] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def submit(self, fn: Callable[[], _T]) -> concurrent.futures.Future[_T]:
        fut: concurrent.futures.Future[_T] = concurrent.futures.Future()
        self._queue.put((fut, fn))
        return fut

    def stop(self) -> None:
        """Exit after the calls already queued (and any call in progress) are done."""
        self._queue.put(None)

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            fut, fn = item
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(fn())
            except BaseException as exc:  # handed to whoever awaits the future
                fut.set_exception(exc)
