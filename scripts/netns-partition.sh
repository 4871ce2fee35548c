#!/usr/bin/env bash
# A validator set across separate network namespaces (docs/RELIABILITY.md, "Validator sets"):
# four `atoma validator` processes, each in a namespace of its own with its own address on a
# bridge, so their traffic crosses real (virtual) links that this script cuts and restores:
#
#   1. all four finalize transfers sent to validator 0;
#   2. validator 3's link goes down: the other three keep finalizing, validator 3 stalls;
#   3. its link comes back: it catches up and holds the same blocks;
#   4. validators 2 and 3 are cut off (two against two): nobody finalizes, nothing forks;
#   5. the links come back: all four go on and agree, and `atoma audit` holds on each.
#
# Not part of the test command (it needs root and changes the machine's network while it runs):
#
#   sudo scripts/netns-partition.sh      # after: cargo build --release -p atoma-cli
#
# ATOMA=path/to/atoma chooses the binary. Everything it creates (namespaces atoma-v0..3, the
# bridge atomabr0, /tmp/atoma-netns.*) is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
atoma="${ATOMA:-target/release/atoma}"
atoma="$(realpath "$atoma")"
[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces)" >&2; exit 1; }
[ -x "$atoma" ] || { echo "no $atoma: cargo build --release -p atoma-cli" >&2; exit 1; }
for tool in ip jq curl; do command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 1; }; done

n=4
work=$(mktemp -d /tmp/atoma-netns.XXXXXX)
export ATOMA_HOME="$work/home"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  for i in $(seq 0 $((n - 1))); do ip netns del "atoma-v$i" 2>/dev/null || true; ip link del "atv$i" 2>/dev/null || true; done
  ip link del atomabr0 2>/dev/null || true
  if [ "${failed:-0}" = 1 ]; then echo "kept the logs: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'failed=1' ERR
fail() { failed=1; echo "FAILED: $*" >&2; exit 1; }

addr() { echo "10.77.0.$(($1 + 1))"; }
rpc() { echo "http://$(addr "$1"):9000"; }

# The links: one bridge on the host, one veth per validator, its far end in the namespace.
ip link add atomabr0 type bridge
ip addr add 10.77.0.100/24 dev atomabr0
ip link set atomabr0 up
for i in $(seq 0 $((n - 1))); do
  ip netns add "atoma-v$i"
  ip link add "atv$i" type veth peer name eth0 netns "atoma-v$i"
  ip link set "atv$i" master atomabr0 up
  ip -n "atoma-v$i" addr add "$(addr "$i")/24" dev eth0
  ip -n "atoma-v$i" link set eth0 up
  ip -n "atoma-v$i" link set lo up
done

# The testnet, each validator's addresses moved to its namespace's.
"$atoma" testnet --create-only --validators "$n" --accounts 4 >/dev/null
root="$ATOMA_HOME/testnet"
# (sed, not jq: jq would turn the genesis's large integers into floating point.)
moves=()
for j in $(seq 0 $((n - 1))); do
  moves+=(-e "s/\"127\.0\.0\.1:$((9000 + j))\"/\"$(addr "$j"):9000\"/" -e "s/\"127\.0\.0\.1:$((9100 + j))\"/\"$(addr "$j"):9100\"/")
done
for i in $(seq 0 $((n - 1))); do sed -i "${moves[@]}" "$root/validator-$i/network.json"; done

start() {
  ip netns exec "atoma-v$1" "$atoma" validator --dir "$root/validator-$1" >>"$work/v$1.log" 2>&1 &
  pids+=($!)
}
for i in $(seq 0 $((n - 1))); do start "$i"; done

# Every call runs inside the validator's own namespace, so a validator whose link is cut can
# still be asked how far it got.
call() { # validator method params
  ip netns exec "atoma-v$1" curl -sf -m 5 "$(rpc "$1")" -H 'content-type: application/json' \
    -d "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"$2\",\"params\":$3}"
}
height() { call "$1" atoma_getChainInfo '[]' | jq -r '.result.height // empty' || true; }
block() { call "$1" atoma_getBlock "[$2]" | jq -r '.result.digest // empty' || true; }
wait_height() { # validator height seconds
  local deadline=$((SECONDS + $3)) h
  while :; do
    h=$(height "$1"); [ -n "$h" ] && [ "$h" -ge "$2" ] && return 0
    [ "$SECONDS" -lt "$deadline" ] || fail "validator $1 at height ${h:-?}, wanted $2"
    sleep 0.2
  done
}
transfers() { # validator count
  for _ in $(seq 1 "$2"); do
    ip netns exec "atoma-v$1" "$atoma" --rpc "$(rpc "$1")" --as account-0 transfer account-1 1base >/dev/null || fail "a transfer through validator $1"
  done
}
agree() { # height validators...
  local h=$1 first d; shift
  first=$(block "$1" "$h")
  for v in "$@"; do
    d=$(block "$v" "$h"); [ -n "$d" ] && [ "$d" = "$first" ] || fail "block $h: validator $v has '$d', validator $1 '$first'"
  done
}

for i in $(seq 0 $((n - 1))); do wait_height "$i" 0 60; done
echo "1. four validators in four namespaces"
transfers 0 5
top=$(height 0); for i in 1 2 3; do wait_height "$i" "$top" 30; done

echo "2. validator 3 cut off"
ip link set atv3 down
sleep 2
stalled3=$(height 3)
transfers 1 5
top=$(height 1); for i in 0 2; do wait_height "$i" "$top" 30; done
sleep 2
[ "$(height 3)" -le "$((stalled3 + 2))" ] || fail "validator 3 went on alone"
echo "   validators 0-2 at height $top; validator 3 stayed at $(height 3)"

echo "3. validator 3 back"
ip link set atv3 up
top=$(height 0); wait_height 3 "$top" 60
agree "$top" 0 1 2 3
echo "   validator 3 caught up to $top, same block"

echo "4. two against two"
ip link set atv2 down; ip link set atv3 down
sleep 3
before=$(height 0); sleep 4; after=$(height 0)
[ "$before" = "$after" ] || fail "validator 0 finalized without a quorum ($before -> $after)"
echo "   nobody finalizes: validator 0 stays at $after"

echo "5. healed"
ip link set atv2 up; ip link set atv3 up
transfers 2 3
top=$(height 2); for i in 0 1 3; do wait_height "$i" "$top" 60; done
agree "$top" 0 1 2 3
for h in $(seq 1 $(( top / 20 + 1 )) "$top"); do agree "$h" 0 1 2 3; done
for i in $(seq 0 $((n - 1))); do
  ip netns exec "atoma-v$i" "$atoma" --rpc "$(rpc "$i")" --json audit | jq -e '.holds' >/dev/null || fail "the audit on validator $i"
done
echo "   all four at height $top with the same blocks; the audit holds on each"
echo "PASSED"
