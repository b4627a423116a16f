#!/usr/bin/env bash
# The main job: a registry on its embedded local store, and a short demo against it:
# keygen, push two real OTP releases (the second uploads only what changed), list them in
# version order, ask for the upgrade path, pull one back verified, and show it.
set -euo pipefail
cd "$(dirname "$0")/.."

# REL_BIN: an already built `rel` (the test suite runs this script that way).
rel=${REL_BIN:-}
if [[ -z "$rel" ]]; then
  scripts/setup.sh
  cargo build --quiet -p rel
  rel=$PWD/target/debug/rel
fi
fixtures/build.sh

work=$(mktemp -d)
server=
cleanup() { [[ -n "$server" ]] && kill "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

"$rel" serve --listen 127.0.0.1:0 --store "file://$work/rel-data" 2> "$work/serve.log" &
server=$!
for _ in $(seq 100); do grep -q 'listening on' "$work/serve.log" && break; sleep 0.1; done
export REL_REGISTRY=$(grep -o 'http://[0-9.:]*' "$work/serve.log" | head -1)
export REL_CACHE_DIR=$work/push-cache REL_STATE_DIR=$work/state
echo "registry: $REL_REGISTRY, store $work/rel-data"

mapfile -t versions < fixtures/out/VERSIONS
step rel keygen demo-ci --out-dir keys
"$rel" keygen demo-ci --out-dir "$work/keys"
for v in "${versions[@]:0:2}"; do
  step rel push "demo-$v.tar.gz" --key keys/demo-ci.key
  "$rel" push "fixtures/out/demo-$v.tar.gz" --key "$work/keys/demo-ci.key"
done
step rel versions demo
"$rel" versions demo
step rel path demo --from "${versions[0]}" --to "${versions[1]}"
"$rel" path demo --from "${versions[0]}" --to "${versions[1]}"
step rel pull demo --version "${versions[1]}" -o demo.tar.gz --trusted-key keys/demo-ci.pub
REL_CACHE_DIR=$work/host-cache "$rel" pull demo --version "${versions[1]}" -o "$work/demo.tar.gz" --trusted-key "$work/keys/demo-ci.pub"
step rel show demo "${versions[1]}" --trusted-key keys/demo-ci.pub
"$rel" show demo "${versions[1]}" --trusted-key "$work/keys/demo-ci.pub"
