"""Memory and wall time of the partitioned repair on a local Dask cluster: prints, asserts nothing.

    git archive BASE src | tar -x -C /tmp/base
    .venv/bin/python bench/bench_dask_scale.py --receipts 250000,1000000 --workers 2 \\
        --checkout new=src --checkout old=/tmp/base/src --rounds 1

For each history size N (`bench_sync.generate`: 50 stores over 3 years, generated once into
`bench/data/` and reused) and each round, every checkout in turn (interleaved, so drifting load
hits each alike) runs the whole command as a user would:

    coffeeshop reconcile --repair --workers W --source FILE --db sqlite:///fresh.db

into a fresh SQLite file: the read of every range, the comparison with `cs_receipts` (empty:
every receipt is reported missing) and the rebuild that writes them all, on a local cluster of
W worker processes that the command starts itself. The checkout's `src` comes first on
`PYTHONPATH` of the command, and so of its workers. Printed per run:

- the whole command's wall time (start of the process to its exit, the cluster's start and
  stop and Prefect's temporary API server included);
- the coordinator's peak resident memory: its own `VmHWM`, polled as the workers' are (not
  `wait4`'s `ru_maxrss`, which on Linux is the largest of the process and every descendant it
  waited for: its workers and Prefect's temporary API server included);
- each Dask worker process's peak (`VmHWM` of `/proc/PID/status`, polled every 50 ms while
  it lives: the kernel's own high-water mark, so a short peak between two polls is kept);
- CPU seconds: of the whole process tree (`RUSAGE_CHILDREN` around the command: it and every
  descendant waited for), of the coordinator alone and of each worker (their own, polled):
  on a loaded machine the CPU seconds compare runs, the wall times do not. The coordinator's
  own CPU is the run's serial part (planning, the merge, the comparison, the rebuild).

Then, per size and checkout, the median over rounds and the bytes per receipt.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from bench_sync import DATA, generate

COFFEESHOP = Path(sys.executable).with_name("coffeeshop")
POLL = 0.05


@dataclass
class Run:
    seconds: float
    coordinator_mib: float
    workers_mib: list[float] = field(default_factory=list)
    status: int = 0
    tree_cpu: float = 0.0  # CPU seconds of the command and every descendant it waited for
    coordinator_cpu: float = 0.0  # its own (the serial part: planning, comparison, rebuild)
    workers_cpu: list[float] = field(default_factory=list)


def _hwm_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _is_worker(process: psutil.Process) -> bool:
    """A Dask worker of a local cluster: a spawned multiprocessing child (not its tracker)."""
    try:
        command = " ".join(process.cmdline())
    except psutil.Error:
        return False
    return "multiprocessing" in command and "resource_tracker" not in command


def _cpu(process: psutil.Process, cpu: dict[int, float], key: int) -> None:
    """The last CPU seconds seen of `process` (its own, not its children's)."""
    try:
        times = process.cpu_times()
    except psutil.Error:
        return
    cpu[key] = times.user + times.system


def _watch(pid: int, peaks: dict[int, int], cpu: dict[int, float], done: threading.Event) -> None:
    """The high-water mark and CPU seconds of `pid` (key 0) and of every worker process under
    it, until `done`."""
    root = psutil.Process(pid)
    known: dict[int, bool] = {}
    while not done.is_set():
        own = _hwm_kib(pid)
        if own is not None:
            peaks[0] = max(peaks.get(0, 0), own)
        _cpu(root, cpu, 0)
        try:
            children = root.children(recursive=True)
        except psutil.Error:
            return
        for child in children:
            if child.pid not in known:
                known[child.pid] = _is_worker(child)
            if known[child.pid]:
                hwm = _hwm_kib(child.pid)
                if hwm is not None:
                    peaks[child.pid] = max(peaks.get(child.pid, 0), hwm)
                _cpu(child, cpu, child.pid)
        time.sleep(POLL)


def run_once(src: str, source: Path, workers: int, name: str) -> Run:
    db = DATA / f"scale-{name}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    env = {
        **os.environ,
        "PYTHONPATH": src,
        "COFFEESHOP_LOG_LEVEL": "WARNING",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    env.pop("PREFECT_API_URL", None)
    command = [str(COFFEESHOP), "reconcile", "--repair", "--workers", str(workers)]
    command += ["--source", str(source), "--db", f"sqlite:///{db}"]
    peaks: dict[int, int] = {}
    cpu: dict[int, float] = {}
    done = threading.Event()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    watcher = threading.Thread(target=_watch, args=(process.pid, peaks, cpu, done), daemon=True)
    watcher.start()
    status = process.wait()
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    done.set()
    watcher.join()
    db.unlink(missing_ok=True)
    own = peaks.pop(0, 0)
    tree = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return Run(
        seconds,
        own / 1024,
        sorted(kib / 1024 for kib in peaks.values()),
        status,
        tree,
        cpu.pop(0, 0.0),
        [cpu.get(pid, 0.0) for pid in peaks],
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--receipts", default="250000,1000000")
    parser.add_argument("--workers", default="2", help="comma-separated worker counts")
    parser.add_argument("--checkout", action="append", default=[], help="NAME=SRC_DIR")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    checkouts = dict(c.split("=", 1) for c in args.checkout) or {"new": "src"}
    checkouts = {name: str(Path(src).resolve()) for name, src in checkouts.items()}
    print(f"load: {os.getloadavg()}, cpus: {os.cpu_count()}", flush=True)
    for n in (int(x) for x in args.receipts.split(",")):
        source = DATA / f"scale-{n}.jsonl"
        generate(source, n, seed=22)
        results: dict[tuple[str, int], list[Run]] = {}
        for round_ in range(args.rounds):
            for w in (int(x) for x in args.workers.split(",")):
                order = list(checkouts.items())
                for name, src in order if round_ % 2 == 0 else order[::-1]:
                    run = run_once(src, source, w, name)
                    results.setdefault((name, w), []).append(run)
                    print(
                        f"{n:>9,} {name:>5} w={w} round {round_}: {run.seconds:7.1f} s, "
                        f"coordinator {run.coordinator_mib:6.0f} MiB, workers "
                        f"{', '.join(f'{m:.0f}' for m in run.workers_mib)} MiB, "
                        f"CPU s: tree {run.tree_cpu:.0f}, coordinator {run.coordinator_cpu:.0f}, "
                        f"workers {', '.join(f'{c:.0f}' for c in run.workers_cpu)}, "
                        f"exit {run.status}, load {os.getloadavg()[0]:.1f}",
                        flush=True,
                    )
        for (name, w), runs in results.items():
            coordinator = statistics.median(r.coordinator_mib for r in runs)
            worker = statistics.median(max(r.workers_mib, default=0.0) for r in runs)
            print(
                f"SUMMARY {n:,} receipts {name} {w} worker(s): wall "
                f"{statistics.median(r.seconds for r in runs):.1f} s, coordinator "
                f"{coordinator:.0f} MiB ({coordinator * 2**20 / n:.0f} B/receipt), largest worker "
                f"{worker:.0f} MiB ({worker * 2**20 / n:.0f} B/receipt)",
                flush=True,
            )


if __name__ == "__main__":
    main()
