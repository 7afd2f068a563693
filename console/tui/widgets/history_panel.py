"""Sparklines of one device's history: one line per `console.tui.history.SERIES` entry.

Each line is the series name, a sparkline of the readings the store still holds, and the
latest value with the range. A line is redrawn only when its series has a new point, so the
1 s tick costs nothing while the device is between polls.
"""

from __future__ import annotations

import math

import numpy as np
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Label, Sparkline, Static

from console.tui.detail_fields import fmt_duration
from console.tui.history import SERIES, Series
from console.tui.source import ConsoleSite


def summary(series: Series, values: list[float]) -> str:
    if not values:
        return "no readings yet"
    return f"{series.fmt(values[-1])} ({series.fmt(min(values))} – {series.fmt(max(values))})"


class HistoryLine(Horizontal):
    def __init__(self, series: Series) -> None:
        super().__init__(classes="history-line")
        self.series = series
        self._seen: tuple[int, float] | None = None
        self.values: list[float] = []

    def compose(self) -> ComposeResult:
        yield Label(self.series.label, classes="history-label")
        yield Sparkline([], classes="history-spark")
        yield Static("", classes="history-value")

    def apply(self, site: ConsoleSite, device_id: str) -> float | None:
        """Redraw when there is a new point; returns the span in seconds the series covers."""
        times, raw = self.series.fetch(site, device_id)
        finite = np.isfinite(raw)
        seen = (len(raw), float(times[-1]) if len(times) else math.nan)
        span = float(times[-1] - times[0]) if len(times) > 1 else None
        if seen == self._seen:
            return span
        self._seen = seen
        self.values = [float(v) for v in raw[finite]]
        self.query_one(Sparkline).data = self.values
        self.query_one(".history-value", Static).update(summary(self.series, self.values))
        return span


class HistoryPanel(Vertical):
    def compose(self) -> ComposeResult:
        yield Label("History", classes="section-title", id="history-title")
        for series in SERIES.values():
            yield HistoryLine(series)

    def apply(self, site: ConsoleSite, device_id: str) -> None:
        spans = [line.apply(site, device_id) for line in self.query(HistoryLine)]
        span = max((s for s in spans if s is not None), default=None)
        title = "History" if span is None else f"History, last {fmt_duration(span)}"
        self.query_one("#history-title", Label).update(title)

    def line(self, key: str) -> HistoryLine:
        return next(line for line in self.query(HistoryLine) if line.series.key == key)
