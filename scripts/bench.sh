#!/usr/bin/env bash
# Runs every performance target of issue 12 on the release build and prints
# one markdown table (target, measured, met?) plus instructions per
# operation kind from valgrind's callgrind. Writes the table to
# target/bench/table.md as well.
#
# Needs: helm (scripts/install-tools.sh --runtime), wrk and valgrind (Debian
# packages, installed here with apt-get when missing and root; otherwise it
# fails saying so). Takes about 5 minutes on a 2-core machine plus the
# release build of a fresh clone.
#
# Knobs (environment): BENCH_FLOWS, BENCH_CONCURRENCY, BENCH_WRK_SECONDS,
# BENCH_SCALE, BENCH_MEMORY, BENCH_PROFILE=0 (skip callgrind),
# BENCH_PROFILE_OPS — see benches/targets.rs. BENCH_KUBE=0 skips target 6
# (the Kubernetes store on the test control plane, scripts/bench-kube-store.sh:
# about 5 more minutes, and the control plane's first build when
# .tools/bin/testenv is missing).
set -euo pipefail

die() { printf 'bench: ERROR: %s\n' "$*" >&2; exit 1; }
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$REPO"

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
if [[ -z "${CHARTBROKER_HELM:-}" && ! -x .tools/bin/helm ]]; then
  bash scripts/install-tools.sh --runtime || die "installing helm failed"
fi

export CARGO_INCREMENTAL=0
cargo build --release --example bare_catalog
mkdir -p target/bench
BENCH_REFERENCE="$REPO/target/release/examples/bare_catalog" \
BENCH_OUT="$REPO/target/bench/table.md" \
  cargo bench --bench targets

if [[ "${BENCH_KUBE:-1}" != 0 ]]; then
  if [[ ! -x .tools/bin/testenv ]]; then
    bash scripts/install-tools.sh || die "building the test control plane failed (BENCH_KUBE=0 skips target 6)"
  fi
  CHARTBROKER_SCALE_OUT="$REPO/target/bench/kube-store.md" bash scripts/bench-kube-store.sh \
    || die "target 6 (scripts/bench-kube-store.sh) failed"
  printf '\n6. Kubernetes store, 3 replicas (requests/min must not grow with the instances):\n\n' \
    | tee -a target/bench/table.md
  tee -a target/bench/table.md < target/bench/kube-store.md
fi
