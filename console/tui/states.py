"""How the three state axes look: a word and a symbol for each value, and a colour on top.

The word and symbol carry the meaning, so every state reads the same with colours off
(`NO_COLOR`, a 16-colour console, a screen reader); the colour only speeds up scanning.
"""

from __future__ import annotations

from rich.text import Text

from console.model import CommandedMode, Freshness, Observed

STATE_STYLE = {
    Observed.HASHING: "green",
    Observed.RUNNING_JOB: "cyan",
    Observed.IDLE: "blue",
    Observed.DEGRADED: "yellow",
    Observed.FAULTED: "bold red",
    Observed.SWITCHING: "magenta",
    Observed.UNKNOWN: "dim",
}
STATE_SYMBOL = {
    Observed.HASHING: "●",
    Observed.RUNNING_JOB: "▶",
    Observed.IDLE: "○",
    Observed.DEGRADED: "◐",
    Observed.FAULTED: "✗",
    Observed.SWITCHING: "⇄",
    Observed.UNKNOWN: "?",
}
FRESH_STYLE = {
    Freshness.FRESH: "green",
    Freshness.STALE: "yellow",
    Freshness.LOST: "bold red",
    Freshness.PENDING: "dim",
}
FRESH_SYMBOL = {
    Freshness.FRESH: "✓",
    Freshness.STALE: "!",
    Freshness.LOST: "✗",
    Freshness.PENDING: "…",
}


# Styled as a span, not as the Text's base style, so text appended after it stays plain.


def observed_text(observed: Observed) -> Text:
    label = f"{STATE_SYMBOL[observed]} {observed.value.replace('_', ' ')}"
    return Text.assemble((label, STATE_STYLE[observed]))


def freshness_text(freshness: Freshness) -> Text:
    return Text.assemble((f"{FRESH_SYMBOL[freshness]} {freshness.value}", FRESH_STYLE[freshness]))


def mode_text(mode: CommandedMode) -> Text:
    return Text(mode.value)
