"""CLI start-up benchmark: prints numbers, asserts nothing.

`python bench/bench_cli.py [--repeat N]` times, as subprocesses of this interpreter (medians
of N runs, interleaved so that a noisy neighbour hits every command alike):

- `python -c "import typer"`: the floor the issue compares with;
- `python -c "import typer, pydantic; TypeAdapter(bool)"`: what Typer itself (0.29+) costs
  before it parses any subcommand's options (it builds a pydantic TypeAdapter per option);
- `coffeeshop --help` and every subcommand's `--help`;
- `coffeeshop tables` on a small SQLite file (the bundled sample, synced once first).

`--base SRC` times every `coffeeshop` command a second time with `PYTHONPATH=SRC` (another
checkout's `src`, e.g. `git worktree add /tmp/base REV`), interleaved with this checkout's,
and prints both columns: a before/after from one run. The command list is this checkout's.
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

SRC = str(Path(__file__).resolve().parents[1] / "src")


def timed(argv: list[str], cwd: Path, src: str) -> float:
    env = {**os.environ, "PYTHONPATH": src}
    started = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, capture_output=True, env=env)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--base", help="another checkout's src directory, timed alongside")
    args = parser.parse_args()
    checkouts = {"this checkout": SRC} | ({"base": args.base} if args.base else {})
    python = [sys.executable]
    with tempfile.TemporaryDirectory() as folder:
        cwd = Path(folder)
        db = f"sqlite:///{cwd / 'sample.db'}"
        subprocess.run(
            [*python, "-m", "coffeeshop", "sample", "--db", db],
            cwd=cwd,
            check=True,
            capture_output=True,
            env={**os.environ, "PYTHONPATH": SRC},
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
        runs = [(name, label) for name in cases for label in checkouts]
        times: dict[tuple[str, str], list[float]] = {run: [] for run in runs}
        for name, label in runs:  # warm the file cache and the bytecode
            timed(cases[name], cwd, checkouts[label])
        for _ in range(args.repeat):
            for name, label in runs:
                times[name, label].append(timed(cases[name], cwd, checkouts[label]))
    load = os.getloadavg()[0]
    print(
        f"{platform.python_version()} · {os.cpu_count()} cores · load {load:.2f} · "
        f"median of {args.repeat}"
    )
    floor = statistics.median(times['python -c "import typer"', "this checkout"])
    labels = list(reversed(checkouts))  # base first
    print("| command | " + " | ".join(f"{label} | × import typer" for label in labels) + " |")
    print("|---|" + "---:|---:|" * len(labels))
    for name in cases:
        medians = [statistics.median(times[name, label]) for label in labels]
        cells = " | ".join(f"{m * 1000:.0f} ms | {m / floor:.1f}" for m in medians)
        print(f"| `{name}` | {cells} |")


if __name__ == "__main__":
    main()
