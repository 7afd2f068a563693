"""The header band: site totals, earnings, the market figures they come from, and the host.

`summary_lines(snapshot, width)` is pure: it lays out short chunks ("profit $27.90/day",
"BTC $91,580 (mempool.space, 12 s)") in groups, each group on a new line, wrapping inside a
group when the terminal is narrow. So at 160 columns the header takes three lines and at 80
five, without clipping a figure in half. Every market figure carries its source and age; one
older than `MARKET_STALE_AFTER_S` says "stale" in words (and yellow), so a reference default
never passes for a live price.

The widget repaints only when the text changed and re-lays out the screen only when its
number of lines did: on most ticks only the ages move.
"""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from console.economics import EarningsTotals
from console.market import Figure, MarketSnapshot
from console.model import MISSING, Snapshot, fmt_age, fmt_hashrate, fmt_usd

GIB = 1024**3
MARKET_STALE_AFTER_S = 3600.0
"""A market figure older than this is marked stale: the live feed refreshes the price every
minute and the chain data every ten, so an hour means it has been failing for a while."""
GAP = "  "

Group = list[Text]


def _chunk(*parts: tuple[str, str] | str) -> Text:
    return Text.assemble(*parts, no_wrap=True, overflow="ellipsis")


def status_group(s: Snapshot) -> Group:
    t = s.totals
    counts: list[tuple[str, str] | str] = [
        (f"{t.fresh} fresh", "green"),
        " ",
        (f"{t.stale} stale", "yellow" if t.stale else ""),
        " ",
        (f"{t.lost} lost", "bold red" if t.lost else ""),
    ]
    if t.pending:
        counts += [" ", (f"{t.pending} pending", "dim")]
    chunks = [
        _chunk((s.site, "bold"), f" {t.devices} devices"),
        _chunk(*counts),
        _chunk((f"{t.problems} need attention", "bold yellow" if t.problems else "dim")),
    ]
    e = s.earnings
    if e is not None and e.totals.devices_unpriced:
        chunks.append(_chunk((f"{e.totals.devices_unpriced} not priced", "dim")))
    return chunks


def host_chunk(s: Snapshot) -> Text | None:
    h = s.host
    if h is None:
        return None
    parts = [h.hostname]
    if h.cpu_percent is not None:
        parts.append(f"cpu {h.cpu_percent:.0f}%")
    if h.memory_used_bytes is not None and h.memory_total_bytes:
        parts.append(f"mem {h.memory_used_bytes / GIB:.1f}/{h.memory_total_bytes / GIB:.0f} GiB")
    if h.load_1m is not None:
        parts.append(f"load {h.load_1m:.2f}")
    return _chunk(("host " + " ".join(parts), "dim"))


def _per_day(label: str, usd: float, style: str = "") -> Text:
    return _chunk(f"{label} ", (f"{fmt_usd(usd)}/day", style))


def earnings_group(s: Snapshot) -> Group:
    t = s.totals
    power = f"power {t.power_w / 1000:.1f} kW"
    chunks = [_chunk(f"hashrate {fmt_hashrate(t.hashrate_hs)}")]
    if t.power_estimated_w:
        chunks.append(_chunk(power, (f" ({t.power_estimated_w / 1000:.1f} kW est.*)", "dim")))
    else:
        chunks.append(_chunk(power))
    e = s.earnings
    if e is None:
        chunks.append(_chunk(("earnings unknown: no market data", "dim")))
        return chunks
    money = e.totals
    chunks.append(_per_day("revenue", money.revenue_usd_per_day))
    chunks.append(_per_day("cost", money.power_cost_usd_per_day))
    profit_style = "bold red" if money.profit_usd_per_day < 0 else "bold"
    chunks.append(_per_day("profit", money.profit_usd_per_day, profit_style))
    chunks.append(split_chunk(money))
    if money.devices_power_unknown:
        chunks.append(_chunk((f"cost leaves out {money.devices_power_unknown} (power —)", "dim")))
    return chunks


def split_chunk(t: EarningsTotals) -> Text:
    """Revenue split between mining (ASICs and GPU mining) and AI jobs."""
    mining = t.asic_revenue_usd_per_day + t.gpu_mining_revenue_usd_per_day
    ai = t.ai_revenue_usd_per_day
    share = t.ai_share_of_revenue
    if share is None:
        return _chunk(f"mining {fmt_usd(mining)} · AI {fmt_usd(ai)}")
    return _chunk(f"mining {1 - share:.0%} · AI {share:.0%}")


def sourced(f: Figure, now: float) -> str:
    """`mempool.space, 12 s`; `config` when the figure has no date; `…, stale` when old."""
    age = f.age_s(now)
    if age is None:
        return f.source
    text = f"{f.source}, {fmt_age(age)}"
    return text + ", stale" if age > MARKET_STALE_AFTER_S else text


def _figure(label: str, value: str, f: Figure, now: float) -> Text:
    age = f.age_s(now)
    stale = age is not None and age > MARKET_STALE_AFTER_S
    return _chunk(
        f"{label} ", (value, "bold"), (f" ({sourced(f, now)})", "yellow" if stale else "dim")
    )


def market_group(m: MarketSnapshot | None, now: float) -> Group:
    if m is None:
        return [_chunk(("market figures unknown", "dim"))]
    power = m.power_price_usd_per_kwh
    period = f" {m.power_period}" if m.power_period else ""
    return [
        _figure(
            "hashprice",
            f"${m.hashprice_usd_per_ph_day.value:,.2f}/PH/day",
            m.hashprice_usd_per_ph_day,
            now,
        ),
        _figure("BTC", f"${m.btc_price_usd.value:,.0f}", m.btc_price_usd, now),
        _figure(f"power{period}", f"${power.value:.4f}/kWh", power, now),
    ]


def pack(groups: list[Group], width: int, tail: Text | None = None) -> list[Text]:
    """Each group from a new line, its chunks joined by two spaces, wrapping at `width`; the
    optional `tail` goes at the end of the last line only if it fits there."""
    lines: list[Text] = []
    for group in groups:
        line: Text | None = None
        for chunk in group:
            if line is not None and line.cell_len + len(GAP) + chunk.cell_len <= width:
                line.append(GAP)
                line.append_text(chunk)
                continue
            if line is not None:
                lines.append(line)
            line = chunk.copy()
        if line is not None:
            lines.append(line)
    if tail is not None and lines and lines[-1].cell_len + len(GAP) + tail.cell_len <= width:
        lines[-1].append(GAP)
        lines[-1].append_text(tail)
    return lines


def summary_lines(s: Snapshot, width: int) -> list[Text]:
    return pack(
        [status_group(s), earnings_group(s), market_group(s.market, s.taken_at)],
        width,
        host_chunk(s),
    )


class SiteSummary(Widget):
    DEFAULT_CSS = """
    SiteSummary { height: 3; padding: 0 1; background: $boost; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._snapshot: Snapshot | None = None
        self._text = Text(MISSING)
        self._lines = 0

    def apply(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot
        self._layout()

    def on_resize(self) -> None:
        self._layout()

    def _layout(self) -> None:
        if self._snapshot is None:
            return
        width = max(20, self.content_region.width or self.app.size.width - 2)
        lines = summary_lines(self._snapshot, width)
        text = Text("\n").join(lines)
        if len(lines) != self._lines:
            self._lines = len(lines)
            self.styles.height = len(lines)  # a layout refresh, only when the line count moves
        if text != self._text:
            self._text = text
            self.refresh()

    @property
    def text(self) -> Text:
        return self._text

    def render(self) -> Text:
        return self._text
