#!/usr/bin/env bash
# The Atoma loop with node agents, and nobody typing a settlement: three operators run `atoma
# agent` in front of a deterministic inference backend; a user buys a sampling-consensus stack
# and talks to the selected node with `atoma chat` (and the official `openai` package, when it is
# installed); the node's agent settles when the stack goes idle, the sampled attester's agent
# fetches the transcript, re-runs it and attests, and the node's agent claims its pay.
#
# Needs a running local network (`atoma start`) and jq. Starts one backend and three agents in
# the background (state in a temporary directory) and stops them at the end. It sets
# cross-validation to always sample one attester, so that there is something to watch, and puts
# the network's two parameters back as they were when it exits.
#
#   examples/agents.sh
#   ATOMA=target/release/atoma ATOMA_RPC=http://127.0.0.1:9000 examples/agents.sh
#   ATOMA_PYTHON=.venv/bin/python examples/agents.sh   # also runs examples/openai_chat.py
set -euo pipefail

ATOMA=${ATOMA:-atoma}
RPC=${ATOMA_RPC:-http://127.0.0.1:9000}
export ATOMA_RPC=$RPC
atoma() { "$ATOMA" "$@"; }
json() { "$ATOMA" --json "$@"; }
step() { printf '\n== %s\n' "$*"; }

command -v jq >/dev/null || { echo "agents.sh needs jq" >&2; exit 1; }

WORK=$(mktemp -d)
PIDS=()
RESTORE=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for setting in "${RESTORE[@]}"; do atoma admin set $setting >/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# Starts `atoma --json ARGS…` in the background and prints the first line it writes.
background() {
  local out="$WORK/$1.out"
  shift
  "$ATOMA" --json "$@" >"$out" 2>"$out.log" &
  PIDS+=($!)
  for _ in $(seq 100); do
    if [ -s "$out" ]; then head -n1 "$out"; return; fi
    kill -0 "${PIDS[-1]}" 2>/dev/null || { cat "$out.log" >&2; return 1; }
    sleep 0.1
  done
  echo "atoma $* printed nothing" >&2
  return 1
}

MODEL="agents-model-$(json status | jq -r .chain.height)"

step "Keys for three node operators and a user, funded from the faucet"
for key in ag-node-a ag-node-b ag-oracle ag-user; do
  json keys show "$key" >/dev/null 2>&1 || atoma keys new "$key"
  atoma faucet --to "$key" --amount 3000
done

step "The admin adds $MODEL and has every sampling-consensus settlement cross-validated by one attester"
atoma admin add-model "$MODEL" --modality text-to-text
atoma admin add-echelon "$MODEL" 1 --input-fee 1000 --output-fee 2000 --performance 100 --timeout-ms 3000
CONFIG=$(json status | jq .db.config)
for param in cross_validation_probability_permille cross_validation_extra_nodes_count; do
  RESTORE+=("$param $(jq -r ".$param" <<<"$CONFIG")")
done
atoma admin set cross_validation_probability_permille 1000
atoma admin set cross_validation_extra_nodes_count 1

step "Three operators register nodes and serve the model; the third is its oracle"
NODE_A=$(json --as ag-node-a node register | jq -r .created.node)
NODE_B=$(json --as ag-node-b node register | jq -r .created.node)
NODE_O=$(json --as ag-oracle node register | jq -r .created.node)
for pair in "ag-node-a $NODE_A" "ag-node-b $NODE_B" "ag-oracle $NODE_O"; do
  set -- $pair
  atoma --as "$1" node join-model "$2" --model "$MODEL" --echelon 1
done
atoma admin add-oracle "$MODEL" 1 "$NODE_O"

step "The user creates a sampling-consensus task; node $NODE_A offers it cheaper than node $NODE_B"
TASK=$(json --as ag-user task create --role chat-completions --model "$MODEL" --security sampling | jq -r .created.task)
atoma --as ag-node-a node subscribe "$NODE_A" --task "$TASK" --price 10000000 --max-units 100000
atoma --as ag-node-b node subscribe "$NODE_B" --task "$TASK" --price 15000000 --max-units 100000

step "A deterministic inference backend, and an agent per node in front of it"
BACKEND=$(background backend backend --listen 127.0.0.1:0 | jq -r .baseUrl)
echo "backend: $BACKEND"
declare -A AGENT
for pair in "ag-node-a $NODE_A" "ag-node-b $NODE_B" "ag-oracle $NODE_O"; do
  set -- $pair
  cat >"$WORK/$1.toml" <<TOML
rpc = "$RPC"
listen = "127.0.0.1:0"
state_dir = "$WORK/$1"
idle_settle_secs = 5

[[nodes]]
key = "$1"
node = $2

[models."$MODEL"]
backend = "$BACKEND"
TOML
  AGENT[$2]=$(background "agent-$1" agent run --config "$WORK/$1.toml" | jq -r .url)
  echo "node $2 ($1): agent at ${AGENT[$2]}"
done

step "The user buys a stack of 500 compute units (node $NODE_A is the only one at this price)"
STACK=$(json --as ag-user stack buy --task "$TASK" --units 500 --max-price 10000000 | jq -r .created.stack)
atoma node show "$NODE_A" | grep -i endpoint

step "The user talks to the node through its agent: a stack token is the API key"
atoma --as ag-user chat --stack "$STACK" "What is the Atoma protocol?" --max-tokens 12
atoma --as ag-user chat --stack "$STACK" "Stream the answer, please" --max-tokens 8 --stream
if [ -n "${ATOMA_PYTHON:-}" ]; then
  TOKEN=$(json --as ag-user stack token "$STACK" | jq -r .token)
  "$ATOMA_PYTHON" "$(dirname "$0")/openai_chat.py" "${AGENT[$NODE_A]}" "$TOKEN" "$MODEL"
else
  echo "(set ATOMA_PYTHON to a python with the openai package to use it too: examples/openai_chat.py)"
fi

step "Nobody types anything now: node $NODE_A settles after 5 idle seconds, node $NODE_B attests, node $NODE_A claims"
for _ in $(seq 600); do
  json stack show "$STACK" | jq -e '.closed' >/dev/null && break
  sleep 0.1
done
json stack show "$STACK" | jq -e '.closed' >/dev/null || { echo "stack $STACK did not close" >&2; exit 1; }
atoma events --stack "$STACK"

step "What the agents say they did"
atoma agent status --url "${AGENT[$NODE_A]}"
atoma agent status --url "${AGENT[$NODE_B]}"

step "Done"
atoma balance ag-user
atoma audit
