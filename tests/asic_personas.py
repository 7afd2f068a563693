"""One model for each simulated firmware persona, for the tests that go through every persona."""

from __future__ import annotations

MODEL_OF = {
    "antminer_stock": "Antminer S19j Pro",
    "vnish": "Antminer S19 XP",
    "luxos": "Antminer S19j Pro",
    "braiins": "Antminer S19j Pro",
    "whatsminer": "Whatsminer M50",
    "avalon": "AvalonMiner 1246",
    "cgminer": "Antminer S21",
}
