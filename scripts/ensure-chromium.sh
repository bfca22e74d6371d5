#!/usr/bin/env bash
# Make sure Debian's Chromium is at /usr/bin/chromium for the dashboard's browser test
# (tests/test_dashboard.py drives it through Playwright; `playwright install` is never used).
# Installs it with apt-get, non-interactively, only when it is missing. When it cannot be
# installed the test skips with the reason, except with CI=true, where this script fails.
set -euo pipefail
browser=/usr/bin/chromium

if [ -x "$browser" ]; then
  echo "chromium: $browser is installed" >&2
  exit 0
fi

in_ci() { case "${CI:-}" in 1|true|TRUE|True|yes) return 0 ;; *) return 1 ;; esac; }
give_up() {
  echo "chromium: $1; the browser test will be skipped" >&2
  if in_ci; then echo "chromium: CI=true needs it: failing" >&2; exit 1; fi
  exit 0
}

if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo=(sudo -n)
else
  give_up "$browser is missing and installing it needs root (run: sudo apt-get install chromium)"
fi
command -v apt-get >/dev/null 2>&1 || give_up "$browser is missing and there is no apt-get here"

echo "chromium: $browser is missing; installing Debian's chromium with apt-get ..." >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq -o Dpkg::Use-Pty=0 chromium >/dev/null
if [ ! -x "$browser" ]; then
  give_up "apt-get finished but $browser is still missing"
fi
echo "chromium: installed $("$browser" --version 2>/dev/null || echo "$browser")" >&2
