#!/usr/bin/env bash
# Runs rel's fuzz targets (fuzz/, cargo-fuzz and libFuzzer) for SECONDS each, default 60:
#   scripts/fuzz.sh [SECONDS] [TARGET...]      targets: etf beam terms tar pack signed version delta snapshot
# Needs a nightly toolchain (rustup toolchain install nightly); installs cargo-fuzz into
# target/tools. Each corpus (target/fuzz/corpus/TARGET) is seeded from the fixture releases
# (built first if missing), SPEC.md's examples and a few hand-made inputs, and keeps what the
# fuzzer finds between runs. A crash is saved under target/fuzz/artifacts/TARGET/ and the run
# stops with its path; replay it with `cargo +nightly fuzz run --fuzz-dir fuzz TARGET FILE`.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
secs=${1:-60}
shift || true
targets=("$@")
((${#targets[@]})) || targets=(etf beam terms tar pack signed version delta snapshot)
toolchain=${REL_FUZZ_TOOLCHAIN:-nightly}
tools=${REL_TOOLS:-$root/target/tools}
work=$root/target/fuzz
export CARGO_TARGET_DIR=$work/build

rustup run "$toolchain" rustc --version >/dev/null 2>&1 \
  || { echo "fuzz: the $toolchain toolchain is required (rustup toolchain install $toolchain)" >&2; exit 1; }
if [[ ! -x $tools/cargo-fuzz/bin/cargo-fuzz ]]; then
  echo "fuzz: installing cargo-fuzz into $tools/cargo-fuzz"
  cargo install --quiet --locked --root "$tools/cargo-fuzz" cargo-fuzz
fi
export PATH=$tools/cargo-fuzz/bin:$PATH
[[ -d fixtures/out/shop/build ]] || fixtures/build.sh

# Seeds: at most $2 files matching find's arguments after $1, copied into corpus $1.
seed_files() { # target max find-args...
  local dir=$work/corpus/$1 max=$2; shift 2
  mkdir -p "$dir"
  { find fixtures/out "$@" -type f -size -256k -print0 || true; } | head -z -n "$max" \
    | while IFS= read -r -d '' f; do cp "$f" "$dir/seed-$(sha256sum < "$f" | cut -c1-16)"; done
}
seed_files beam 200 -name '*.beam'
seed_files terms 200 \( -name '*.rel' -o -name '*.app' -o -name 'sys.config' -o -name '*.appup' -o -name '*.extra' \)
erl -noshell -noinput -eval '
  Dir = "'"$work"'/corpus/etf",
  ok = filelib:ensure_path(Dir),
  Terms = [atom, <<"bin">>, "string", 1, -1, 1 bsl 70, -(1 bsl 70), 3.5, [], {}, #{a => [1 | 2]},
           {release, {"demo", "0.1.0"}, {erts, "13.1"}, [{kernel, "8.5"}]}, self(), make_ref(),
           fun lists:map/2, [{n, 1.0e300}, 1.0e-300, <<1:3>>], utf8_atom_é],
  lists:foreach(fun({I, T}) ->
      ok = file:write_file(filename:join(Dir, "seed-" ++ integer_to_list(I)), term_to_binary(T))
    end, lists:zip(lists:seq(1, length(Terms)), Terms)),
  halt().'
python3 - "$work/corpus" "$root/SPEC.md" <<'PY'
import hashlib, io, json, os, re, sys, tarfile
corpus, spec = sys.argv[1], open(sys.argv[2]).read()
def seed(target, data):
    d = os.path.join(corpus, target); os.makedirs(d, exist_ok=True)
    open(os.path.join(d, "seed-" + hashlib.sha256(data).hexdigest()[:16]), "wb").write(data)
# Small release-shaped archives: plain, gzip; a symlink, a long name, a directory.
for gz in (False, True):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if gz else "w", format=tarfile.GNU_FORMAT) as t:
        for name, body in [("releases/0.1.0/demo.rel", b'{release,{"demo","0.1.0"},{erts,"13.1"},[]}.\n'),
                           ("lib/demo-0.1.0/ebin/demo.app", b"{application,demo,[]}.\n"),
                           ("lib/demo-0.1.0/priv/" + "x" * 200 + "/f", b"long")]:
            i = tarfile.TarInfo(name); i.size = len(body); t.addfile(i, io.BytesIO(body))
        i = tarfile.TarInfo("bin/demo"); i.type = tarfile.SYMTYPE; i.linkname = "../releases/0.1.0/demo"
        t.addfile(i)
        i = tarfile.TarInfo("erts-13.1/bin"); i.type = tarfile.DIRTYPE; t.addfile(i)
    seed("tar", buf.getvalue())
# Packs: the cut byte, then the magic and records (digest, length, frame size, frame).
for frames in ([b"a" * 16], [b"b" * 40, b"c" * 3]):
    body = b"RELPACK1" + b"".join(hashlib.sha256(f).digest() + len(f).to_bytes(4, "big")
                                  + len(f).to_bytes(4, "big") + f for f in frames)
    seed("pack", bytes([128]) + body)
# The signed envelope and key of SPEC.md's examples, and a channel pointer's shape.
m = re.search(r"<!-- spec-example: envelope -->\s*```[a-z]*\n(.*?)```", spec, re.S)
seed("signed", m.group(1).encode())
seed("signed", json.dumps({"signatures": ["ci:" + "A" * 86 + "=="], "signed": {
    "channel": "production", "created": "2026-01-01T00:00:00Z", "expires": "2030-01-01T00:00:00Z",
    "name": "demo", "registry": "0" * 32, "schema": "rel-channel-v1", "sequence": 3,
    "version": "0.1.0+20240101-1000-49ab6e0"}}, separators=(",", ":")).encode())
for text in ["0.1.0+20240101-1000-49ab6e0\n0.1.0+20240101-381-eddcacc", "1.0.0-rc.1\n1.0.0",
             "2026-02-28T23:59:59Z", "0.0.1+20171116-381-eddcacc\n10.0.0-alpha.beta+build.7"]:
    seed("version", text.encode())
# Deltas: the frame `zstd --patch-from` makes of fuzz/bodies.rs's delta case (the base as
# its prefix, as the registry compresses).
base = bytes(i * 31 % 251 for i in range(6000))
target = base[:100] + b"changed!" + base[108:] + b"and more at the end"
d = os.path.join(corpus, "delta"); os.makedirs(d, exist_ok=True)
open(os.path.join(d, "base"), "wb").write(base); open(os.path.join(d, "target"), "wb").write(target)
PY
if command -v zstd >/dev/null; then
  zstd -q -f --patch-from="$work/corpus/delta/base" "$work/corpus/delta/target" -o "$work/corpus/delta/seed-patch"
fi
rm "$work/corpus/delta/base" "$work/corpus/delta/target"
# Kept snapshots: the body of the demo fixture's, which only rel-format writes.
mkdir -p "$work/corpus/snapshot"
REL_FUZZ_SEEDS=$work/corpus/snapshot CARGO_TARGET_DIR=$root/target \
  cargo test --quiet -p rel-format --test it fuzz_seeds::kept_snapshots > /dev/null

for t in "${targets[@]}"; do
  mkdir -p "$work/artifacts/$t"
  echo "fuzz: $t for ${secs}s ($(find "$work/corpus/$t" -type f | wc -l) inputs in its corpus)"
  if ! cargo "+$toolchain" fuzz run --fuzz-dir fuzz "$t" "$work/corpus/$t" -- \
    -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$work/artifacts/$t/" > "$work/$t.log" 2>&1; then
    tail -n 40 "$work/$t.log" >&2
    echo "fuzz: $t FAILED (the input is in $work/artifacts/$t/, the log in $work/$t.log)" >&2
    exit 1
  fi
  grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|stat::new_units_added)' "$work/$t.log" | tr '\n' ' '
  echo
done
