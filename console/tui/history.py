"""The history series the detail screen draws, keyed by name.

Each `Series` says where its values come from and how to print one. The store keeps hashrate,
temperature and power per device; the site's pricing keeps profit (`Site.profit_history`, a
point per reading priced under the market of that moment).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from console.model import fmt_hashrate, fmt_num, fmt_usd
from console.store import Metric
from console.tui.source import ConsoleSite

Values = npt.NDArray[np.floating]
Fetch = Callable[[ConsoleSite, str], tuple[npt.NDArray[np.float64], Values]]


@dataclass(frozen=True)
class Series:
    key: str
    label: str
    fetch: Fetch
    """(timestamps, values) oldest first, NaN where unreported."""
    fmt: Callable[[float | None], str]


def _from_store(metric: Metric) -> Fetch:
    def fetch(site: ConsoleSite, device_id: str) -> tuple[npt.NDArray[np.float64], Values]:
        return site.store.history(device_id, metric)

    return fetch


SERIES: dict[str, Series] = {
    "hashrate": Series("hashrate", "Hashrate", _from_store(Metric.HASHRATE_HS), fmt_hashrate),
    "temp": Series(
        "temp", "Temp", _from_store(Metric.TEMP_MAX_C), lambda v: fmt_num(v, ".0f", "°C")
    ),
    "power": Series(
        "power", "Power", _from_store(Metric.POWER_W), lambda v: fmt_num(v, ",.0f", "W")
    ),
    "profit": Series(
        "profit",
        "Profit",
        lambda site, device_id: site.profit_history(device_id),
        lambda v: f"{fmt_usd(v)}/d",
    ),
}
"""In display order."""
