#!/usr/bin/env bash
# Tools the test suite needs beyond the lab: Debian's Chromium, which the browser test drives through
# Playwright (Playwright's own browser download does not work without internet). Root, Debian only,
# idempotent; elsewhere it says what to install and exits 0 (the browser test then skips, except in CI).
set -euo pipefail
say() { printf '==> %s\n' "$*"; }
if command -v chromium >/dev/null 2>&1; then say "chromium present: $(chromium --version 2>/dev/null)"; exit 0; fi
# shellcheck disable=SC1091
. /etc/os-release 2>/dev/null || true
if [ "${ID:-}" != debian ] || [ "$(id -u)" != 0 ]; then
  say "no chromium: the browser test needs it (Debian: apt-get install chromium; macOS: install Chromium)"
  exit 0
fi
say "apt-get install chromium"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null \
  || { apt-get update -qq || true; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; }
