#!/usr/bin/env bash
# Smoke check of the benchmark peers (bench/APP.md): starts each one with PORT=0, reads its
# `PORT <n>` line, drives it with a real client (check.mjs), closes its stdin and checks it exits.
#
#   bash bench/peers/check.sh [node-socketio|node-ws|python|socketioxide ...]   (default: all)
#
# Needs: node + tests/interop/node_modules (make deps-node) for the clients,
# bench/peers/node/node_modules (npm ci --prefix bench/peers/node), a python with
# bench/peers/python/requirements.txt (default .venv/bin/python; ROOMCAST_BENCH_PYTHON), and the
# socketioxide peer built (ROOMCAST_PEERS_TARGET_DIR, default as below):
#   CARGO_TARGET_DIR=$HOME/.cache/roomcast-peers-target \
#     cargo build --release --locked --manifest-path bench/peers/socketioxide/Cargo.toml
# Every wait is bounded. Exits non-zero if any check failed.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# Same overrides as the orchestrator (bench/src/orchestrate.rs).
PYTHON="${ROOMCAST_BENCH_PYTHON:-$root/.venv/bin/python}"
PEERS_TARGET="${ROOMCAST_PEERS_TARGET_DIR:-$HOME/.cache/roomcast-peers-target}"
SOCKETIOXIDE_BIN="$PEERS_TARGET/release/socketioxide-peer"
START_TIMEOUT=15   # s for the PORT line
EXIT_TIMEOUT=5     # s to exit after stdin closes
CLIENT_TIMEOUT=40  # s for check.mjs as a whole

work="$(mktemp -d)"
pid=""
cleanup() {
  exec 3>&- 2>/dev/null || true
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "  ok   $*"; }
bad() { failed=$((failed + 1)); echo "  FAIL $*"; }

# run_peer NAME CLIENT_MODE CMD...
run_peer() {
  local name="$1" mode="$2"
  shift 2
  echo "== $name: $*"
  local fifo="$work/$name.stdin" out="$work/$name.stdout" err="$work/$name.stderr"
  rm -f "$fifo" && mkfifo "$fifo"
  : >"$out"
  PORT=0 "$@" <"$fifo" >"$out" 2>"$err" &
  pid=$!
  exec 3>"$fifo"   # the peer's stdin stays open while fd 3 is

  local line="" i
  for ((i = 0; i < START_TIMEOUT * 10; i++)); do
    # Wait for a complete first line (newline-terminated), or for the peer to die.
    if [[ "$(wc -l <"$out")" -ge 1 ]]; then line="$(head -n1 "$out")"; break; fi
    kill -0 "$pid" 2>/dev/null || { line="$(head -n1 "$out")"; break; }
    sleep 0.1
  done
  if [[ ! "$line" =~ ^PORT\ ([0-9]+)$ ]]; then
    bad "$name: no 'PORT <n>' first line within ${START_TIMEOUT}s (got: '${line}')"
    sed 's/^/    stderr: /' "$err" | tail -n 20
    exec 3>&-
    kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; pid=""
    return
  fi
  local port="${BASH_REMATCH[1]}"
  ok "$name: printed PORT $port"

  if timeout "$CLIENT_TIMEOUT" node "$here/check.mjs" "$mode" "$port"; then
    ok "$name: client checks"
  else
    bad "$name: client checks"
    sed 's/^/    stderr: /' "$err" | tail -n 20
  fi

  exec 3>&-   # close the peer's stdin
  local exited=""
  for ((i = 0; i < EXIT_TIMEOUT * 10; i++)); do
    if ! kill -0 "$pid" 2>/dev/null; then exited=1; break; fi
    sleep 0.1
  done
  if [[ -n "$exited" ]]; then
    wait "$pid" 2>/dev/null
    local rc=$?
    if [[ $rc -eq 0 ]]; then ok "$name: exited (status 0) after stdin closed"
    else bad "$name: exited with status $rc after stdin closed"; fi
  else
    bad "$name: still running ${EXIT_TIMEOUT}s after stdin closed"
    kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  fi
  pid=""
}

want() { [[ ${#selected[@]} -eq 0 ]] || [[ " ${selected[*]} " == *" $1 "* ]]; }
selected=("$@")

[[ -d "$root/tests/interop/node_modules/socket.io-client" ]] \
  || { echo "missing tests/interop/node_modules (run: make deps-node)"; exit 1; }

if want node-socketio || want node-ws; then
  [[ -d "$here/node/node_modules/socket.io" ]] \
    || { echo "missing bench/peers/node/node_modules (run: npm ci --prefix bench/peers/node)"; exit 1; }
fi
want node-socketio && run_peer node-socketio socketio node "$here/node/socketio.mjs"
want node-ws && run_peer node-ws ws node "$here/node/ws.mjs"
if want python; then
  if [[ -x "$PYTHON" ]]; then run_peer python socketio "$PYTHON" "$here/python/server.py"
  else bad "python: no interpreter at $PYTHON (make deps-python)"; fi
fi
if want socketioxide; then
  if [[ -x "$SOCKETIOXIDE_BIN" ]]; then run_peer socketioxide socketio "$SOCKETIOXIDE_BIN"
  else bad "socketioxide: no binary at $SOCKETIOXIDE_BIN (build it, see the top of this file)"; fi
fi

echo "peers: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
