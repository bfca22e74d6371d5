"""Receipt written -> figure changed in the browser's page, and the idle CPU of the live stack.

Starts `coffeeshop sync` (following a JSONL file) and `coffeeshop serve` over an SQLite file,
opens the dashboard in Chromium (Playwright, /usr/bin/chromium), and writes receipts stamped
now at `--rate` per second for `--seconds`, in ticks of 10 ms. The page's own clock stamps
each change of the engine line ("N changes applied"; a MutationObserver, `Date.now()`); the
latency of a tick is the first change whose count covers the tick's receipts minus the tick's
write time (both the same machine's wall clock).

Per hop, the same latency is taken at each stage the receipts pass (all from the write):
`signal` — the writer's signal file touched after the commit (the bench watches it with
inotify and reads the applied count from the database at once); `sse` — the `/events`
stream of `serve` (a client of the bench's own: the count the event carries, or read from the
database when it carries only the version); `engine` — the page's engine line, as above;
`kpi` — the page's "Receipts this week" card (the receipts are all new and stamped now), which
changes once the page has fetched its panels. The bench's own watchers are closed before the
idle window.

Then nothing is written for `--idle` seconds and the CPU seconds of sync (its process tree),
serve and the browser (all its processes) are measured over that window; then (unless
`--no-floor`) those of a fresh headless Chromium on about:blank, the floor no page can go under.

    .venv/bin/python bench/bench_push.py --port 9600
    PYTHONPATH=/work/main/src .venv/bin/python bench/bench_push.py --port 9601   # before

Prints numbers, asserts nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from itertools import pairwise
from pathlib import Path
from typing import Any

import psutil

from coffeeshop.demo.generator import ReceiptGenerator
from coffeeshop.inotify import FileWatch

CHROMIUM = "/usr/bin/chromium"
OBSERVE = """() => {
  window.__changes = [];
  const engine = document.getElementById("engine");
  new MutationObserver(() => {
    const m = /engine: ([\\d,]+) changes applied/.exec(engine.textContent);
    if (m) window.__changes.push([Date.now(), Number(m[1].replace(/,/g, ""))]);
  }).observe(engine, { childList: true, characterData: true, subtree: true });
  window.__kpi = [];
  const kpi = document.getElementById("kpi-receipts");
  const count = () => Number(kpi.textContent.replace(/[^\\d]/g, ""));
  window.__kpiBase = count();
  new MutationObserver(() => window.__kpi.push([Date.now(), count()])).observe(kpi, {
    childList: true, characterData: true, subtree: true,
  });
}"""
APPLIED = "SELECT COALESCE(SUM(applied), 0) FROM cs_checkpoint"


class HopTrace:
    """The bench's own watchers of two hops, in threads: the writer's signal file (inotify)
    and an `/events` stream; each records (wall time in ms, receipts applied)."""

    def __init__(self, port: int, db_file: Path) -> None:
        self.port, self.db_file = port, db_file
        self.signal: list[list[float]] = []
        self.sse: list[list[float]] = []
        self.stop = threading.Event()
        self.stream: Any = None
        self.threads = [
            threading.Thread(target=self._watch_signal, daemon=True),
            threading.Thread(target=self._read_stream, daemon=True),
        ]
        for thread in self.threads:
            thread.start()

    def applied(self) -> int:
        db = sqlite3.connect(f"file:{self.db_file}?mode=ro", uri=True, timeout=10)
        try:
            return int(db.execute(APPLIED).fetchone()[0])
        finally:
            db.close()

    def _watch_signal(self) -> None:
        watch = FileWatch.open(f"{self.db_file}-signal")
        if watch is None:
            return
        with watch:
            while not self.stop.is_set():
                if watch.wait(0.2):
                    at = time.time() * 1000
                    self.signal.append([at, self.applied()])

    def _read_stream(self) -> None:
        url = f"http://127.0.0.1:{self.port}/events"
        self.stream = urllib.request.urlopen(url, timeout=60)
        try:
            for raw in self.stream:
                if self.stop.is_set():
                    return
                line = raw.decode()
                if line.startswith("data:"):
                    at = time.time() * 1000
                    data = json.loads(line[5:])
                    totals = data.get("totals")
                    self.sse.append([at, totals["applied"] if totals else self.applied()])
        except (OSError, ValueError, AttributeError):
            if not self.stop.is_set():
                raise  # (closed under the read: the end)

    def close(self) -> None:
        self.stop.set()
        if self.stream is not None:
            self.stream.close()


def run(*args: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "coffeeshop", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def get(port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/{path}", timeout=10) as r:
        return json.loads(r.read())


def wait_up(port: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            get(port, "health")
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("serve did not start")


def applied(port: int) -> int:
    return int(get(port, "pipeline")["totals"]["applied"])


def cpu(processes: list[psutil.Process]) -> float:
    total = 0.0
    for p in processes:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def write_load(source: Path, rate: int, seconds: float) -> list[tuple[float, int]]:
    """(wall time after the write, receipts written so far) per 10 ms tick."""
    generator = ReceiptGenerator(seed=7, stores=12, live=True, invalid_share=0.0)
    lines = generator.iter_lines(int(rate * seconds))
    per_tick = max(1, rate // 100)
    ticks: list[tuple[float, int]] = []
    written = 0
    start = time.monotonic()
    with source.open("a", encoding="utf-8") as out:
        while written < rate * seconds:
            chunk = [next(lines) for _ in range(per_tick)]
            out.write("".join(line + "\n" for line in chunk))
            out.flush()
            written += len(chunk)
            ticks.append((time.time(), written))
            pause = start + len(ticks) * 0.01 - time.monotonic()
            if pause > 0:
                time.sleep(pause)
    return ticks


def latencies(ticks: list[tuple[float, int]], changes: list[list[float]], base: int) -> list[float]:
    result = []
    for written_at, count in ticks:
        seen = next((t / 1000 for t, n in changes if n - base >= count), None)
        if seen is not None:
            result.append(max(0.0, seen - written_at) * 1000)
    return result


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9600)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--idle", type=float, default=30.0)
    parser.add_argument(
        "--floor",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also measure an idle Chromium on about:blank (the floor)",
    )
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="bench-push-"))
    source, db = work / "receipts.jsonl", f"sqlite:///{work / 'analysis.db'}"
    history = ReceiptGenerator(seed=3, stores=12, start=dt.date.today(), days=1)
    source.write_text("".join(line + "\n" for line in history.iter_lines(2000)))
    env = {**os.environ, "COFFEESHOP_DB": db, "COFFEESHOP_SOURCE": str(source)}
    subprocess.run(
        [sys.executable, "-m", "coffeeshop", "sync", "--once"],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    sync = run("sync", "--follow", env=env)
    serve = run("serve", "--port", str(args.port), env=env)
    try:
        wait_up(args.port)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{args.port}/")
            page.wait_for_function(
                "() => /changes applied/.test(document.getElementById('engine').textContent)",
                timeout=120_000,
            )
            time.sleep(3)  # the stream (if any) is open
            page.evaluate(OBSERVE)
            base = applied(args.port)
            trace = HopTrace(args.port, work / "analysis.db")
            time.sleep(1)  # the bench's watchers are in place
            ticks = write_load(source, args.rate, args.seconds)
            total = ticks[-1][1]
            print(f"wrote {total} receipts; base {base}", flush=True)
            deadline = time.monotonic() + 180
            while not page.evaluate(
                "(n) => window.__changes.some(([, c]) => c >= n)", base + total
            ):
                if time.monotonic() > deadline:
                    print(
                        "last changes",
                        page.evaluate("window.__changes.slice(-3)"),
                        applied(args.port),
                    )
                    break
                time.sleep(1)
            changes = page.evaluate("window.__changes")
            lat = latencies(ticks, changes, base)
            kpi_deadline = time.monotonic() + 60
            while (
                not page.evaluate(
                    "(n) => window.__kpi.some(([, c]) => c - window.__kpiBase >= n)", total
                )
                and time.monotonic() < kpi_deadline
            ):
                time.sleep(1)
            hops = {
                "signal": latencies(ticks, trace.signal, base),
                "sse": latencies(ticks, trace.sse, base),
                "engine": lat,
                "kpi": latencies(
                    ticks, page.evaluate("window.__kpi"), page.evaluate("window.__kpiBase")
                ),
            }
            trace.close()
            time.sleep(5)  # settle
            mine = psutil.Process().children(recursive=True)
            browsers = [p for p in mine if "chrom" in p.name()]
            groups = {"sync": tree(sync.pid), "serve": tree(serve.pid), "browser": browsers}
            before = {k: cpu(v) for k, v in groups.items()}
            time.sleep(args.idle)
            used = {k: (cpu(v) - before[k]) / args.idle * 100 for k, v in groups.items()}
            browser.close()
            floor = blank_floor(playwright, args.idle) if args.floor else None
    finally:
        for process in (sync, serve):
            process.terminate()
            process.wait(30)
    load = os.getloadavg()
    print(f"load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {args.rate}/s for {args.seconds:g} s")
    print(
        f"latency ms over {len(lat)} ticks: p50 {pct(lat, 0.5):.0f}  p99 {pct(lat, 0.99):.0f}  "
        f"max {max(lat):.0f}  mean {statistics.mean(lat):.0f}"
    )
    print(
        f"idle CPU, % of a core over {args.idle:g} s: "
        + "  ".join(f"{k} {v:.2f}" for k, v in used.items())
        + f"  total {sum(used.values()):.2f}"
    )
    if floor is not None:
        print(f"floor: Chromium with about:blank, % of a core over {args.idle:g} s: {floor:.2f}")
    print_hops(hops, len(ticks))


def blank_floor(playwright: Any, seconds: float) -> float:
    """The CPU of a headless Chromium showing about:blank, measured as the dashboard's tab:
    what a browser costs before any page of ours."""
    before_pids = {p.pid for p in psutil.Process().children(recursive=True)}
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
    try:
        browser.new_page().goto("about:blank")
        time.sleep(5)  # settle, as above
        mine = psutil.Process().children(recursive=True)
        chromium = [p for p in mine if "chrom" in p.name() and p.pid not in before_pids]
        start = cpu(chromium)
        time.sleep(seconds)
        return (cpu(chromium) - start) / seconds * 100
    finally:
        browser.close()


def print_hops(hops: dict[str, list[float]], ticks: int) -> None:
    """p50 and p99 at each hop, from the write (ticks the hop never covered are left out
    and counted), and the p50 each hop adds to the one before."""
    line = []
    for name, values in hops.items():
        if not values:
            line.append(f"{name} -")
            continue
        missed = f" ({ticks - len(values)} ticks not seen)" if len(values) < ticks else ""
        line.append(f"{name} {pct(values, 0.5):.0f}/{pct(values, 0.99):.0f}{missed}")
    print("per hop, ms from the write, p50/p99: " + "  ".join(line))
    medians = [(n, pct(v, 0.5)) for n, v in hops.items() if v]
    steps = [f"{n} +{m - p:.0f}" for (_, p), (n, m) in pairwise([("write", 0.0), *medians])]
    print("each hop adds (p50): " + "  ".join(steps))


if __name__ == "__main__":
    main()
