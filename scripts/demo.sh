#!/usr/bin/env bash
# The main job: a registry on its embedded local store, and a short demo of what rel is for,
# on `shop`, a Phoenix-style app built by `mix release` (fixtures/mix):
#   CI side:   keygen, push two versions (the second uploads only what changed), build the
#              hot upgrade between them and push it, list versions, ask for the path;
#   host side: install the first version with the host's own sys.config, start it with its
#              start script, and hot-upgrade it under continuous requests with `rel upgrade`:
#              same OS process, state kept, the host's config still live, no failed request;
#              then `rel status` and a rollback.
set -euo pipefail
cd "$(dirname "$0")/.."

# REL_BIN: an already built `rel` (the test suite runs this script that way).
rel=${REL_BIN:-}
if [[ -z "$rel" ]]; then
  scripts/setup.sh
  cargo build --quiet -p rel
  rel=$PWD/target/debug/rel
fi
fixtures/build.sh >/dev/null

work=$(mktemp -d)
server= load=
root=$work/host/shop
node_env=()
cleanup() {
  [[ -n "$load" ]] && kill "$load" 2>/dev/null
  if [[ -n "${node_pid:-}" ]]; then
    env "${node_env[@]}" "$root/bin/shop" stop >/dev/null 2>&1
    for _ in $(seq 100); do kill -0 "$node_pid" 2>/dev/null || break; sleep 0.1; done
  fi
  [[ -n "${epmd_port:-}" ]] && ERL_EPMD_PORT=$epmd_port epmd -kill >/dev/null 2>&1
  [[ -n "$server" ]] && kill "$server" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

"$rel" serve --listen 127.0.0.1:0 --store "file://$work/rel-data" 2> "$work/serve.log" &
server=$!
for _ in $(seq 100); do grep -q 'listening on' "$work/serve.log" && break; sleep 0.1; done
export REL_REGISTRY=$(grep -o 'http://[0-9.:]*' "$work/serve.log" | head -1)
export REL_CACHE_DIR=$work/ci-cache REL_STATE_DIR=$work/state
echo "registry: $REL_REGISTRY, store $work/rel-data"
echo "web view: $REL_REGISTRY/ui/releases/shop (versions, the upgrade graph, what changed), while the demo runs"

# --- CI: publish two versions and the hot upgrade between them ---------------------------
mapfile -t versions < fixtures/out/shop/VERSIONS
v1=${versions[0]} v2=${versions[1]}
step rel keygen shop-ci --out-dir keys
"$rel" keygen shop-ci --out-dir "$work/keys"
export REL_KEY=$work/keys/shop-ci.key
for v in "$v1" "$v2"; do
  step rel push "shop-$v.tar.gz"
  "$rel" push "fixtures/out/shop/shop-$v.tar.gz"
done
step rel build-upgrade shop --from "$v1" --to "$v2" --push
"$rel" build-upgrade shop --from "$v1" --to "$v2" --push --trusted-key "$work/keys/shop-ci.pub"
step rel versions shop
"$rel" versions shop
step rel path shop --from "$v1" --to "$v2"
"$rel" path shop --from "$v1" --to "$v2"

# --- The host: its own config, its own cache, trusting only the CI key ---------------------
export REL_CACHE_DIR=$work/host-cache REL_TRUSTED_KEYS=$work/keys/shop-ci.pub
unset REL_KEY
printf '[{shop, [{greeting, <<"hello-from-the-host">>}]}].\n' > "$work/host.sys.config"
step rel install shop --version "$v1" --root host/shop --sys-config host.sys.config
"$rel" install shop --version "$v1" --root "$root" --sys-config "$work/host.sys.config"

http_port=$(free_port) epmd_port=$(free_port)
node_env=(ERL_EPMD_PORT="$epmd_port" ERL_EPMD_ADDRESS=127.0.0.1 RELEASE_NODE="shop-demo@127.0.0.1"
  RELEASE_TMP="$root/tmp" SHOP_PORT="$http_port" HOME="$work/host")
printf '[node]\nname = "shop-demo@127.0.0.1"\nepmd_port = %s\n' "$epmd_port" > "$root/rel-host.toml"
step bin/shop daemon
env "${node_env[@]}" "$root/bin/shop" daemon
get() { curl -sf "http://127.0.0.1:$http_port/"; }
for _ in $(seq 300); do get >/dev/null 2>&1 && break; sleep 0.1; done
node_pid=$(env "${node_env[@]}" "$root/bin/shop" pid)
show() { echo "GET / -> $(get | tr ' ' '\n' | grep -E '^(code_vsn|hits|store|greeting|store_pid|audit)=' | paste -sd' ')  (OS pid $node_pid)"; }
show

# Requests all along the upgrade and the rollback; each failure is counted.
(ok=0 failed=0
  trap 'echo "$ok $failed" > "$work/load"; exit 0' TERM
  while :; do
    if get >/dev/null 2>&1; then ok=$((ok + 1)); else failed=$((failed + 1)); fi
  done) &
load=$!
sleep 0.5

step rel upgrade shop --to "$v2" --root host/shop
"$rel" upgrade shop --to "$v2" --root "$root"
show
step rel status shop --root host/shop
"$rel" status shop --root "$root"
step rel rollback shop --root host/shop
"$rel" rollback shop --root "$root"
show

sleep 0.5
kill -TERM "$load"
wait "$load" || true
load=
read -r ok failed < "$work/load"
echo
echo "requests during the upgrade and the rollback: $ok served, $failed failed"
[[ $failed -eq 0 ]]
