"""Progress of a running scan on stderr: a live bar on a terminal, plain lines anywhere else.

On a terminal one line is redrawn in place (carriage return + erase-to-end-of-line, nothing
fancier, so it works over any SSH session and leaves no Textual dependency here):

    scan [#####.....] 512/1024 probed, 201 open, 180 identified, 2 unidentified, 850 hosts/s, 0.6 s

When stderr is a pipe or a file (cron, CI, `2> log`) the same counts go out as ordinary lines,
at most one per `PLAIN_INTERVAL_S` and only when something changed, so logs stay readable:

    scan: 512/1024 probed, 201 open, 180 identified, 2 unidentified, 850 hosts/s, 0.6 s

The text is ASCII only: it must survive a C locale and a serial console.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from typing import TextIO

from console.scan.engine import LiveCounts

BAR_INTERVAL_S = 0.1
PLAIN_INTERVAL_S = 1.0
MIN_BAR_CELLS = 10
MAX_BAR_CELLS = 30
DEFAULT_COLUMNS = 100
MIN_COLUMNS = 20


def counts_text(live: LiveCounts, elapsed_s: float) -> str:
    """`512/1024 probed, 201 open, ... 850 hosts/s, 0.6 s` — the words both renderings share."""
    parts = [
        f"{live.probed}/{live.hosts} probed",
        f"{live.open} open",
        f"{live.identified} identified",
        f"{live.unidentified} unidentified",
    ]
    if live.identifying:
        parts.append(f"{live.identifying} identifying")
    # The rate of the sweep itself: once probing has ended, waiting on the last identifications
    # must not make the sweep look slower than it was.
    sweep_s = live.probe_s if live.probe_s is not None else elapsed_s
    rate = live.probed / sweep_s if sweep_s > 0 else 0.0
    parts.append(f"{rate:.0f} hosts/s")
    parts.append(f"{elapsed_s:.1f} s")
    return ", ".join(parts)


def bar_line(live: LiveCounts, elapsed_s: float, columns: int) -> str:
    """One terminal line of at most `columns - 1` characters (the last column would wrap)."""
    text = counts_text(live, elapsed_s)
    room = columns - 1 - len("scan [] ") - len(text)
    cells = max(MIN_BAR_CELLS, min(MAX_BAR_CELLS, room))
    done = live.probed * cells // live.hosts if live.hosts else cells
    line = f"scan [{'#' * done}{'.' * (cells - done)}] {text}"
    return line[: max(columns - 1, 1)]


def _columns(out: TextIO) -> int:
    try:
        columns = os.get_terminal_size(out.fileno()).columns
    except (OSError, ValueError, AttributeError):
        return DEFAULT_COLUMNS
    # A terminal that reports no size (a fresh pty, some serial consoles) says 0.
    return columns if columns >= MIN_COLUMNS else DEFAULT_COLUMNS


class ProgressDisplay:
    """Draws the scan's `LiveCounts` to `out` until `close()`."""

    def __init__(
        self,
        live: LiveCounts,
        out: TextIO,
        *,
        tty: bool,
        started: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.live = live
        self.out = out
        self.tty = tty
        self.clock = clock
        self.started = clock() if started is None else started
        self._last_plain: tuple[int, ...] | None = None
        self._drawn = False

    def say(self, text: str) -> None:
        """A message line (targets, notes) that must not be overdrawn by the bar."""
        self._clear()
        self.out.write(text + "\n")
        self.out.flush()

    def draw(self) -> None:
        elapsed = self.clock() - self.started
        live = self.live
        if self.tty:
            self.out.write("\r" + bar_line(live, elapsed, _columns(self.out)) + "\x1b[K")
            self._drawn = True
        else:
            state = (live.probed, live.open, live.identified, live.unidentified, live.identifying)
            if state == self._last_plain:
                return
            self._last_plain = state
            self.out.write(f"scan: {counts_text(live, elapsed)}\n")
        self.out.flush()

    async def run(self) -> None:
        """Redraw until cancelled."""
        interval = BAR_INTERVAL_S if self.tty else PLAIN_INTERVAL_S
        while True:
            await asyncio.sleep(interval)
            self.draw()

    def close(self, summary: str) -> None:
        """Final state, then the one-line summary; the terminal is left on a fresh line."""
        if self.tty:
            self.draw()
            self.out.write("\n")
        else:
            self._last_plain = None  # always print the final counts
            self.draw()
        self.out.write(summary + "\n")
        with contextlib.suppress(OSError, ValueError):
            self.out.flush()

    def _clear(self) -> None:
        if self.tty and self._drawn:
            self.out.write("\r\x1b[K")
            self._drawn = False


__all__ = ["ProgressDisplay", "bar_line", "counts_text"]
