#!/usr/bin/env bash
# The validator-set benchmark (docs/PERFORMANCE.md, "A validator set"): the same RPC load against
# a single validator (`atoma start`), a 4-validator testnet and a 1-validator testnet (`atoma
# testnet`: the consensus engine's own cost without replicas), one after the other in one run,
# each on a fresh home, on loopback. Prints one JSON line per measurement and
# the ratios at the end.
#
#   scripts/bench-validators.sh [ROUNDS]     # default 1; each round runs both, alternating
#
# Needs release binaries: cargo build --release -p atoma-cli -p atoma-load; and jq.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-1}"
atoma=target/release/atoma
load=target/release/atoma-load
[ -x "$atoma" ] && [ -x "$load" ] || { echo "build first: cargo build --release -p atoma-cli -p atoma-load" >&2; exit 1; }
command -v jq >/dev/null || { echo "needs jq" >&2; exit 1; }

work=$(mktemp -d /tmp/atoma-bench-validators.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

wait_rpc() { # url
  for _ in $(seq 1 600); do
    curl -sf "$1/health" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "no answer from $1" >&2; return 1
}

measure() { # label url
  local label=$1 url=$2
  # Idle: one client, one transaction at a time.
  "$load" --rpc "$url" --concurrency 1 --pipeline 1 --txs 300 --json --quiet |
    jq -c --arg l "$label" '{setup: $l, load: "idle 1x1", tps, p50: .latencyMs.p50, p99: .latencyMs.p99, errors, blocks}'
  # Under load: 64 clients with 4 transactions in flight each.
  "$load" --rpc "$url" --concurrency 64 --pipeline 4 --txs 20000 --json --quiet |
    jq -c --arg l "$label" '{setup: $l, load: "64x4", tps, p50: .latencyMs.p50, p99: .latencyMs.p99, errors, blocks}'
}

single() {
  local home="$work/single-$1"
  ATOMA_HOME="$home" "$atoma" start --rpc-addr 127.0.0.1:9400 --accounts 0 >"$home.log" 2>&1 &
  local pid=$!; pids+=("$pid")
  wait_rpc http://127.0.0.1:9400
  measure single http://127.0.0.1:9400
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

testnet() { # round validators
  local home="$work/testnet-$1-$2"
  ATOMA_HOME="$home" "$atoma" testnet --validators "$2" --rpc-port 9410 --p2p-port 9420 --accounts 0 >"$home.log" 2>&1 &
  local pid=$!; pids+=("$pid")
  for i in $(seq 0 $(($2 - 1))); do wait_rpc "http://127.0.0.1:$((9410 + i))"; done
  measure "testnet-$2" http://127.0.0.1:9410
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

results="$work/results.jsonl"
for r in $(seq 1 "$rounds"); do
  single "$r" | tee -a "$results"
  testnet "$r" 4 | tee -a "$results"
  testnet "$r" 1 | tee -a "$results"
done

jq -s -r '
  def med: sort | if length == 0 then null else .[(length - 1) / 2 | floor] end;
  def of($s; $l; f): [.[] | select(.setup == $s and .load == $l) | f] | med;
  "medians over the rounds:",
  (["idle 1x1", "64x4"][] as $l |
    "  \($l): single \(of("single"; $l; .tps) | floor) tx/s p50 \(of("single"; $l; .p50)) ms p99 \(of("single"; $l; .p99)) ms;" +
    " testnet-4 \(of("testnet-4"; $l; .tps) | floor) tx/s p50 \(of("testnet-4"; $l; .p50)) ms p99 \(of("testnet-4"; $l; .p99)) ms;" +
    " testnet-1 \(of("testnet-1"; $l; .tps) | floor) tx/s p50 \(of("testnet-1"; $l; .p50)) ms;" +
    " throughput ratio \((of("testnet-4"; $l; .tps) / of("single"; $l; .tps)) * 100 | floor / 100)")
' "$results"
