#!/usr/bin/env bash
# Runs every performance target of issue 23 (and those of issue 12 that
# still hold) on the release build and prints one markdown table (target,
# measured, the reference measured in the same run, met?) plus instructions
# per operation kind from valgrind's callgrind. Writes the table to
# target/bench/table.md as well.
#
# Needs: helm (scripts/install-tools.sh --runtime, into the cache below when
# the clone has none), wrk and valgrind (Debian packages, installed here with
# apt-get when missing and root; otherwise it fails saying so).
#
# Cache (target 5: a fresh clone in ≤ 10 minutes): the release build goes to
# a target directory shared by every clone and keyed by Cargo.lock and the
# compiler (cargo's own fingerprints still rebuild whatever changed: only
# chartbroker itself when its dependencies are unchanged), and helm is
# installed once beside it. BENCH_CACHE_DIR moves it
# (default ~/.cache/chartbroker-bench); BENCH_CACHE=0, or CARGO_TARGET_DIR
# set, builds where cargo would.
#
# Knobs (environment): BENCH_FLOWS, BENCH_CONCURRENCY, BENCH_WRK_SECONDS,
# BENCH_SCALE, BENCH_MEMORY, BENCH_PROFILE=0 (skip callgrind),
# BENCH_PROFILE_OPS — see benches/targets.rs. BENCH_KUBE=1 adds issue 12's
# target 6 (the Kubernetes store on the test control plane,
# scripts/bench-kube-store.sh: a debug build of its test, three 60-second
# windows, and the control plane's first build when .tools/bin/testenv is
# missing: it can't fit in target 5's 10 minutes, so it is off by default).
set -euo pipefail

die() { printf 'bench: ERROR: %s\n' "$*" >&2; exit 1; }
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$REPO"
export BENCH_STARTED="${BENCH_STARTED:-$(date +%s)}"

missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
if [[ "${BENCH_PROFILE:-1}" != 0 ]]; then
  command -v valgrind >/dev/null 2>&1 || missing+=(valgrind)
fi
if ((${#missing[@]})); then
  if command -v apt-get >/dev/null 2>&1 && [[ "$(id -u)" == 0 ]]; then
    printf 'bench: installing %s (apt-get) ...\n' "${missing[*]}" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; } \
      || die "apt-get install ${missing[*]} failed"
  else
    die "${missing[*]} needed: install the Debian package(s) ${missing[*]}"
  fi
fi

CACHE="${BENCH_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/chartbroker-bench}"
cache_state=off
if [[ -z "${CARGO_TARGET_DIR:-}" && "${BENCH_CACHE:-1}" != 0 ]]; then
  key="$( { cat Cargo.lock; rustc -vV; } | sha256sum | cut -c1-16)"
  export CARGO_TARGET_DIR="$CACHE/target-$key"
  cache_state=cold
  [[ -d "$CARGO_TARGET_DIR/release" ]] && cache_state=warm
fi
TARGET="${CARGO_TARGET_DIR:-$REPO/target}"

if [[ -z "${CHARTBROKER_HELM:-}" && ! -x .tools/bin/helm ]]; then
  tools="$REPO/.tools"
  [[ "$cache_state" != off ]] && tools="$CACHE/tools"
  CHARTBROKER_TOOLS_DIR="$tools" bash scripts/install-tools.sh --runtime >&2 || die "installing helm failed"
  export CHARTBROKER_HELM="$tools/bin/helm"
fi

mkdir -p target/bench
if [[ "${BENCH_KUBE:-0}" != 0 ]]; then
  if [[ ! -x .tools/bin/testenv ]]; then
    bash scripts/install-tools.sh || die "building the test control plane failed (BENCH_KUBE=0 skips it)"
  fi
  CHARTBROKER_SCALE_OUT="$REPO/target/bench/kube-store.md" bash scripts/bench-kube-store.sh \
    || die "the Kubernetes store bench (scripts/bench-kube-store.sh) failed"
  export BENCH_KUBE_TABLE="$REPO/target/bench/kube-store.md"
fi

export CARGO_INCREMENTAL=0
build_start=$(date +%s)
# The measured binary is the shipped one (`cargo build --release --bin
# chartbroker`, deploy/Dockerfile), built in the same cargo run as the bare
# axum reference (benches/reference), which asks for no feature chartbroker
# lacks, so both get the release profile and the same dependency builds.
cargo build --release --locked -p chartbroker -p bare-catalog --bins &
release=$!
# The harness only drives load and seeds the store: its own profile (no
# LTO, opt-level 1, Cargo.toml) in a target directory of its own, built
# beside the release build (whose fat-LTO link runs on one core).
HARNESS_TARGET="$TARGET/harness"
harness=0
CARGO_TARGET_DIR="$HARNESS_TARGET" cargo bench --locked --profile bench-harness --bench targets --no-run || harness=$?
wait "$release" || die "the release build failed"
((harness == 0)) || die "building the bench harness failed"
export BENCH_BUILD_SECONDS=$(( $(date +%s) - build_start ))
BENCH_CACHE_STATE="$cache_state" \
BENCH_BROKER="$TARGET/release/chartbroker" \
BENCH_REFERENCE="$TARGET/release/bare_catalog" \
BENCH_OUT="$REPO/target/bench/table.md" \
CARGO_TARGET_DIR="$HARNESS_TARGET" \
  cargo bench --locked --profile bench-harness --bench targets
