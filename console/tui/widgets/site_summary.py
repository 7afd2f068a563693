"""The header band: site totals, counts by freshness, and the host running hashpivot."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from console.model import Snapshot, fmt_hashrate

GIB = 1024**3


def summary_text(s: Snapshot) -> Text:
    t = s.totals
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(f"{s.site} ", style="bold")
    text.append(f"{t.devices} devices  ")
    text.append(f"{t.fresh} fresh ", style="green")
    text.append(f"{t.stale} stale ", style="yellow" if t.stale else "")
    text.append(f"{t.lost} lost", style="bold red" if t.lost else "")
    if t.pending:
        text.append(f" {t.pending} pending", style="dim")
    text.append("  ")
    text.append(f"{t.problems} need attention", style="bold yellow" if t.problems else "dim")
    text.append("\n")
    text.append(f"hashrate {fmt_hashrate(t.hashrate_hs)}  power {t.power_w / 1000:.1f} kW")
    if t.power_estimated_w:
        text.append(f" ({t.power_estimated_w / 1000:.1f} kW nameplate estimate*)", style="dim")
    h = s.host
    if h is not None:
        parts = [h.hostname]
        if h.cpu_percent is not None:
            parts.append(f"cpu {h.cpu_percent:.0f}%")
        if h.memory_used_bytes is not None and h.memory_total_bytes:
            parts.append(
                f"mem {h.memory_used_bytes / GIB:.1f}/{h.memory_total_bytes / GIB:.0f} GiB"
            )
        if h.load_1m is not None:
            parts.append(f"load {h.load_1m:.2f}")
        text.append("   host " + " ".join(parts), style="dim")
    return text


class SiteSummary(Static):
    DEFAULT_CSS = """
    SiteSummary { height: 2; padding: 0 1; background: $boost; }
    """

    def apply(self, snapshot: Snapshot) -> None:
        self.update(summary_text(snapshot))
