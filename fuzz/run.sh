#!/usr/bin/env bash
# Fuzz the archive checks with cargo fuzz (libFuzzer + AddressSanitizer) for a few minutes.
# Not run in CI. Needs a nightly toolchain (rustup toolchain install nightly) and cargo-fuzz
# (installed on first use). Crashes land in fuzz/artifacts/TARGET/; turn each into a
# regression test (rust/extract.rs tests or tests/test_extract_fuzz_regressions.py).
#
# usage: fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]      (default: 120 s; names archive)
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-120}
shift || true
targets=("$@")
((${#targets[@]})) || targets=(names archive)

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1}
python3 seeds.py corpus
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  echo "== $t: ${secs}s" >&2
  # -rss_limit_mb: a decoder that allocated what a hostile header asks for would show here.
  nice cargo +nightly fuzz run "$t" "corpus/$t" -- \
    -max_total_time="$secs" -timeout=30 -rss_limit_mb=3072 -max_len=65536 -print_final_stats=1
done
