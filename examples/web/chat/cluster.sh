#!/usr/bin/env bash
# make demo-cluster: a redis-server of its own and two roomcast nodes on it,
# serving the demo chat at http://127.0.0.1:3000/ and http://127.0.0.1:3001/.
# Open one in each browser: they chat across nodes; stop one node (its log
# says how) and its page reconnects and recovers what it missed.
#   cluster.sh ROOMCAST_BIN [serve arguments...]   (REDIS_PORT, default 6390)
set -euo pipefail
bin=$1
shift
redis_port=${REDIS_PORT:-6390}
dir=$(mktemp -d)
nodes=()
# The nodes stop first (they would log the lost Redis connection), then Redis.
trap 'kill "${nodes[@]}" 2>/dev/null || true; wait "${nodes[@]}" 2>/dev/null || true; kill "$redis" 2>/dev/null || true; wait; rm -rf "$dir"' EXIT
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" --loglevel warning &
redis=$!
for _ in $(seq 100); do
  redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
  sleep 0.1
done
redis-cli -p "$redis_port" ping >/dev/null || { echo "redis-server did not start on port $redis_port" >&2; exit 1; }
for port in 3000 3001; do
  "$bin" serve --listen "127.0.0.1:$port" --redis "redis://127.0.0.1:$redis_port" "$@" &
  nodes+=($!)
done
echo "roomcast demo cluster: open http://127.0.0.1:3000/ and http://127.0.0.1:3001/ (Ctrl-C stops all)"
wait -n
