#!/usr/bin/env bash
# What the benchmark's peer row (bench/nchan.py) needs from the system: Debian's nginx with
# libnginx-mod-nchan. `make bench` runs this; `make test` does not, so the tests' machines never
# install nchan: the smoke test runs the row tiny where nchan is installed and sees it skipped
# where it is not. Without root or apt-get, or when the install fails, it says so and the row
# prints `-` with the reason; the benchmark runs on.
set -euo pipefail

module=/usr/lib/nginx/modules/ngx_nchan_module.so
if command -v nginx >/dev/null && [[ -e $module ]]; then
  exit 0
fi
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
  echo "make bench: nchan (nginx, libnginx-mod-nchan) is missing and cannot be installed here" \
    "(needs root and apt-get); the nchan row is skipped" >&2
  exit 0
fi
echo "make bench: installing nginx and libnginx-mod-nchan for the nchan row"
# The module is built against one nginx ABI (nginx-abi-1.22.1-7 on bookworm), which Debian's
# `nginx` package provides; nginx-light, which the tests install, is a transitional package
# that depends on that same `nginx`.
if ! { apt-get update -qq &&
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    nginx libnginx-mod-nchan >/dev/null; }; then
  echo "make bench: installing libnginx-mod-nchan failed; the nchan row is skipped" >&2
fi
