#!/usr/bin/env bash
# Writes build/hot-functions.txt: the functions of the release binary that
# start-up, an idle broker, the catalog and one whole OSB flow (provision,
# bind, unbind, update, deprovision, with their polls) run. build.rs has
# the linker place them first, so an idle broker keeps few of its binary's
# pages resident (see build.rs for why and the numbers).
#
#   scripts/hot-functions.sh        # then commit build/hot-functions.txt
#
# Run it again after large changes (a function missing from the list is
# only placed among the cold ones). It builds the release binary
# (HOT_TARGET_DIR, default ~/.cache/chartbroker-bench/hot-target), runs it
# under valgrind's callgrind with the example catalog and the render
# engine, and lists every function that ran, by its linker name. Needs
# valgrind (Debian package, installed here when missing, as root) and helm
# (scripts/install-tools.sh --runtime).
set -euo pipefail

die() { printf 'hot-functions: %s\n' "$*" >&2; exit 1; }

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$REPO"

if ! command -v valgrind >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [[ "$(id -u)" == 0 ]]; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null; } \
      || die "apt-get install valgrind failed"
  else
    die "valgrind needed: install the Debian package valgrind"
  fi
fi
HELM="$REPO/.tools/bin/helm"
[[ -x "$HELM" ]] || die "helm missing: run scripts/install-tools.sh --runtime"
command -v python3 >/dev/null 2>&1 || die "python3 needed"

# The names must be those of the shipped build, so this is that build
# (the release profile keeps the symbol table): any other profile settings
# give every crate other hashes in its names.
export CARGO_TARGET_DIR="${HOT_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/chartbroker-bench/hot-target}"
cargo build --release --locked --bin chartbroker
BIN="$CARGO_TARGET_DIR/release/chartbroker"

WORK="$(mktemp -d)"
mkdir -p "$WORK/data"
trap 'kill "${PID:-0}" 2>/dev/null || true; rm -rf "$WORK"' EXIT
PORT=$((20000 + RANDOM % 20000))
CHARTBROKER_USERNAME=hot CHARTBROKER_PASSWORD=hot-password RUST_LOG=warn \
  valgrind --tool=callgrind --demangle=no --dump-instr=no \
  --callgrind-out-file="$WORK/cg.%p" \
  "$BIN" serve --listen "127.0.0.1:$PORT" --helm "$HELM" \
  --catalog "$REPO/catalog" --charts "$REPO/charts" --data-dir "$WORK/data" \
  >"$WORK/broker.log" 2>&1 &
PID=$!

# Start-up and idle first: they are listed first, so that an idle broker
# touches only the front of the hot code.
python3 - "$PORT" <<'PY' || { cat "$WORK/broker.log" >&2; die "the broker never became ready"; }
import http.client, sys, time

port = int(sys.argv[1])
for _ in range(600):  # callgrind starts slowly
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        c.request("GET", "/readyz")
        if c.getresponse().status == 200:
            break
    except OSError:
        pass
    time.sleep(0.5)
else:
    sys.exit("the broker never became ready")
time.sleep(2)
PY
callgrind_control --dump=idle "$PID" >/dev/null

python3 - "$PORT" <<'PY' || { cat "$WORK/broker.log" >&2; die "the flow failed"; }
import base64, http.client, json, sys, time

port = int(sys.argv[1])
auth = "Basic " + base64.b64encode(b"hot:hot-password").decode()
H = {"authorization": auth, "x-broker-api-version": "2.17",
     "content-type": "application/json"}
c = http.client.HTTPConnection("127.0.0.1", port, timeout=300)

def call(method, path, body=None):
    c.request(method, path, body=None if body is None else json.dumps(body), headers=H)
    r = c.getresponse()
    return r.status, json.loads(r.read() or b"{}")

catalog = call("GET", "/v2/catalog")[1]
service = next(s for s in catalog["services"] if s["name"] == "mysql")
plan = next(p for p in service["plans"] if p["name"] == "basic")
ids = {"service_id": service["id"], "plan_id": plan["id"]}
ctx = {"platform": "kubernetes", "namespace": "hot"}
i = "/v2/service_instances/hot-1"

def wait(path, op):
    for _ in range(600):
        s, b = call("GET", f"{path}/last_operation?operation={op}")
        if b.get("state") != "in progress":
            return b
        time.sleep(0.2)
    sys.exit(f"{path} never finished")

for _ in range(20):
    call("GET", "/v2/catalog")
s, b = call("PUT", f"{i}?accepts_incomplete=true", {**ids, "context": ctx})
assert s == 202, (s, b)
assert wait(i, b["operation"])["state"] == "succeeded"
call("GET", i)
s, b = call("PUT", f"{i}/service_bindings/b-1", {**ids, "context": ctx})
assert s == 201, (s, b)
call("GET", f"{i}/service_bindings/b-1")
s, b = call("DELETE", f"{i}/service_bindings/b-1?service_id={ids['service_id']}&plan_id={ids['plan_id']}")
assert s == 200, (s, b)
s, b = call("PATCH", f"{i}?accepts_incomplete=true", {**ids, "parameters": {}, "context": ctx})
if s == 202:
    wait(i, b["operation"])
s, b = call("DELETE", f"{i}?accepts_incomplete=true&service_id={ids['service_id']}&plan_id={ids['plan_id']}")
assert s in (200, 202), (s, b)
if s == 202:
    wait(i, b["operation"])
for path in ("/metrics", "/healthz", "/v2/catalog", "/v2/nowhere"):
    c.request("GET", path, headers=H)
    c.getresponse().read()
time.sleep(2)  # idle again
PY

kill -INT "$PID"
wait "$PID" 2>/dev/null || true
PID=
OUT="$REPO/build/hot-functions.txt"
names() { sed -nE 's/^c?fn=(\([0-9]+\) )?((_R|_ZN)[^ ]*)$/\2/p' "$@" | LC_ALL=C sort -u; }
names "$WORK"/cg.*.1 >"$WORK/idle"
names "$WORK"/cg.* | LC_ALL=C comm -23 - "$WORK/idle" >"$WORK/busy"
cat "$WORK/idle" "$WORK/busy" >"$OUT"
[[ -s "$OUT" ]] || die "no function names found: is the binary stripped?"
printf 'hot-functions: %s functions in %s\n' "$(wc -l <"$OUT")" "${OUT#"$REPO"/}"
