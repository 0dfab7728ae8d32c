# Shared by scripts/server.sh and scripts/test.sh (sourced, not executed).
# Both must work on a fresh Debian 12 box, so the setup lives here once.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUN_DIR=$ROOT/.run
# GEARSHIFT_MODULE points at another build of the module (the e2e tests honour it too).
MODULE_SO=${GEARSHIFT_MODULE:-$ROOT/target/release/libgearshift.so}
APT_PACKAGES=(redis-server redis-tools libclang-dev)

# A non-login shell (CI) may lack the rustup and pyenv paths; add them only if absent.
for dir in "$HOME/.cargo/bin" "$HOME/.pyenv/shims"; do
  if [[ -d $dir && ":$PATH:" != *":$dir:"* ]]; then PATH=$dir:$PATH; fi
done
export PATH

log() { printf '==> %s\n' "$*" >&2; }

# apt-get is slow and needs the network: only touch it when something is missing.
ensure_apt_packages() {
  local pkg missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
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

# cloudpickle is a runtime dependency: cluster runs ship their callbacks with it (as 1.2 does).
# pyarrow is optional for users (mapBatch(format='arrow')) but not for the tests: without it the
# Arrow e2e tests would skip, and under CI=true they fail instead.
PIP_PACKAGES=(redis pytest cloudpickle pyarrow)
ensure_pip_packages() {
  python3 -c 'import redis, pytest, cloudpickle, pyarrow' 2>/dev/null && return 0
  log "installing pip packages: ${PIP_PACKAGES[*]}"
  python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore \
    "${PIP_PACKAGES[@]}" </dev/null
}

# pyo3 links against whatever PYO3_PYTHON names. A pyenv shim path is not stable, so pin the
# real interpreter; every build (ours and the lead's) must use the same one or cargo rebuilds pyo3.
pin_python() {
  if [[ -z ${PYO3_PYTHON:-} ]]; then
    PYO3_PYTHON=$(python3 -c 'import os, sys; print(os.path.realpath(sys.executable))')
  fi
  export PYO3_PYTHON
}

build_module() {
  pin_python
  log "cargo build --release -p gearshift (PYO3_PYTHON=$PYO3_PYTHON)"
  (cd "$ROOT" && cargo build --release -p gearshift)
}
