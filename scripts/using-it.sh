#!/usr/bin/env bash
# README's "Using it", runnable. The test suite runs it end to end in an empty folder, with a
# real registry, the fixtures' mix releases and a live node (`readme::using_it_runs`), and
# checks that README.md shows the part between the markers word for word: the two cannot
# drift apart. The test sets what a reader's machine would have: `rel` on PATH, release
# tarballs in $BUILD, an app's git work tree in ./app, and the node's ports in the
# environment (SHOP_PORT, ERL_EPMD_PORT).
set -euo pipefail
# --- README begins
# Names used below; yours will differ.
: "${LISTEN:=127.0.0.1:7777}" "${BUILD:=_build/prod/rel/shop}"
: "${V1:=0.1.0}" "${V2:=0.2.0}" "${V3:=0.3.0}"

# A signing key for CI, tokens, and a registry that accepts only what that key signed
# (the store: file:///srv/rel, or s3://bucket/prefix with AWS_* env or [s3] in --config).
rel keygen ci-2026 --out-dir keys          # keys/ci-2026.key (0600) and keys/ci-2026.pub
ci_token=$(rel token create ci --scope push --file tokens.toml)        # printed once
hosts_token=$(rel token create hosts --scope pull --file tokens.toml)  # rel token list|revoke
rel serve --listen "$LISTEN" --store "file://$PWD/rel-data" --tokens tokens.toml \
  --publisher-key keys/ci-2026.pub --log-format json > registry.log 2>&1 &
export REL_REGISTRY=http://$LISTEN
until curl -sf "$REL_REGISTRY/healthz" > /dev/null; do sleep 0.1; done

# CI: releases, and the upgrades between them.
export REL_TOKEN=$ci_token REL_KEY=keys/ci-2026.key REL_TRUSTED_KEYS=keys/ci-2026.pub
rel version --dir app --auto-version commit-count+revision   # edeliver's AUTO_VERSION
rel push "$BUILD/shop-$V1.tar.gz" --dry-run    # what it would upload; nothing is sent
for v in "$V1" "$V2" "$V3"; do rel push "$BUILD/shop-$v.tar.gz"; done
rel build-upgrade shop --from "$V1" --to "$V2" --push   # appups, relup, changed libs only
rel promote shop "$V2" --channel production
rel promote shop --channel production --renew    # the same version, a new expiry

# Looking around (or open $REL_REGISTRY in a browser: releases, versions, the upgrade graph
# with the path between two versions, what changed).
rel list
rel versions shop
rel path shop --from "$V1" --to "$V3"
rel show "shop@$V2"     # NAME@VERSION wherever a version is named; a short version
                        # (0.2.0) stands for the one stored version it begins
rel show "shop@$V2" --json --signed > m.json && rel verify m.json
rel appup "shop@$V1" "shop@$V2" --out appups    # the generated appups, to read

# A host: its own token, config and cache; it trusts the CI key and nothing else.
export REL_TOKEN=$hosts_token REL_CACHE_DIR=$PWD/host-cache
unset REL_KEY
echo '[{shop, [{greeting, <<"hello">>}]}].' > shop.sys.config   # the host's, kept
rel install shop --version "$V1" --root opt/shop --sys-config shop.sys.config
opt/shop/bin/shop daemon             # as you start it: systemd, a supervisor...
until opt/shop/bin/shop pid > /dev/null 2>&1; do sleep 0.2; done
rel upgrade shop --channel production --root opt/shop   # live, step by step
rel upgrade shop --to "$V3" --root opt/shop --dry-run   # the plan: no stored upgrade, so
                                     # built here from the two releases; its instructions
rel upgrade shop --to "$V3" --root opt/shop
rel status shop --root opt/shop      # running, permanent, the last operation
rel reload-config shop --root opt/shop   # the host's sys.config, live
rel rollback shop --root opt/shop    # back to the previous release, live
opt/shop/bin/shop stop

# A root another tool deployed (edeliver, mix, relx): rel takes it over, then upgrades it.
mkdir -p opt/legacy && tar -xzf "$BUILD/shop-$V1.tar.gz" -C opt/legacy
rel adopt shop --root opt/legacy
# --- README ends
