#!/usr/bin/env bash
# What the tests need from the system besides Python: Debian's Chromium for the chat page's test
# (never a browser build of Playwright's own), Node.js and npm for the JavaScript package's tests
# (they install its pinned development packages with `npm ci`), nginx for tests/ops, and
# Prometheus's promtool and redis_exporter for the alert rules' tests, and openssl for the
# throwaway certificates of the Redis TLS tests (tests/support/tls.py). Installs
# whichever is missing, so that `make test` alone sets up a fresh machine.
set -euo pipefail

missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
command -v nginx >/dev/null || missing+=(nginx-light)
command -v openssl >/dev/null || missing+=(openssl)
# Only their binaries are used: without the recommended node exporter.
lean=()
command -v promtool >/dev/null || lean+=(prometheus)
command -v prometheus-redis-exporter >/dev/null || lean+=(prometheus-redis-exporter)
((${#missing[@]} + ${#lean[@]})) || exit 0

if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
  echo "make test: ${missing[*]} ${lean[*]} missing and cannot be installed here (needs root" \
    "and apt-get); the tests that use them will fail" >&2
  exit 0
fi
echo "make test: installing ${missing[*]} ${lean[*]}"
apt-get update -qq
if ((${#missing[@]})); then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ((${#lean[@]})); then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${lean[@]}" \
    >/dev/null
fi
