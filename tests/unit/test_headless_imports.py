"""The headless entry point never loads Textual (DESIGN.md): checked in a fresh interpreter,
because this test process may have imported it already."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROGRAM = """
import sys
from console.cli import build_parser, cmd_headless
import console.headless.service as service
import console.headless.transport
args = build_parser().parse_args(["headless", "--mqtt", "mqtt://127.0.0.1:1/x"])
assert args.command == "headless" and args.mqtt == "mqtt://127.0.0.1:1/x"
assert "aiomqtt" in sys.modules, "the transport should have been imported"
loaded = sorted(m for m in sys.modules if m == "textual" or m.startswith("textual."))
print(",".join(loaded))
"""


def test_headless_never_imports_textual() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"textual modules loaded: {done.stdout}"
