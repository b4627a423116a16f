#!/usr/bin/env bash
# Installs what the tests and the demo need, idempotently: Debian's OTP 25 (erlang-nox,
# erlang-dev) to build the fixture releases and run live nodes. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_if_needed() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

packages=()
command -v erlc >/dev/null || packages+=(erlang-nox erlang-dev)
if ((${#packages[@]})); then
  echo "setup: installing ${packages[*]}"
  sudo_if_needed apt-get update -qq
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "setup: cargo is required (https://rustup.rs)" >&2; exit 1; }
