#!/usr/bin/env bash
# Scale of --store kube on the real API server (tests/testenv): three
# replicas over 100, 1,000 and 10,000 instance records; prints a table of
# API requests per minute in steady state (counted by the API server), RSS
# per replica and the takeover time after one replica is SIGKILLed with an
# operation in flight. Knobs: CHARTBROKER_SCALE_SIZES (e.g. 100,1000),
# CHARTBROKER_SCALE_WINDOW (seconds, default 60), CHARTBROKER_SCALE_LEASE
# (seconds, default 15), CHARTBROKER_SCALE_OUT (also write the table there).
# Takes about 3 × (window + seeding + takeover) plus a build.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_INCREMENTAL=0
exec cargo test --test cluster kube_scale:: -- --ignored --nocapture --test-threads 1 "$@"
