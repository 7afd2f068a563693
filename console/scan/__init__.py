"""Discovery: `hashpivot scan` finds the miners on a network, fast, and says what each one is.

    targets.py   CIDR arguments → a checked, de-duplicated sweep (loud refusals, noted liberties)
    engine.py    the two-stage scan: TCP probe of the API port(s), then driver identification
    result.py    the report: identified / open but not identified / silent (the JSON shape)
    progress.py  a live bar on a terminal, plain lines elsewhere (stderr)
    output.py    table, JSON and `[[asics]]` TOML that never repeats a host the config has
    command.py   the subcommand: arguments, Ctrl-C, exit codes

Probing and identification go through `drivers/` (`drivers.tcp_probe`, the CGMiner driver's
`detect`); this package holds the policy: what to probe, how hard, and how to report it.
"""

from __future__ import annotations
