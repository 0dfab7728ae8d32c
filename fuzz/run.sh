#!/usr/bin/env bash
# Builds the fuzz targets with nightly and libFuzzer's instrumentation (the flags cargo-fuzz
# passes, so cargo-fuzz need not be installed) and runs each for a bounded time.
#   bash fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]   (default: 30 s, every target)
# A crash leaves its input in fuzz/artifacts/<target>/ and stops the script (exit 1); a
# failed nightly build exits 3 (scripts/test.sh then reports the step skipped).
# Corpora grow in fuzz/corpus/<target>/ (not committed). scripts/test.sh runs it for 10 s per
# target when a nightly toolchain is there; the same properties run on stable in
# engine/tests/*props*.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
secs=${1:-30}
shift || true
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
  mapfile -t targets < <(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | grep -v '^gearshift-fuzz$')
fi
triple=$(rustc -vV | sed -n 's/^host: //p')
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Zsanitizer=address \
-Cdebug-assertions -Coverflow-checks"
# --target keeps the flags off build scripts and proc macros.
cargo +nightly build --release --target "$triple" --bins || exit 3
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  echo "== $t (${secs}s)"
  "target/$triple/release/$t" -max_total_time="$secs" -max_len=4096 -rss_limit_mb=2048 \
    -artifact_prefix="artifacts/$t/" -print_final_stats=1 "corpus/$t" 2>&1 |
    grep -E '^(#[0-9]+ +DONE|Done|stat::number_of_executed_units|stat::peak_rss_mb)|ERROR|panicked|SUMMARY' ||
    true
  if compgen -G "artifacts/$t/crash-*" >/dev/null || compgen -G "artifacts/$t/oom-*" >/dev/null; then
    echo "fuzz target $t found a failing input: $(ls "artifacts/$t")"
    exit 1
  fi
done
