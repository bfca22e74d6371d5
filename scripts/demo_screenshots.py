"""Screenshots of the dashboard as `make demo` shows it, for docs/ and the README.

Starts `coffeeshop demo --fresh` in a scratch folder with COFFEESHOP_TIMEZONE set to a zone,
lets it run for --minutes, then opens the dashboard in Debian's Chromium (/usr/bin/chromium)
at 1440 px and at 390 px (a phone) and saves full-page screenshots. The zone is how a run
"at night" or "by day" is had at any hour: the demo's clock is the zone's wall clock.

    .venv/bin/python scripts/demo_screenshots.py --zone Pacific/Auckland --label night \\
        --minutes 10 --port 9810
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
SIZES = ((1440, 900, False), (390, 844, True))
READY = """() => document.getElementById('kpi-week').textContent !== '–'
    && document.querySelectorAll('#heatmap .cell').length > 0
    && document.querySelectorAll('#quarantine-table tbody tr').length > 0"""


def wait_for(url: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise SystemExit(f"the demo did not answer at {url}")


def shoot(base: str, out: Path, label: str) -> list[Path]:
    from playwright.sync_api import sync_playwright

    saved = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        for width, height, phone in SIZES:
            page = browser.new_page(
                viewport={"width": width, "height": height}, is_mobile=phone, has_touch=phone
            )
            page.goto(f"{base}/")
            page.wait_for_function(READY, timeout=180_000)
            page.wait_for_timeout(1500)  # the charts' animations end
            path = out / f"dashboard-{label}-{width}.png"
            page.screenshot(path=str(path), full_page=True)
            saved.append(path)
            page.close()
        browser.close()
    return saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zone", required=True, help="COFFEESHOP_TIMEZONE of the run")
    parser.add_argument("--label", required=True, help="night, day, …: part of the file names")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--port", type=int, default=9810)
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    args = parser.parse_args()
    local = dt.datetime.now(ZoneInfo(args.zone)).strftime("%a %H:%M")
    print(f"demo in {args.zone} (its clock: {local}) on port {args.port} for {args.minutes} min")
    with tempfile.TemporaryDirectory(prefix="demo-shots-") as folder:
        env = {**os.environ, "COFFEESHOP_TIMEZONE": args.zone}
        command = ["demo", "--fresh", "--dir", folder, "--port", str(args.port)]
        demo = subprocess.Popen(
            [sys.executable, "-m", "coffeeshop", *command],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{args.port}"
            wait_for(f"{base}/health", time.monotonic() + 300)
            time.sleep(args.minutes * 60)
            for path in shoot(base, args.out, args.label):
                print(f"saved {path}")
        finally:
            demo.send_signal(signal.SIGINT)
            try:
                demo.wait(60)
            except subprocess.TimeoutExpired:
                demo.kill()


if __name__ == "__main__":
    main()
