#!/usr/bin/env bash
# What `npm test` needs besides Node.js and npm: redis-server (every integration test starts
# its own) and Debian's Chromium at /usr/bin/chromium (the browser tests drive it through
# playwright-core, which never downloads a browser). Whatever is missing is installed from
# Debian's packages when this machine can (root with apt-get), saying so first; otherwise the
# missing packages are named in one line and the tests do not start. Go, for the one-time
# FerretDB build, is checked where that build happens (test/helpers/global-setup.ts).
set -euo pipefail
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "[npm test] installing ${missing[*]} from Debian's packages (the tests need them)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq "${missing[@]}" >/dev/null
  exit 0
fi
echo "[npm test] missing: ${missing[*]}; on Debian: sudo apt-get install ${missing[*]}" >&2
exit 1
