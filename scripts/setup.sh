#!/usr/bin/env bash
# Installs what the tests and the demo need, idempotently: Debian's OTP 25 (erlang-nox,
# erlang-dev) to build the fixture releases and run live nodes, and moto (a real S3 server,
# pinned) in a venv under target/tools for the S3 backend tests. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_if_needed() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

MOTO_VERSION=5.2.5
tools=${REL_TOOLS:-$PWD/target/tools}

packages=()
command -v erlc >/dev/null || packages+=(erlang-nox erlang-dev)
python3 -m venv --help >/dev/null 2>&1 && python3 -c 'import ensurepip' 2>/dev/null || packages+=(python3-venv)
if ((${#packages[@]})); then
  echo "setup: installing ${packages[*]}"
  sudo_if_needed apt-get update -qq
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi
if [[ "$("$tools/moto/bin/python" -c 'import moto; print(moto.__version__)' 2>/dev/null)" != "$MOTO_VERSION" ]]; then
  echo "setup: installing moto[server]==$MOTO_VERSION into $tools/moto"
  rm -rf "$tools/moto"
  mkdir -p "$tools"
  python3 -m venv "$tools/moto"
  "$tools/moto/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
fi
command -v cargo >/dev/null || { echo "setup: cargo is required (https://rustup.rs)" >&2; exit 1; }
