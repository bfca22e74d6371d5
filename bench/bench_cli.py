"""CLI start-up benchmark: prints numbers, asserts nothing.

`python bench/bench_cli.py [--repeat N]` times, as subprocesses of this interpreter (medians
of N runs, interleaved so that a noisy neighbour hits every command alike):

- `python -c "import typer"`: the floor the issue compares with;
- `python -c "import typer, pydantic; TypeAdapter(bool)"`: what Typer itself (0.29+) costs
  before it parses any subcommand's options (it builds a pydantic TypeAdapter per option);
- `coffeeshop --help` and every subcommand's `--help`;
- `coffeeshop tables` on a small SQLite file (the bundled sample, synced once first).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from coffeeshop.cli import command_lines


def timed(argv: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    python = [sys.executable]
    with tempfile.TemporaryDirectory() as folder:
        cwd = Path(folder)
        db = f"sqlite:///{cwd / 'sample.db'}"
        subprocess.run(
            [*python, "-m", "coffeeshop", "sample", "--db", db],
            cwd=cwd,
            check=True,
            capture_output=True,
        )
        cases: dict[str, list[str]] = {
            'python -c "import typer"': [*python, "-c", "import typer"],
            "typer + pydantic TypeAdapter": [
                *python,
                "-c",
                "import typer; from pydantic import TypeAdapter; TypeAdapter(bool)",
            ],
            "coffeeshop --help": [*python, "-m", "coffeeshop", "--help"],
        }
        for command in command_lines():
            cases[f"coffeeshop {command} --help"] = [
                *python,
                "-m",
                "coffeeshop",
                *command.split(),
                "--help",
            ]
        cases["coffeeshop tables (sample, SQLite)"] = [
            *python,
            "-m",
            "coffeeshop",
            "tables",
            "--db",
            db,
        ]
        times: dict[str, list[float]] = {name: [] for name in cases}
        for argv in cases.values():  # warm the file cache and the bytecode
            timed(argv, cwd)
        for _ in range(args.repeat):
            for name, argv in cases.items():
                times[name].append(timed(argv, cwd))
    load = os.getloadavg()[0]
    print(
        f"{platform.python_version()} · {os.cpu_count()} cores · load {load:.2f} · "
        f"median of {args.repeat}"
    )
    floor = statistics.median(times['python -c "import typer"'])
    print("| command | median | × import typer |\n|---|---:|---:|")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| `{name}` | {median * 1000:.0f} ms | {median / floor:.1f} |")


if __name__ == "__main__":
    main()
