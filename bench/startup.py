"""Start-up benchmark: from launching `hashpivot` to every device on screen with its earnings.

Runs the real console command (`.venv/bin/hashpivot`, interpreter start-up and imports
included) in a real pseudo-terminal, 200×70 so every row of the bundled demo fits, and reads
its screen through a terminal emulator (pyte), as an operator would see it. Nothing in the
console is instrumented. Per run it reports, from the moment the process is launched:

- `first frame`: the fleet table's header is on screen;
- `all rows`: a row for every device of the config;
- `all priced`: every one of those rows shows a money figure (a `$` in its row);
- `quit`: from pressing `q` to the process's exit (the site stopped: simulated miners and
  jobs stopped, the ledger closed).

    ./dev bench startup --runs 5
    ./dev bench startup --config config/site.toml --rows 70
"""

from __future__ import annotations

import argparse
import fcntl
import os
import queue
import shutil
import statistics
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import pyte

from console.config import bundled_demo_path, load_config

ROOT = Path(__file__).resolve().parents[1]


def device_names(config: Path) -> list[str]:
    site = load_config(config)
    return [a.name for a in site.asics] + [g.name for g in site.gpus]


def one_run(
    command: list[str], names: list[str], cols: int, rows: int, timeout_s: float
) -> dict[str, float | None]:
    screen = pyte.Screen(cols, rows)
    stream = pyte.ByteStream(screen)
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    started = time.monotonic()
    proc = subprocess.Popen(
        command,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        cwd=ROOT,
        env={**os.environ, "TERM": "xterm-256color", "COLUMNS": str(cols), "LINES": str(rows)},
        start_new_session=True,
    )
    os.close(slave)
    marks: dict[str, float | None] = {"first frame": None, "all rows": None, "all priced": None}
    wanted = set(names)
    # A thread reads and time-stamps the output the moment it arrives; the emulator (pure
    # Python, ~0.5 MB/s) parses behind it, so its own lag is not counted against the console.
    chunks: queue.Queue[tuple[float, bytes]] = queue.Queue()
    reader = threading.Thread(target=_read_all, args=(master, started, chunks), daemon=True)
    reader.start()
    try:
        while time.monotonic() - started < timeout_s and marks["all priced"] is None:
            try:
                at, data = chunks.get(timeout=0.05)
            except queue.Empty:
                continue
            if not data:
                break
            stream.feed(data)
            lines = screen.display
            if marks["first frame"] is None and any("Name" in line for line in lines):
                marks["first frame"] = at
            shown = {}
            for line in lines:
                first = line.split(maxsplit=1)
                if first and first[0] in wanted:
                    shown[first[0]] = line
            if marks["all rows"] is None and len(shown) == len(wanted):
                marks["all rows"] = at
            if len(shown) == len(wanted) and all("$" in line for line in shown.values()):
                marks["all priced"] = at
        quit_at = time.monotonic()
        os.write(master, b"q")
        proc.wait(timeout=timeout_s)  # the reader thread keeps draining the terminal
        marks["quit"] = time.monotonic() - quit_at
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return marks


def _read_all(fd: int, started: float, out: queue.Queue[tuple[float, bytes]]) -> None:
    while True:
        try:
            data = os.read(fd, 1 << 16)
        except OSError:
            data = b""
        out.put((time.monotonic() - started, data))
        if not data:
            return


def fmt(value: float | None) -> str:
    return "   —   " if value is None else f"{value:6.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--config", type=Path, default=None, help="default: the bundled demo")
    parser.add_argument("--cols", type=int, default=200)
    parser.add_argument("--rows", type=int, default=70)
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args()
    config = args.config or bundled_demo_path()
    names = device_names(config)
    exe = shutil.which("hashpivot", path=str(Path(sys.executable).parent)) or "hashpivot"
    command = [exe] + (["--config", str(config)] if args.config else [])
    print(f"{' '.join(command)}: {len(names)} devices, {args.cols}x{args.rows} terminal")
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    keys = ("first frame", "all rows", "all priced", "quit")
    print("run  " + "  ".join(f"{k:>10}" for k in keys))
    results = []
    for run in range(1, args.runs + 1):
        marks = one_run(command, names, args.cols, args.rows, args.timeout)
        results.append(marks)
        print(f"{run:3}  " + "  ".join(f"{fmt(marks.get(k)):>10}" for k in keys), flush=True)
    for k in keys:
        values = [m[k] for m in results if m.get(k) is not None]
        if values:
            print(f"{k:>12}: median {statistics.median(values):.2f} s, max {max(values):.2f} s")  # type: ignore[type-var]
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
