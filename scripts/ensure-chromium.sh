#!/usr/bin/env bash
# Make sure Debian's Chromium is at /usr/bin/chromium for the browser test (tests/ui).
# Playwright drives it through its Python package; its own browser downloads are never used.
# Installs the Debian package only when it is missing and we are root; otherwise it says what
# to do. The browser test skips without Chromium locally and FAILS under CI=true.
set -u

if [ -x /usr/bin/chromium ]; then
  echo "chromium: $(/usr/bin/chromium --version 2>/dev/null | head -n 1)"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "chromium: not installed (run 'sudo apt-get install chromium'; the browser test will skip locally)"
  exit 0
fi
echo "chromium: installing the Debian package"
apt-get update -qq >/dev/null 2>&1 || true
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 \
  && echo "chromium: installed" || echo "chromium: could not be installed"
exit 0
