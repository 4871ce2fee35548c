#!/usr/bin/env bash
# The Atoma protocol end to end with the `atoma` CLI, one command per step: the admin adds a model
# with an echelon, two operators register nodes and serve the model, one node becomes its oracle,
# a user creates a task and buys a stack, the sampled node settles it from its outputs, the epoch
# advances past the dispute window, the node claims, and the user is refunded the unused part.
#
# Needs a running local network (`atoma start`, or `cargo run --release -- start`) and jq.
# Safe to run again on the same network: each run adds a model named after the chain's height.
#
#   examples/walkthrough.sh                          # uses `atoma` from PATH and 127.0.0.1:9000
#   ATOMA=target/release/atoma ATOMA_RPC=http://127.0.0.1:9000 examples/walkthrough.sh
set -euo pipefail

ATOMA=${ATOMA:-atoma}
atoma() { "$ATOMA" "$@"; }
json() { "$ATOMA" --json "$@"; }
step() { printf '\n== %s\n' "$*"; }

command -v jq >/dev/null || { echo "walkthrough.sh needs jq" >&2; exit 1; }

MODEL="walkthrough-model-$(json status | jq -r .chain.height)"

step "Keys for two node operators and a user, funded from the faucet"
for key in wt-node-a wt-node-b wt-user; do
  json keys show "$key" >/dev/null 2>&1 || atoma keys new "$key"
  atoma faucet --to "$key" --amount 3000
done

step "The admin adds $MODEL with echelon 1"
atoma admin add-model "$MODEL" --modality text-to-text
atoma admin add-echelon "$MODEL" 1 --input-fee 1000 --output-fee 2000 --performance 100 --timeout-ms 3000

step "Two operators register nodes (1,000 TOMA collateral each) and serve the model"
NODE_A=$(json --as wt-node-a node register | jq -r .created.node)
NODE_B=$(json --as wt-node-b node register | jq -r .created.node)
atoma --as wt-node-a node join-model "$NODE_A" --model "$MODEL" --echelon 1
atoma --as wt-node-b node join-model "$NODE_B" --model "$MODEL" --echelon 1
atoma admin add-oracle "$MODEL" 1 "$NODE_B"

step "The user creates a task; both nodes offer it at their own price"
TASK=$(json --as wt-user task create --role chat-completions --model "$MODEL" --security none | jq -r .created.task)
atoma --as wt-node-a node subscribe "$NODE_A" --task "$TASK" --price 10000000 --max-units 100000
atoma --as wt-node-b node subscribe "$NODE_B" --task "$TASK" --price 15000000 --max-units 100000

step "The user buys a stack of 10,000 compute units; a node is sampled"
BOUGHT=$(json --as wt-user stack buy --task "$TASK" --units 10000 --max-price 20000000)
STACK=$(jq -r .created.stack <<<"$BOUGHT")
NODE=$(jq -r .created.selectedNode <<<"$BOUGHT")
OPERATOR=$([ "$NODE" = "$NODE_A" ] && echo wt-node-a || echo wt-node-b)
atoma stack show "$STACK"

step "Node $NODE serves two requests and settles 6,400 units with a commitment of its outputs"
OUTPUTS=$(mktemp)
trap 'rm -f "$OUTPUTS"' EXIT
cat >"$OUTPUTS" <<'JSON'
[{"input": "What is the Atoma protocol?", "output": "A marketplace for AI compute."},
 {"input": "Who checks the work?", "output": "Sampled attesters, TEEs, or nobody."}]
JSON
atoma --as "$OPERATOR" node settle "$NODE" "$STACK" --units 6400 --outputs "$OUTPUTS"

step "The epoch advances; once the echelon's 3-second settlement timeout has also passed, the dispute window is closed and the node claims"
atoma epoch advance
REFUND=$(json --as "$OPERATOR" node claim "$NODE" "$STACK" --wait | jq -r .created.userRefund)

step "Events of stack $STACK"
atoma events --stack "$STACK"

step "Done"
echo "user refund: $REFUND base units"
atoma balance wt-user
atoma audit
