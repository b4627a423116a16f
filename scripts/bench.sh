#!/usr/bin/env bash
# Benchmarks, each a ratio against a baseline measured in the same run on this machine:
#   push      rel push of a release of Debian's OTP libs + ERTS (50 to 80 MB, by what is installed) vs `zstd -3 -T1` of its tar
#   pull      rel pull --into (fresh cache) vs `curl | tar xz` of its .tar.gz from nginx
#   next      bytes fetched pulling the next version (5% of beams changed) after the first
#   rss       peak RSS of rel push and rel pull for a 1 GiB release
#   appup     rel appup on ~8,000 modules vs an escript running beam_lib:cmp_dirs
#   load      wrk on registry metadata endpoints vs nginx serving a static file
#   limits    the same wrk runs against the registry before its limits against hostile load
#   path      upgrade-path query over 10,000 versions and 30,000 upgrades (criterion)
#   synth     a synthesised upgrade between two 5,000-module releases (5% of modules changed):
#             the bytes a host fetches for it (as deltas, and as whole chunks), and the time
#             to build it vs systools:make_relup
#             (from folders; and on a host, from its cache)
#   step      one hot upgrade step and its rollback on a live mix release (fixtures' shop):
#             rel reaching the node by distribution vs `bin/shop rpc` per call
#   live      requests served by the fixture apps (mix and rebar3) while they are upgraded
#             and rolled back live: failures, p50/p99/max latency against a quiet window
# Figures go to stdout and $REL_BENCH_DIR/results.txt (default /tmp/rel-bench); REL_BENCH_KEEP=1
# keeps the generated corpus of `synth` for a look. Needs about
# 6 GB of disk.
# Arguments name the parts to run (default: all), e.g. `scripts/bench.sh appup path`.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
scripts/setup.sh
need=()
for t in wrk:wrk nginx:nginx-light hyperfine:hyperfine zstd:zstd curl:curl; do
  command -v "${t%%:*}" >/dev/null || need+=("${t#*:}")
done
[[ -x /usr/bin/time ]] || need+=(time)
if ((${#need[@]})); then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo build --release -q -p rel
rel=${CARGO_TARGET_DIR:-$root/target}/release/rel
# Outside the checkout: tools that watch a work tree make file creation there much slower.
work=${REL_BENCH_DIR:-${TMPDIR:-/tmp}/rel-bench}
rm -rf "$work" && mkdir -p "$work"
results=$work/results.txt
: > "$results"
say() { echo "$*" | tee -a "$results"; }
parts=("$@")
part() { [[ ${#parts[@]} -eq 0 ]] || [[ " ${parts[*]} " == *" $1 "* ]]; }
pids=()
stops=()
cleanup() {
  for c in "${stops[@]}"; do eval "$c" >/dev/null 2>&1 || true; done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

otp=$(erl -noshell -noinput -eval 'io:format("~s", [code:root_dir()]), halt().')
erts=$(erl -noshell -noinput -eval 'io:format("~s", [erlang:system_info(version)]), halt().')

# OTP's lib folders hold symlinks to elsewhere on the system (common_test's jquery points
# into /usr/share/javascript), which a release may not carry: each becomes a copy of what it
# points at, and one that points nowhere is left out; the first run says how many.
links_said=
resolve_links() { # dir
  local link target n=0 broken=0
  while IFS= read -r -d '' link; do
    target=$(readlink -f "$link" || true)
    rm "$link"; n=$((n + 1))
    if [[ -n "$target" && -f "$target" ]]; then cp "$target" "$link"; else broken=$((broken + 1)); fi
  done < <(find "$1" -type l -print0)
  if [[ $n -gt 0 && -z "$links_said" ]]; then
    echo "corpus: symlinks in OTP's libs copied as files ($broken pointing nowhere left out)"; links_said=1
  fi
}

# A release folder from Debian's OTP: every lib, ERTS, and a .rel listing them.
make_release() { # dir name vsn copies
  local dir=$1 name=$2 vsn=$3 copies=$4 apps="" app v
  mkdir -p "$dir/lib" "$dir/releases/$vsn"
  for lib in "$otp"/lib/*/; do
    lib=$(basename "$lib"); app=${lib%%-*}; v=${lib#*-}
    for c in $(seq 1 "$copies"); do
      local as=$app; [[ $c -gt 1 ]] && as=${app}_c$c
      cp -r "$otp/lib/$lib" "$dir/lib/$as-$v"
      resolve_links "$dir/lib/$as-$v"
      apps+="{$as,\"$v\"},"
    done
  done
  [[ $copies -eq 1 ]] && cp -r "$otp/erts-$erts" "$dir/erts-$erts"
  printf '{release,{"%s","%s"},{erts,"%s"},[%s]}.\n' "$name" "$vsn" "$erts" "${apps%,}" > "$dir/releases/$vsn/$name.rel"
  cp "$dir/releases/$vsn/$name.rel" "$dir/releases/$name.rel"
}

# The next version: same tree, 5% of the beams changed (one byte of their Code chunk
# flipped, so their md5 changes), lib dirs with a new vsn when asked.
next_version() { # from to name oldvsn newvsn bump_libs
  local from=$1 to=$2 name=$3 old=$4 new=$5 bump=$6
  cp -r "$from" "$to"
  mv "$to/releases/$old" "$to/releases/$new"
  sed -i "s/\"$name\",\"$old\"/\"$name\",\"$new\"/" "$to/releases/$new/$name.rel"
  cp "$to/releases/$new/$name.rel" "$to/releases/$name.rel"
  find "$to/lib" -name '*.beam' | sort | awk 'NR % 20 == 0' | python3 -c '
import struct, sys
for path in sys.stdin.read().split():
    b = bytearray(open(path, "rb").read())
    pos = 12
    while pos + 8 <= len(b):
        cid, size = bytes(b[pos:pos + 4]), struct.unpack(">I", b[pos + 4:pos + 8])[0]
        if cid == b"Code":
            b[pos + 8 + size // 2] ^= 1
            break
        pos += 8 + (size + 3) // 4 * 4
    open(path, "wb").write(b)
'

  if [[ $bump == yes ]]; then
    for d in "$to"/lib/*/; do
      d=$(basename "$d"); mv "$to/lib/$d" "$to/lib/${d%%-*}-${d#*-}.1"
    done
    sed -i 's/{\([a-z0-9_]*\),"\([^"]*\)"}/{\1,"\2.1"}/g' "$to/releases/$new/$name.rel"
    sed -i "s/{erts,\"$erts.1\"}/{erts,\"$erts\"}/; s/{\"$name\",\"$new.1\"}/{\"$name\",\"$new\"}/" "$to/releases/$new/$name.rel"
    cp "$to/releases/$new/$name.rel" "$to/releases/$name.rel"
  fi
}

say "# rel benchmarks, $(date -u +%FT%TZ), $(nproc) cores, OTP $erts"
make_release "$work/a" bench 1.0.0 1
next_version "$work/a" "$work/b" bench 1.0.0 1.0.1 no
tar -C "$work/a" -cf "$work/a.tar" . && gzip -6 -c "$work/a.tar" > "$work/a.tar.gz"
size=$(stat -c %s "$work/a.tar")
say "release: $((size / 1000000)) MB tar, $(find "$work/a" -name '*.beam' | wc -l) beams"

# Registry and static server.
"$rel" keygen bench --out-dir "$work/keys" --quiet
"$rel" serve --listen 127.0.0.1:0 --store "file://$work/store" 2> "$work/serve.log" & pids+=($!)
for _ in $(seq 100); do grep -q 'listening on' "$work/serve.log" && break; sleep 0.1; done
export REL_REGISTRY=$(grep -o 'http://[0-9.:]*' "$work/serve.log" | head -1)
export REL_KEY=$work/keys/bench.key REL_TRUSTED_KEYS=$work/keys/bench.pub REL_STATE_DIR=$work/state
mkdir -p "$work/www"
cp "$work/a.tar.gz" "$work/www/"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/nginx.conf" <<NGINX
worker_processes 2; pid $work/nginx.pid; error_log $work/nginx.err;
events { worker_connections 1024; }
http { access_log off; sendfile on; client_body_temp_path $work/ngx; proxy_temp_path $work/ngx; fastcgi_temp_path $work/ngx; uwsgi_temp_path $work/ngx; scgi_temp_path $work/ngx;
  server { listen 127.0.0.1:$port; root $work/www; } }
NGINX
mkdir -p "$work/ngx"
nginx -c "$work/nginx.conf" -g 'daemon off;' & pids+=($!)
sleep 0.5

# "met" or "NOT MET" for a Python condition.
met() { python3 -c "print('met' if ($1) else 'NOT MET')"; }
secs() { /usr/bin/time -f "%e %M" -o "$work/time" "$@" >/dev/null 2>&1; cat "$work/time"; }

mean() { python3 -c "import json; r=json.load(open('$1'))['results']; print(' '.join(f\"{x['mean']:.3f}\" for x in r))"; }

# Runs a baseline and a contender in turns, N times each (which goes first alternates), each
# after its preparation, and prints: the baseline's median time, the contender's, and the
# median, least and greatest of the N ratios baseline/contender. On a shared VM the speed of
# the machine drifts over seconds; two blocks of runs one after the other (hyperfine's way)
# can put that drift into the ratio, runs in pairs cancel it.
paired() { # N prepare-baseline baseline prepare-contender contender
  python3 - "$@" <<'PY'
import statistics, subprocess, sys, time
n, prep_a, a, prep_b, b = int(sys.argv[1]), *sys.argv[2:6]
def run(prep, cmd):
    subprocess.run(prep, shell=True, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t = time.perf_counter()
    subprocess.run(cmd, shell=True, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t
run(prep_a, a), run(prep_b, b)  # warm-up
ta, tb = [], []
for i in range(n):
    if i % 2:
        tb.append(run(prep_b, b)); ta.append(run(prep_a, a))
    else:
        ta.append(run(prep_a, a)); tb.append(run(prep_b, b))
r = sorted(x / y for x, y in zip(ta, tb))
print(f"{statistics.median(ta):.3f} {statistics.median(tb):.3f} {statistics.median(r):.2f} {r[0]:.2f} {r[-1]:.2f}")
PY
}
if part push || part pull || part next; then
set +e
( pids=(); stops=(); trap cleanup EXIT; set -e  # only what this part starts

# push: every run against a registry started on an empty store (a registry caches its pack
# index, so emptying the store under a running one would not make the next push a first one).
rport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/fresh-registry.sh" <<FRESH
#!/usr/bin/env bash
if [[ -f $work/push-registry.pid ]]; then kill \$(cat $work/push-registry.pid) 2>/dev/null; sleep 0.2; fi
rm -rf $work/push-store $work/push-registry.log
$rel serve --listen 127.0.0.1:$rport --store file://$work/push-store --exit-after 600 > $work/push-registry.log 2>&1 &
echo \$! > $work/push-registry.pid
for _ in \$(seq 200); do grep -q 'listening on' $work/push-registry.log && break; sleep 0.05; done
sync
FRESH
chmod +x "$work/fresh-registry.sh"
push_to=(--registry "http://127.0.0.1:$rport" --quiet)
read -r zstd_s push_s ratio least most < <(paired 15 "sync" "zstd -3 -T1 -q -f $work/a.tar -o $work/a.tar.zst" \
  "$work/fresh-registry.sh" "$rel push $work/a ${push_to[*]}")
say "push:  rel push $push_s s vs zstd -3 $zstd_s s (medians of 15 pairs)  -> throughput ratio ${ratio}x (pairs: $least to $most) (target >= 1.0x: $(met "$ratio >= 1.0"))"
hyperfine -N -r 10 --export-json "$work/push2.json" --prepare "sync" "$rel push $work/a ${push_to[*]}" > /dev/null
read -r again_s < <(mean "$work/push2.json")
read -r push2_s _ < <(secs "$rel" push "$work/b" "${push_to[@]}")
say "push:  again, all chunks stored: $again_s s ($(python3 -c "print(f'{$zstd_s/$again_s:.2f}')")x zstd); next version (5% of beams changed): $push2_s s"
kill "$(cat "$work/push-registry.pid")" 2>/dev/null || true
read -r _ push_rss < <(secs "$rel" push "$work/a" --quiet)

# pull: an empty cache (on disk, under $work) and a new target for every run, extracted
# into tmpfs. On this VM's disk (ext4 without a journal) creating a file right after many
# were deleted scans the deleted inodes (ext4's recently_deleted(): 60 s, 300 s while dirty),
# so there the figures follow whatever the previous minutes deleted; tmpfs measures the
# tools. The same pair is also run on disk, into fresh directories, deleting nothing.
shm=/dev/shm/rel-bench-$$
mkdir -p "$shm"
trap 'cleanup; rm -rf "$shm"' EXIT
hyperfine -N -r 10 -w 1 --export-json "$work/pull.json" \
  --prepare "bash -c 'rm -rf $shm/x1 && mkdir $shm/x1'" "bash -c 'curl -s http://127.0.0.1:$port/a.tar.gz | tar xz -C $shm/x1'" \
  --prepare "bash -c 'rm -rf $shm/x2 $work/cache-host'" "$rel pull bench --version 1.0.0 --into $shm/x2 --cache-dir $work/cache-host --quiet" > /dev/null
read -r curl_s pull_s < <(mean "$work/pull.json")
say "pull:  into tmpfs: rel pull --into $pull_s s vs curl | tar xz $curl_s s (means of 10)  -> $(python3 -c "print(f'{$curl_s/$pull_s:.2f}')")x faster (target >= 2x: $(met "$curl_s/$pull_s >= 2"))"
mkdir -p "$work/disk"
hyperfine -N -r 1 -P i 1 5 --export-json "$work/pull-disk.json" \
  "bash -c 'mkdir $work/disk/t{i} && curl -s http://127.0.0.1:$port/a.tar.gz | tar xz -C $work/disk/t{i}'" \
  "$rel pull bench --version 1.0.0 --into $work/disk/r{i} --cache-dir $work/disk/cache{i} --quiet" > /dev/null
read -r curl_d pull_d < <(python3 -c "
import json; r = json.load(open('$work/pull-disk.json'))['results']
t = [x['mean'] for x in r if 'tar xz' in x['command']]; p = [x['mean'] for x in r if 'tar xz' not in x['command']]
print(f'{sum(t)/len(t):.3f} {sum(p)/len(p):.3f}')")
say "pull:  onto disk: rel pull --into $pull_d s vs curl | tar xz $curl_d s (means of 5)  -> $(python3 -c "print(f'{$curl_d/$pull_d:.2f}')")x"
read -r _ pull_rss < <(secs bash -c "rm -rf $shm/x2 $work/cache-host && $rel pull bench --version 1.0.0 --into $shm/x2 --cache-dir $work/cache-host --quiet")
say "rss:   the $((size / 1000000)) MB release: rel push peak $((push_rss / 1024)) MiB, rel pull peak $((pull_rss / 1024)) MiB"
"$rel" push "$work/b" --quiet
rm -rf "$work/cache-plain" && cp -r "$work/cache-host" "$work/cache-plain"
json=$("$rel" pull bench --version 1.0.1 -o "$work/b.tar" --cache-dir "$work/cache-host" --json)
fetched=$(echo "$json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["fetched_bytes"])')
json=$("$rel" pull bench --version 1.0.1 -o "$work/b-plain.tar" --cache-dir "$work/cache-plain" --no-deltas --json)
plain=$(echo "$json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["fetched_bytes"])')
say "next:  pulling 1.0.1 after 1.0.0 fetched $fetched of $size bytes = $(python3 -c "print(f'{100*$fetched/$size:.3f}')")% (whole chunks, --no-deltas: $plain = $(python3 -c "print(f'{100*$plain/$size:.2f}')")%) (target <= 10%: $(met "100*$fetched/$size <= 10"))"

)
[[ $? -eq 0 ]] || say "push/pull/next: FAILED (see the output above); the other parts go on"
set -e
fi

# RSS with a 1 GiB release
if part rss; then
set +e
( pids=(); stops=(); trap cleanup EXIT; set -e  # only what this part starts
mkdir -p "$work/big/lib/big-1.0.0/priv" "$work/big/releases/1.0.0"
printf '{release,{"big","1.0.0"},{erts,"%s"},[{kernel,"1"},{big,"1.0.0"}]}.\n' "$erts" | tee "$work/big/releases/1.0.0/big.rel" > "$work/big/releases/big.rel"
for i in $(seq 1 16); do head -c 67108864 /dev/urandom > "$work/big/lib/big-1.0.0/priv/blob$i"; done
read -r _ big_push_rss < <(secs "$rel" push "$work/big" --quiet)
read -r _ big_pull_rss < <(secs "$rel" pull big --version 1.0.0 -o "$work/big.tar" --cache-dir "$work/cache-big2")
say "rss:   1 GiB release: rel push peak $((big_push_rss / 1024)) MiB, rel pull peak $((big_pull_rss / 1024)) MiB (target <= 100 MiB: $(met "$big_push_rss <= 102400 and $big_pull_rss <= 102400"))"
rm -rf "$work/big" "$work/big.tar" "$work/cache-big2" "$work/disk"
)
[[ $? -eq 0 ]] || say "rss: FAILED (see the output above); the other parts go on"
set -e
fi

# appup on ~8,000 modules (7 copies of the OTP libs)
if part appup; then
set +e
( pids=(); stops=(); trap cleanup EXIT; set -e  # only what this part starts
make_release "$work/c" many 1.0.0 7
next_version "$work/c" "$work/d" many 1.0.0 1.1.0 yes
cat > "$work/cmp.escript" <<'ESCRIPT'
#!/usr/bin/env escript
main([A, B]) ->
    Old = filelib:wildcard(A ++ "/lib/*"), New = filelib:wildcard(B ++ "/lib/*"),
    N = lists:sum([begin {_, _, Changed} = beam_lib:cmp_dirs(O ++ "/ebin", Nw ++ "/ebin"), length(Changed) end
                   || {O, Nw} <- lists:zip(Old, New), filelib:is_dir(O ++ "/ebin")]),
    io:format("~b changed~n", [N]).
ESCRIPT
modules=$(find "$work/c/lib" -name '*.beam' | wc -l)
hyperfine -w 1 -r 5 -N --export-json "$work/appup.json" \
  "$rel appup $work/c $work/d --out $work/appups --quiet" \
  "escript $work/cmp.escript $work/c $work/d" > /dev/null
read -r rel_appup esc_cmp < <(python3 -c "import json; r=json.load(open('$work/appup.json'))['results']; print(r[0]['mean'], r[1]['mean'])")
say "appup: $modules modules: rel appup $(python3 -c "print(f'{$rel_appup:.3f}')") s vs escript beam_lib:cmp_dirs $(python3 -c "print(f'{$esc_cmp:.3f}')") s -> $(python3 -c "print(f'{$esc_cmp/$rel_appup:.1f}')")x faster (target <= 0.5 s and >= 5x: $(met "$rel_appup <= 0.5 * $modules / 5000 and $esc_cmp/$rel_appup >= 5"))"
rm -rf "$work/c" "$work/d"
)
[[ $? -eq 0 ]] || say "appup: FAILED (see the output above); the other parts go on"
set -e
fi

# load: registry metadata vs nginx static file of the same size
if part load; then
set +e
( pids=(); stops=(); trap cleanup EXIT; set -e  # only what this part starts
"$rel" push "$work/a" --quiet
curl -s "$REL_REGISTRY/v1/releases/bench" > "$work/www/versions.json"
wrk_rps() { wrk -t2 -c32 -d5s "$1" | awk '/Requests\/sec/ {print $2}'; }
static=$(wrk_rps "http://127.0.0.1:$port/versions.json")
listing=$(wrk_rps "$REL_REGISTRY/v1/releases/bench")
path=$(wrk_rps "$REL_REGISTRY/v1/releases/bench/upgrade-path?from=1.0.0&to=1.0.1")
say "load:  GET versions $listing req/s, GET upgrade-path $path req/s vs nginx static $static req/s -> $(python3 -c "print(f'{$static/$listing:.2f}')")x and $(python3 -c "print(f'{$static/$path:.2f}')")x slower (target <= 2x: $(met "$static/$listing <= 2 and $static/$path <= 2"))"

)
[[ $? -eq 0 ]] || say "load: FAILED (see the output above); the other parts go on"
set -e
fi

# limits: the same wrk runs against this registry and against one built from the commit
# before its limits (connection cap, timeouts, streamed bodies, load shedding, metrics by
# route; REL_BENCH_BASELINE, default 2e36a02), each on its own store holding the same two
# releases, in alternating rounds; the baseline binary is built once into target/.
if part limits; then
set +e
( pids=(); stops=(); trap cleanup EXIT; set -e  # only what this part starts
baseline=${REL_BENCH_BASELINE:-2e36a02}
base_rel=$root/target/bench-baseline/rel-$baseline
if [[ ! -x $base_rel ]]; then
  say "limits: building the baseline $baseline (once)"
  mkdir -p "$work/baseline-src" "$root/target/bench-baseline"
  git -C "$root" archive "$baseline" | tar -x -C "$work/baseline-src"
  (cd "$work/baseline-src" && CARGO_TARGET_DIR=$root/target/bench-baseline/build cargo build --release -q -p rel)
  cp "$root/target/bench-baseline/build/release/rel" "$base_rel"
fi
for which in new old; do
  bin=$rel; [[ $which == old ]] && bin=$base_rel
  "$bin" serve --listen 127.0.0.1:0 --store "file://$work/store-$which" 2> "$work/serve-$which.log" & pids+=($!)
  for _ in $(seq 100); do grep -q 'listening on' "$work/serve-$which.log" && break; sleep 0.1; done
  url=$(grep -o 'http://[0-9.:]*' "$work/serve-$which.log" | head -1)
  # Each build with a key of its own making (key files changed format since).
  "$bin" keygen "bench-$which" --out-dir "$work/keys-$which" --quiet
  REL_REGISTRY=$url REL_KEY=$work/keys-$which/bench-$which.key "$bin" push "$work/a" --quiet
  REL_REGISTRY=$url REL_KEY=$work/keys-$which/bench-$which.key "$bin" push "$work/b" --quiet
  eval "url_$which=$url"
done
wrk_rps() { wrk -t2 -c32 -d5s "$1" | awk '/Requests\/sec/ {print $2}'; }
median() { python3 -c "import statistics, sys; print(statistics.median(float(x) for x in sys.argv[1:]))" "$@"; }
declare -A rps
for q in "v1/releases/bench" "v1/releases/bench/upgrade-path?from=1.0.0&to=1.0.1"; do
  for which in new old; do rps[$which]=""; done
  for _ in 1 2 3; do
    for which in new old; do
      u=url_$which
      rps[$which]+=" $(wrk_rps "${!u}/$q")"
    done
  done
  # shellcheck disable=SC2086
  read -r new old < <(echo "$(median ${rps[new]}) $(median ${rps[old]})")
  say "limits: GET /$q $new req/s vs $old req/s before the limits ($baseline), medians of 3 -> $(python3 -c "print(f'{$new/$old:.2f}')")x (target >= 0.95x: $(met "$new/$old >= 0.95"))"
done
)
[[ $? -eq 0 ]] || say "limits: FAILED (see the output above); the other parts go on"
set -e
fi

# synth: two releases of 48 applications x 100 generated modules on kernel/stdlib/sasl and
# ERTS (about 5,150 modules); in the second, 5% of all modules changed, in as few
# applications as hold them (three), whose vsns are bumped, as a release usually changes
# the code of the applications its team works on. What a host
# running the first fetches to synthesise the upgrade (the plan's bytes), and the time to
# build it (rel build-upgrade: appups, relup, artifact) vs systools:make_relup given the
# appups, in an escript.
if part synth; then
set +e
( pids=(); stops=(); trap cleanup EXIT; set -e  # only what this part starts
gen=$work/gen
mkdir -p "$gen/src"
python3 - "$gen" <<'PY'
import os, random, sys
gen = sys.argv[1]
rng = random.Random(5)
# Each module carries a literal of its own random bytes, so that modules compress about as
# real ones do (OTP's beams about 1.2x), not 15x as near-identical generated ones would.
for a in range(48):
    for m in range(100):
        data = ",".join(str(rng.randrange(256)) for _ in range(rng.randrange(300, 1500)))
        with open(f"{gen}/src/g{a}_m{m}.erl", "w") as f:
            f.write(f"-module(g{a}_m{m}).\n-export([f/1, v/0, d/0]).\nf(X) -> {{X, {a}, {m}, lists:seq(1, {m % 7 + 1})}}.\nd() -> <<{data}>>.\nv() -> 1.\n")
PY
mkdir -p "$gen/ebin1"
(cd "$gen/src" && erlc -o "$gen/ebin1" ./*.erl)
cp -r "$gen/ebin1" "$gen/ebin2"
otp_modules=$(find "$otp"/lib/kernel-* "$otp"/lib/stdlib-* "$otp"/lib/sasl-* -name '*.beam' | wc -l)
changed=$(python3 - "$gen" "$otp_modules" <<'PY'
import sys, random
gen = sys.argv[1]
total = 48 * 100 + int(sys.argv[2])
picked = [(a, m) for a in range(48) for m in range(100)][: total * 5 // 100]
for a, m in picked:
    path = f"{gen}/src/g{a}_m{m}.erl"
    src = open(path).read().replace("v() -> 1.", "v() -> 2.")
    open(path, "w").write(src)
    print(f"g{a}_m{m}")
PY
)
(cd "$gen/src" && erlc -o "$gen/ebin2" $(for m in $changed; do echo "./$m.erl"; done))
bumped=$(for m in $changed; do echo "${m%%_*}"; done | sort -u)
gen_release() { # dir vsn ebin
  local dir=$1 vsn=$2 ebin=$3 apps="" a v
  mkdir -p "$dir/lib" "$dir/releases/$vsn"
  for lib in kernel stdlib sasl; do
    v=$(basename "$otp"/lib/$lib-* | sed "s/^$lib-//"); cp -r "$otp/lib/$lib-$v" "$dir/lib/"; apps+="{$lib,\"$v\"},"
  done
  cp -r "$otp/erts-$erts" "$dir/"
  for a in $(seq 0 47); do
    v=1.0.0; [[ $vsn != 1.0.0 ]] && grep -qx "g$a" <<< "$bumped" && v=1.0.1
    mkdir -p "$dir/lib/g$a-$v/ebin"
    cp "$ebin"/g${a}_m*.beam "$dir/lib/g$a-$v/ebin/"
    mods=$(cd "$dir/lib/g$a-$v/ebin" && ls | sed 's/\.beam$//' | paste -sd,)
    printf '{application,g%s,[{description,"generated"},{vsn,"%s"},{modules,[%s]},{applications,[kernel,stdlib]},{registered,[]}]}.\n' "$a" "$v" "$mods" > "$dir/lib/g$a-$v/ebin/g$a.app"
    apps+="{g$a,\"$v\"},"
  done
  printf '{release,{"gen","%s"},{erts,"%s"},[%s]}.\n' "$vsn" "$erts" "${apps%,}" > "$dir/releases/$vsn/gen.rel"
  cp "$dir/releases/$vsn/gen.rel" "$dir/releases/gen.rel"
  erl -noshell -pa "$dir"/lib/*/ebin -eval "case systools:make_script(\"$dir/releases/$vsn/gen\", [silent, {outdir, \"$dir/releases/$vsn\"}, no_warn_sasl]) of {ok, _, _} -> halt(); E -> io:format(\"~p~n\", [E]), halt(1) end."
  cp "$dir/releases/$vsn/gen.boot" "$dir/releases/$vsn/start.boot"
}
gen_release "$gen/r1" 1.0.0 "$gen/ebin1"
gen_release "$gen/r2" 1.0.1 "$gen/ebin2"
modules=$(find "$gen/r2/lib" -name '*.beam' | wc -l)
"$rel" push "$gen/r1" --quiet
"$rel" push "$gen/r2" --quiet
planned=$(curl -s "$REL_REGISTRY/v1/releases/gen/upgrade-path?from=1.0.0&to=1.0.1" | python3 -c "import json,sys; p=json.load(sys.stdin); print(p['strategy'], p['total_bytes'])")
size=$(find "$gen/r2" -type f -printf '%s\n' | awk '{s+=$1} END {print s}')
read -r strategy synth_bytes <<< "$planned"
say "synth: $modules modules ($(wc -w <<< "$changed") changed, in $(wc -w <<< "$bumped") applications), with ERTS: the $strategy step's chunks a host running 1.0.0 lacks are $synth_bytes of $size bytes = $(python3 -c "print(f'{100*$synth_bytes/$size:.2f}')")% (whole, uncompressed)"
# What goes over the wire: a host holding the first release's chunks fetches the second's
# others, as deltas against its own chunks (SPEC.md §4.2), or whole with --no-deltas.
whole=$("$rel" pull gen --version 1.0.0 -o "$gen/r1.tar" --cache-dir "$gen/host-cache" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["fetched_bytes"])')
cp -r "$gen/host-cache" "$gen/host-cache-plain"
plain=$("$rel" pull gen --version 1.0.1 -o "$gen/r2-plain.tar" --cache-dir "$gen/host-cache-plain" --no-deltas --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["fetched_bytes"])')
wire=$("$rel" pull gen --version 1.0.1 -o "$gen/r2.tar" --cache-dir "$gen/host-cache" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["fetched_bytes"])')
cmp -s "$gen/r2.tar" "$gen/r2-plain.tar" || { say "synth: the release fetched with deltas differs from the one fetched whole"; exit 1; }
# What deltas cost in time over loopback, where bytes are nearly free: the registry
# compresses each one, the host decompresses it against chunks it reads from its cache.
hyperfine -w 1 -r 10 -N --export-json "$work/deltas.json" \
  --prepare "rm -rf $gen/c && cp -r $gen/host-cache-plain $gen/c && rm -f $gen/c/$(sha256sum < "$gen/r2.tar" | cut -c1-64).*" \
  "$rel pull gen --version 1.0.1 -o $gen/r2-timed.tar --cache-dir $gen/c --quiet" \
  "$rel pull gen --version 1.0.1 -o $gen/r2-timed.tar --cache-dir $gen/c --quiet --no-deltas" > /dev/null
read -r with_deltas whole_chunks < <(mean "$work/deltas.json")
say "synth: the release compresses $(python3 -c "print(f'{$size/$whole:.2f}')")x as stored ($whole bytes of frames for $size)"
say "synth: over the wire, a host running 1.0.0 fetches $wire bytes (deltas) vs $plain (whole chunks) = $(python3 -c "print(f'{100*$wire/$size:.2f}')")% vs $(python3 -c "print(f'{100*$plain/$size:.2f}')")% of the release (target <= 2%: $(met "100*$wire/$size <= 2"))"
say "synth: that pull over loopback: $with_deltas s with deltas vs $whole_chunks s whole (means of 10)"
# systools needs the appups: rel's, in the new release's ebin folders.
"$rel" appup "$gen/r1" "$gen/r2" --out "$gen/appups" --quiet
for f in "$gen/appups"/*.appup; do a=$(basename "$f" .appup); cp "$f" "$gen/r2"/lib/$a-*/ebin/; done
cat > "$work/relup.escript" <<'ESCRIPT'
#!/usr/bin/env escript
main([From, To, Out]) ->
    Paths = filelib:wildcard(From ++ "/lib/*/ebin") ++ filelib:wildcard(To ++ "/lib/*/ebin"),
    {ok, _, _, _} = systools:make_relup(To ++ "/releases/1.0.1/gen", [From ++ "/releases/1.0.0/gen"],
                                        [From ++ "/releases/1.0.0/gen"], [{path, Paths}, {outdir, Out}, silent]).
ESCRIPT
mkdir -p "$gen/out"
escript_relup="escript $work/relup.escript $gen/r1 $gen/r2 $gen/out"
read -r esc_relup rel_build ratio least most < <(paired 10 true "$escript_relup" \
  true "$rel build-upgrade gen --from $gen/r1 --to $gen/r2 -o $gen/out/up.tar --quiet")
say "synth: building the upgrade from the two release folders: rel build-upgrade (appups, relup, artifact; every module of both read) $rel_build s vs systools:make_relup (relup only, appups given) $esc_relup s (medians of 10 pairs) -> ${ratio}x faster (pairs: $least to $most)"
# The same upgrade as a host builds it: both releases from the registry, through a cache that
# holds their chunks (what a host running 1.0.0 has once it fetched 1.0.1), verified on the
# way. Three cases: the first time (neither release's snapshot kept, SPEC.md §8.5), the first
# upgrade to a release (the running one's snapshot kept: it was read when the host went to
# it), and both kept (the running release's, and the target's once read, by an earlier
# synthesis or a dry run).
snap1=$gen/host-cache/$(sha256sum < "$gen/r1.tar" | cut -c1-64).snapshot
snap2=$gen/host-cache/$(sha256sum < "$gen/r2.tar" | cut -c1-64).snapshot
host_up="$rel build-upgrade gen --from gen@1.0.0 --to gen@1.0.1 -o $gen/out/host.tar --cache-dir $gen/host-cache --quiet"
read -r esc_none host_none ratio_none least_none most_none < <(paired 10 true "$escript_relup" "rm -f $snap1 $snap2" "$host_up")
read -r esc_one host_one ratio_one least_one most_one < <(paired 10 true "$escript_relup" "rm -f $snap2" "$host_up")
[[ -f $snap1 && -f $snap2 ]] || { say "synth: the host kept no snapshots"; exit 1; }
read -r esc_both host_both ratio_both least_both most_both < <(paired 10 true "$escript_relup" true "$host_up")
"$rel" build-upgrade gen --from gen@1.0.0 --to gen@1.0.1 -o "$gen/out/host-read.tar" --cache-dir "$gen/host-cache-plain" --quiet
cmp -s "$gen/out/host.tar" "$gen/out/host-read.tar" || { say "synth: the upgrade built from kept snapshots differs from the one built without"; exit 1; }
say "synth: on a host, neither release's snapshot kept (both read from cached chunks): $host_none s vs systools $esc_none s -> ${ratio_none}x (pairs: $least_none to $most_none)"
say "synth: on a host, the running release's snapshot kept (the target read): $host_one s vs systools $esc_one s -> ${ratio_one}x (pairs: $least_one to $most_one)"
say "synth: on a host, both snapshots kept: $host_both s vs systools $esc_both s (medians of 10 pairs) -> ${ratio_both}x faster (pairs: $least_both to $most_both) (target <= 1 s and >= 5x: $(met "$host_both <= 1 and $ratio_both >= 5"); <= 1 s in every case: $(met "$host_none <= 1 and $host_one <= 1"))"
[[ -n "${REL_BENCH_KEEP:-}" ]] || rm -rf "$gen"
)
[[ $? -eq 0 ]] || say "synth: FAILED (see the output above); the other parts go on"
set -e
fi

# step: a hot upgrade step and its rollback on the mix fixture, rel reaching the node by the
# distribution protocol (the default) vs through `bin/shop rpc` (a VM started per call, which
# is what a mix host had before).
if part step; then
set +e
( pids=(); stops=(); trap cleanup EXIT; set -e  # only what this part starts
fixtures/build.sh >/dev/null
mapfile -t sv < fixtures/out/shop/VERSIONS
for v in "${sv[@]:0:2}"; do "$rel" push "fixtures/out/shop/shop-$v.tar.gz" --quiet; done
"$rel" build-upgrade shop --from "${sv[0]}" --to "${sv[1]}" --push --quiet
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
shop_host() { # dir access(dist|rpc)
  local dir=$1 hport eport envs
  hport=$(free_port) eport=$(free_port)
  "$rel" install shop --version "${sv[0]}" --root "$dir" --quiet
  envs="ERL_EPMD_PORT=$eport ERL_EPMD_ADDRESS=127.0.0.1 RELEASE_NODE=shop-$hport@127.0.0.1 RELEASE_TMP=$dir/tmp SHOP_PORT=$hport HOME=$dir"
  if [[ $2 == dist ]]; then
    printf '[node]\nname = "shop-%s@127.0.0.1"\nepmd_port = %s\n' "$hport" "$eport" > "$dir/rel-host.toml"
  else
    local quoted
    quoted=$(printf '"%s", ' env $envs bin/shop rpc)
    printf '[node]\neval = [%s"{expr_elixir}"]\n' "$quoted" > "$dir/rel-host.toml"
  fi
  env $envs "$dir/bin/shop" daemon
  stops+=("env $envs $dir/bin/shop stop")
  for _ in $(seq 300); do curl -sf "http://127.0.0.1:$hport/" >/dev/null && break; sleep 0.1; done
}
shop_host "$work/shop-dist" dist
shop_host "$work/shop-rpc" rpc
cycle() { echo "$rel upgrade shop --to ${sv[1]} --root $1 --quiet && $rel rollback shop --to ${sv[0]} --root $1 --quiet"; }
hyperfine -r 5 -w 1 --export-json "$work/step.json" "$(cycle "$work/shop-dist")" "$(cycle "$work/shop-rpc")" > /dev/null
read -r by_dist by_rpc < <(mean "$work/step.json")
say "step:  mix release, one upgrade + its rollback: $by_dist s by distribution vs $by_rpc s through bin/shop rpc (means of 5) -> $(python3 -c "print(f'{$by_rpc/$by_dist:.1f}')")x faster; per step $(python3 -c "print(f'{$by_dist/2:.2f}')") s vs $(python3 -c "print(f'{$by_rpc/2:.2f}')") s (target per step <= 0.3 s: $(python3 -c "print('met' if $by_dist/2 <= 0.3 else 'NOT MET')"))"
)
[[ $? -eq 0 ]] || say "step: FAILED (see the output above); the other parts go on"
set -e
fi

# live: what an upgrade does to the requests a node serves. Each fixture app (shop: mix,
# ledger: rebar3) serves wrk (2 threads, 8 connections, closed loop) for 8 s without
# upgrades, then for 8 s during which it is upgraded and rolled back live four times
# (stored upgrades, as CI pushes them). Reported: failed requests, and p50 / p99 / max
# latency of each window with their ratio; the target is 0 failed, and p99 during upgrades
# at most 2x the quiet one and at most 50 ms above it. wrk is closed-loop: a stall delays the
# next requests rather than adding to the percentiles, so the max shows the longest pause.
if part live; then
set +e
( pids=(); stops=(); trap cleanup EXIT; set -e  # only what this part starts
fixtures/build.sh >/dev/null
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
live_host() { # app dir -> sets live_port
  local app=$1 dir=$2 hport eport envs vs
  mapfile -t vs < "fixtures/out/$app/VERSIONS"
  hport=$(free_port) eport=$(free_port)
  if [[ $app == shop ]]; then
    "$rel" install shop --version "${vs[0]}" --root "$dir" --quiet
    envs="ERL_EPMD_PORT=$eport ERL_EPMD_ADDRESS=127.0.0.1 RELEASE_NODE=shop-$hport@127.0.0.1 RELEASE_TMP=$dir/tmp SHOP_PORT=$hport HOME=$dir"
    printf '[node]\nname = "shop-%s@127.0.0.1"\nepmd_port = %s\n' "$hport" "$eport" > "$dir/rel-host.toml"
  else
    printf '[{ledger, [{port, %s}]}].\n' "$hport" > "$dir.sys.config"
    "$rel" install ledger --version "${vs[0]}" --root "$dir" --sys-config "$dir.sys.config" --quiet
    envs="ERL_EPMD_PORT=$eport ERL_EPMD_ADDRESS=127.0.0.1 LEDGER_NODE=ledger-$hport@127.0.0.1 LEDGER_COOKIE=bench RUNNER_LOG_DIR=$dir/log PIPE_DIR=$dir/pipes/ HOME=$dir"
    printf '[node]\nepmd_port = %s\n' "$eport" > "$dir/rel-host.toml"
  fi
  env $envs "$dir/bin/$app" daemon
  stops+=("env $envs $dir/bin/$app stop")
  for _ in $(seq 300); do curl -sf "http://127.0.0.1:$hport/" >/dev/null && break; sleep 0.1; done
  live_port=$hport
}
wrk_window() { # port seconds -> "failed p50 p99 max" (ms)
  wrk -t2 -c8 -d"$2"s --latency "http://127.0.0.1:$1/" | python3 -c '
import re, sys
t = sys.stdin.read()
def ms(v):
    n, u = re.match(r"([\d.]+)(us|ms|s)", v).groups()
    return round(float(n) * {"us": 0.001, "ms": 1, "s": 1000}[u], 3)
pct = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", t, re.M))
mx = re.search(r"Latency\s+\S+\s+\S+\s+(\S+)", t).group(1)
errs = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", t))
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
reqs = re.search(r"(\d+) requests in", t).group(1)
print(errs + (int(non2xx.group(1)) if non2xx else 0), reqs, ms(pct["50"]), ms(pct["99"]), ms(mx))'
}
for app in shop ledger; do
  mapfile -t vs < "fixtures/out/$app/VERSIONS"
  for v in "${vs[@]:0:2}"; do "$rel" push "fixtures/out/$app/$app-$v.tar.gz" --quiet; done
  "$rel" build-upgrade "$app" --from "${vs[0]}" --to "${vs[1]}" --push --quiet
  live_host "$app" "$work/live-$app"
  read -r q_failed q_reqs q_p50 q_p99 q_max < <(wrk_window "$live_port" 8)
  ( sleep 1
    for _ in 1 2 3 4; do
      "$rel" upgrade "$app" --to "${vs[1]}" --root "$work/live-$app" --json > "$work/live-$app.step.json"
      "$rel" rollback "$app" --to "${vs[0]}" --root "$work/live-$app" --quiet
      sleep 0.5
    done ) &
  cycles=$!
  read -r u_failed u_reqs u_p50 u_p99 u_max < <(wrk_window "$live_port" 8)
  wait "$cycles"
  phases=$(python3 -c "import json; s=json.load(open('$work/live-$app.step.json'))['steps'][0]['phases']; print(', '.join(f\"{p['phase']} {p['ms']:.0f} ms\" for p in s), '=', f\"{sum(p['ms'] for p in s):.0f} ms\")")
  met=$(python3 -c "print('met' if $u_failed == 0 and $u_p99 <= 2 * $q_p99 and $u_p99 <= $q_p99 + 50 else 'NOT MET')")
  say "live:  $app: quiet $q_reqs requests, $q_failed failed, p50 $q_p50 ms, p99 $q_p99 ms, max $q_max ms; during 4 upgrades + rollbacks $u_reqs requests, $u_failed failed, p50 $u_p50 ms, p99 $u_p99 ms, max $u_max ms -> p99 x$(python3 -c "print(f'{$u_p99/$q_p99:.2f}')") (target 0 failed, p99 <= 2x and <= +50 ms: $met)"
  say "live:  $app: one step: $phases"
done
)
[[ $? -eq 0 ]] || say "live: FAILED (see the output above); the other parts go on"
set -e
fi

# path query (criterion; prints its own report)
if part path; then
  cargo bench -q -p rel-format --bench upgrade_path -- --noplot 2>/dev/null | grep -E 'time:|upgrade_path' | tee -a "$results" \
    || say "path: FAILED; the other parts go on"
fi
say "results in $results"
