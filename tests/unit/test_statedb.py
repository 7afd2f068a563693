"""`StateDb.run` under cancellation: a cancelled caller is cancelled, whatever the call did.

On Python 3.11 `asyncio.wait_for` returns the inner result, and drops the cancellation, when
the awaited call completes in the same loop iteration as the cancel. A watch loop cancelled at
shutdown then carries on forever, and the task group waiting for it never finishes (seen as a
hung bridge shutdown in tests/integration/test_mqtt_gpu.py).
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from console.statedb import StateDb


async def test_a_cancel_that_lands_as_the_call_completes_is_not_lost(tmp_path: Path) -> None:
    db = StateDb(tmp_path / "t.sqlite")
    go, returned = threading.Event(), threading.Event()

    def call() -> int:
        go.wait(5)
        returned.set()
        return 42

    try:
        task = asyncio.create_task(db.run(call))
        await asyncio.sleep(0.05)  # the call is running on the database thread
        go.set()
        assert returned.wait(5)
        # Block the loop until the executor has posted the result to it, then cancel: the
        # result and the cancellation are both waiting for the same loop iteration.
        time.sleep(0.05)  # noqa: ASYNC251 (blocking the loop on purpose)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        db.close()
