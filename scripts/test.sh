#!/usr/bin/env bash
# The one command that runs the whole test suite, locally and in CI (.ci/run execs it).
# Steps run in order and stop at the first failure; each prints a header and its time.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

step() {
  local name=$1 start=$SECONDS
  shift
  printf '\n===== %s\n' "$name"
  if "$@"; then
    printf '===== %s: ok (%ds)\n' "$name" $((SECONDS - start))
  else
    printf '===== %s: FAILED (%ds)\n' "$name" $((SECONDS - start))
    exit 1
  fi
}

# engine must stay free of Redis and Python; python must stay free of Redis (DESIGN §2).
# Runs inside `if` (errexit is off there), so every failure is returned explicitly.
check_dependency_direction() {
  local tree ok=0
  tree=$(cargo tree -p gearshift-engine -e normal) || return 1
  if grep -E 'redis-module|pyo3' <<<"$tree"; then
    echo "gearshift-engine must not depend on redis-module or pyo3 (see the lines above)"
    ok=1
  fi
  tree=$(cargo tree -p gearshift-python -e normal) || return 1
  if grep -E 'redis-module' <<<"$tree"; then
    echo "gearshift-python must not depend on redis-module (see the lines above)"
    ok=1
  fi
  return "$ok"
}

# No import cycles between the files of a crate, no import from a higher layer of module/src
# (scripts/deps.py, which first checks itself on a planted cycle and upward `use`).
check_deps() {
  "$PYTHON" scripts/deps.py --selftest && "$PYTHON" scripts/deps.py
}

# Every atomic comes from the engine's `sync` shim, so loom can model it (DESIGN §10); in the
# engine (the crate loom models) so do Arc, Mutex/MutexGuard, Condvar, RwLock and threads
# (std::thread, bar sleep). Paths are matched on whole files, so multi-line `use {..}` count.
check_atomics_via_shim() {
  local hits ok=0
  hits=$(grep -rn 'std::sync::atomic' engine/src module/src python/src --include='*.rs' |
    grep -v '^engine/src/sync.rs:') || true
  if [[ -n $hits ]]; then
    printf '%s\n' "$hits"
    echo "use engine::sync::{Atomic…} instead of std::sync::atomic (see the lines above)"
    ok=1
  fi
  hits=$(find engine/src -name '*.rs' ! -path engine/src/sync.rs -print0 | sort -z |
    xargs -0 perl -0777 -ne '
      while (/std::sync::(\{[^}]*\}|\w+)|std::thread\b(?!::sleep\b)(::\w+)?/g) {
        my ($at, $path, $names) = ($-[0], $&, $1);
        next if defined $names && $names !~ /\b(Arc|Mutex|MutexGuard|Condvar|RwLock)\b/;
        my $line = 1 + (substr($_, 0, $at) =~ tr/\n//);
        $path =~ s/\s+/ /g;
        print "$ARGV:$line: $path\n";
      }') || return 1
  if [[ -n $hits ]]; then
    printf '%s\n' "$hits"
    echo "in the engine, use crate::sync::{Arc, Mutex, Condvar, thread} instead of std's (see the lines above)"
    ok=1
  fi
  return "$ok"
}

# Every reply, error and log line goes through the module's own path: the crate's
# `Context::reply` mangles non-ASCII error text (and aborts redis-server on U+0100). So only
# redis/ffi/command.rs may name a textual RedisError, every command in lib.rs's table is wrapped in
# `command!`, and only redis/ffi/log.rs writes to the Redis log.
check_replies_via_trampoline() {
  local hits ok=0
  hits=$(grep -rnE 'RedisError::(String|Str)\b' module/src --include='*.rs' |
    grep -v '^module/src/redis/ffi/command.rs:') || true
  if [[ -n $hits ]]; then
    printf '%s\n' "$hits"
    echo "return crate::redis::ffi::command::error(..) instead of RedisError::String/Str (see the lines above)"
    ok=1
  fi
  hits=$(grep -nE '^\s*\["rg\.' module/src/lib.rs | grep -vE 'command!\(|internal!\(|code!\(') || true
  if [[ -n $hits ]]; then
    printf '%s\n' "$hits"
    echo "wrap every command handler in command!(..) in module/src/lib.rs (see the lines above)"
    ok=1
  fi
  # Internal commands run code from their arguments: only replication and the AOF may call them.
  hits=$(grep -nE '^\s*\["rg\.inner' module/src/lib.rs | grep -v 'internal!(') || true
  if [[ -n $hits ]]; then
    printf '%s\n' "$hits"
    echo "wrap internal (rg.inner*) commands in internal!(..) (see the lines above)"
    ok=1
  fi
  # The crate's log helpers use the message as a printf format: '%s' in user text crashed Redis.
  hits=$(grep -rnE 'log_(warning|notice|debug|verbose)\(|logging::' module/src --include='*.rs' |
    grep -v '^module/src/redis/ffi/log.rs:') || true
  if [[ -n $hits ]]; then
    printf '%s\n' "$hits"
    echo "log through crate::redis::ffi::log, not redis-module's log helpers (see the lines above)"
    ok=1
  fi
  return "$ok"
}

# Every Redis timer is created by timers::create, which bounds the period: redis-module
# panics on a period whose milliseconds do not fit an i64 (an abort inside a callback).
check_timers_via_create() {
  local hits
  hits=$(grep -rn 'create_timer(' module/src --include='*.rs' | grep -v '^module/src/redis/timers.rs:') || true
  if [[ -n $hits ]]; then
    printf '%s\n' "$hits"
    echo "create timers with crate::redis::timers::create (see the lines above)"
    return 1
  fi
}

# loom gets its own target dir: --cfg loom changes RUSTFLAGS, which would otherwise throw away
# the main build cache. Bounded preemptions keep the model checker's run time sane.
loom_tests() {
  RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR="$ROOT/target/loom" \
    LOOM_MAX_PREEMPTIONS=${LOOM_MAX_PREEMPTIONS:-2} \
    cargo test -p gearshift-engine --release --lib loom
}

# The cargo-fuzz targets (fuzz/run.sh), 10 s each, when rustup has or can fetch a nightly
# toolchain (libFuzzer's instrumentation needs one). Without one, or when this nightly cannot
# build the targets, the step says so and passes: the same properties ran on stable above.
# A crashing input fails it.
fuzz_quick() {
  if ! cargo +nightly --version >/dev/null 2>&1; then
    timeout 300 rustup toolchain install nightly --profile minimal >/dev/null 2>&1 || true
  fi
  if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "SKIPPED: no nightly toolchain (rustup could not install one); fuzz targets not run"
    return 0
  fi
  local rc=0
  bash fuzz/run.sh "${GEARSHIFT_FUZZ_SECS:-10}" || rc=$?
  if [[ $rc == 3 ]]; then
    echo "SKIPPED: this nightly cannot build the fuzz targets; fuzz targets not run"
    return 0
  fi
  return "$rc"
}

# The path a newcomer on a stock Debian 12 takes: the module built against Debian's python3
# (PEP 668, libpython from python3-dev), started by server.sh on a port of its own, and a smoke
# set of the e2e tests run against it with the test tools from .run/venv. Its own target dir
# keeps the main build cache (a second pyo3) intact.
DEBIAN_PYTHON=/usr/bin/python3
debian_python_check() {
  local port=6390 target=$ROOT/target/debian-python status=0
  (
    export GEARSHIFT_PYTHON=$DEBIAN_PYTHON CARGO_TARGET_DIR=$target
    unset PYO3_PYTHON GEARSHIFT_MODULE
    bash scripts/server.sh --port "$port" || exit 1
    source scripts/lib.sh
    ensure_pip_packages
    [[ $(redis-cli -p "$port" RG.PYEXECUTE "import cloudpickle; GB('ShardsIDReader').run()") == 1 ]] ||
      { echo "the Debian-python server cannot import cloudpickle"; exit 1; }
    GEARSHIFT_MODULE=$target/release/libgearshift.so \
      "$TEST_PYTHON" -m pytest -q tests/e2e/test_seed.py tests/e2e/test_requirements.py
  ) || status=1
  bash scripts/server.sh stop --port "$port" || true
  return "$status"
}

main() {
  local total=$SECONDS
  step "setup: apt packages" ensure_apt_packages
  step "setup: pip packages" ensure_pip_packages
  pin_python
  echo "PYO3_PYTHON=$PYO3_PYTHON"
  step "cargo fmt" cargo fmt --all --check
  step "cargo clippy" cargo clippy --workspace --all-targets -- -D warnings
  step "dependency direction" check_dependency_direction
  step "import cycles and layers" check_deps
  step "atomics, locks and threads via the sync shim" check_atomics_via_shim
  step "replies via the command trampoline" check_replies_via_trampoline
  step "timers via timers::create" check_timers_via_create
  step "cargo test" cargo test --workspace
  # Issue #13: the pooled shuffle send paths allocate close to nothing per batch, a received key
  # batch a handful (read in place), a received Datum batch about 9 per record (bounded loosely).
  step "allocations per batch (quick)" \
    cargo test -p gearshift-benches --bench alloc_count -- --quick --max-send-allocs 1 \
    --max-key-send-allocs 1 --max-key-recv-allocs 10 --max-datum-recv-allocs 2560 --max-bus-allocs 1
  step "loom" loom_tests
  step "build module" cargo build --release -p gearshift
  step "e2e (pytest)" "$TEST_PYTHON" -m pytest -q tests/e2e
  # Quick mode (docs/reliability.md): the command fuzzer and issue 10's hostile cases. Every
  # test bounds its own waits; the outer timeout only guards the step against a stuck runner.
  step "reliability (quick)" timeout -k 10 300 "$TEST_PYTHON" -m pytest -q -rxX tests/reliability
  step "perf (quick)" "$TEST_PYTHON" perf/run.py --quick --no-plot
  step "fuzz targets (quick)" fuzz_quick
  if [[ $PYTHON != "$DEBIAN_PYTHON" && -x $DEBIAN_PYTHON ]]; then
    step "Debian's python3: build, server.sh, smoke" debian_python_check
  fi
  printf '\n===== all steps passed (%ds)\n' $((SECONDS - total))
}

main "$@"
