# Shared by scripts/server.sh and scripts/test.sh (sourced, not executed).
# Both must work on a fresh Debian 12 box, so the setup lives here once.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUN_DIR=$ROOT/.run
# GEARSHIFT_PYTHON picks the interpreter the module embeds (default: the first python3 on PATH,
# a pyenv build or Debian's /usr/bin/python3). CARGO_TARGET_DIR moves the build, as for cargo.
PYTHON=${GEARSHIFT_PYTHON:-python3}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
# GEARSHIFT_MODULE points at another build of the module (the e2e tests honour it too).
MODULE_SO=${GEARSHIFT_MODULE:-$TARGET_DIR/release/libgearshift.so}
# build-essential: rustc links with cc; python3-dev: libpython for Debian's python3;
# python3-venv: REQUIREMENTS creates a venv (Debian leaves ensurepip out of python3);
# prometheus-redis-exporter: tests/e2e/test_prometheus.py scrapes INFO rg through it.
APT_PACKAGES=(redis-server redis-tools libclang-dev build-essential python3-dev python3-venv
  prometheus-redis-exporter)

# A non-login shell (CI) may lack the rustup and pyenv paths; add them only if absent.
for dir in "$HOME/.cargo/bin" "$HOME/.pyenv/shims"; do
  if [[ -d $dir && ":$PATH:" != *":$dir:"* ]]; then PATH=$dir:$PATH; fi
done
export PATH

log() { printf '==> %s\n' "$*" >&2; }

# apt-get is slow and needs the network: only touch it when something is missing.
# Arguments name other packages to ensure instead of APT_PACKAGES.
ensure_apt_packages() {
  local pkg missing=() pkgs=("${APT_PACKAGES[@]}")
  (($# == 0)) || pkgs=("$@")
  for pkg in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  ((${#missing[@]} == 0)) && return 0
  local sudo=()
  ((EUID == 0)) || sudo=(sudo)
  log "installing apt packages: ${missing[*]}"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
}

# The toolchain cannot come from apt (Debian's rustc is too old for our crates): say how to get it.
require_rust() {
  command -v cargo >/dev/null 2>&1 && return 0
  log "error: Rust (cargo) is not installed. Install it, then open a new shell:"
  log "  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y"
  return 1
}

# Debian's python3 refuses `pip install` outside a venv (PEP 668, the EXTERNALLY-MANAGED marker).
externally_managed() {
  "$PYTHON" -c 'import os, sys, sysconfig
sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")) else 1)'
}

# cloudpickle is a runtime dependency: cluster runs ship their callbacks with it (as 1.2 does).
# pyarrow is optional for users (mapBatch(format='arrow')) but not for the tests: without it the
# Arrow e2e tests would skip, and under CI=true they fail instead.
#
# On an externally managed python3 (Debian's), the embedded interpreter gets cloudpickle from
# apt (python3-cloudpickle; Debian 12 has no pyarrow package, so format='arrow' stays off) and
# the test tools live in a venv, .run/venv, that also sees the system's packages. TEST_PYTHON
# is the interpreter that runs the tests either way.
PIP_PACKAGES=(redis hiredis pytest cloudpickle pyarrow mypy)
TEST_VENV=$RUN_DIR/venv
TEST_PYTHON=$PYTHON
ensure_pip_packages() {
  if externally_managed; then
    ensure_debian_python_packages
    return
  fi
  "$PYTHON" -c 'import redis, hiredis, pytest, cloudpickle, pyarrow, mypy' 2>/dev/null && return 0
  log "installing pip packages: ${PIP_PACKAGES[*]}"
  "$PYTHON" -m pip install -q --disable-pip-version-check --root-user-action=ignore \
    "${PIP_PACKAGES[@]}" </dev/null
}

ensure_debian_python_packages() {
  ensure_apt_packages python3-cloudpickle
  TEST_PYTHON=$TEST_VENV/bin/python
  if [[ ! -x $TEST_PYTHON ]]; then
    log "creating the test tools' venv: $TEST_VENV"
    "$PYTHON" -m venv --system-site-packages "$TEST_VENV"
  fi
  "$TEST_PYTHON" -c 'import redis, hiredis, pytest' 2>/dev/null && return 0
  log "installing pip packages into $TEST_VENV: redis hiredis pytest"
  "$TEST_PYTHON" -m pip install -q --disable-pip-version-check redis hiredis pytest </dev/null
}

# pyo3 links against whatever PYO3_PYTHON names. A pyenv shim path is not stable, so pin the
# real interpreter; every build (ours and the lead's) must use the same one or cargo rebuilds pyo3.
pin_python() {
  if [[ -z ${PYO3_PYTHON:-} ]]; then
    PYO3_PYTHON=$("$PYTHON" -c 'import os, sys; print(os.path.realpath(sys.executable))')
  fi
  export PYO3_PYTHON
}

build_module() {
  require_rust || return 1
  pin_python
  log "cargo build --release -p gearshift (PYO3_PYTHON=$PYO3_PYTHON)"
  (cd "$ROOT" && cargo build --release -p gearshift)
}
