//! docs/CLI.md, generated from the clap definitions: a short guide, then every command's help.
//!
//! `atoma docs cli` prints it; the test `cli_docs` fails when docs/CLI.md differs, and
//! `UPDATE_CLI_DOCS=1 cargo test -p atoma-cli --test cli_docs` rewrites it.

use clap::CommandFactory;

use crate::cli::Cli;
use crate::error::CliErrorKind;

/// The guide that precedes the generated help.
const GUIDE: &str = r#"# The `atoma` command line

This file is generated from the CLI's own definitions: do not edit it by hand. After changing a
command, run `UPDATE_CLI_DOCS=1 cargo test -p atoma-cli --test cli_docs` (the test fails while
this file is out of date).

## Quick start

```sh
cargo run --release -- start          # terminal 1: a local network on 127.0.0.1:9000
cargo run --release -- demo           # terminal 2: the whole protocol, step by step
cargo run --release -- events --follow
```

`examples/walkthrough.sh` does what `atoma demo` does with one CLI command per step.

## Keys and who signs

- Everything lives under `$ATOMA_HOME` (default `~/.atoma`): the chain database `chain.redb` and
  the keystore `keystore.json`. `atoma start --data-dir DIR` keeps the chain elsewhere and still
  copies the network's keys into `$ATOMA_HOME/keystore.json`. A running `atoma start` holds a lock
  on `chain.lock` in that directory: a second one there, `--fresh` or not, is refused with
  `EDataDirInUse` and changes nothing.
- The keystore is the ledger's format, shared by the chain and the CLI: a JSON array of
  `{"alias": "admin", "address": "0x…", "private_key": "<64 hex digits>"}`, written atomically
  with mode 0600. It holds secrets in the clear: it is meant for local networks.
- `atoma start` writes the network's keys on first run (and on `--fresh`): `validator`, `admin`
  (holds the manager badge), `faucet`, and `account-0` … `account-<N-1>` (funded test accounts
  whose keys are the same on every machine). Other entries are kept.
- Helper keys the CLI stores for confidential compute on a local network: `dev-root-<device>`
  (a development attestation root, from `atoma admin add-root --device D --dev`) and
  `enclave-node-<n>` (a node's enclave key, from `atoma node commit-key N --device D --dev-root`;
  `atoma node settle` signs confidential-compute settlements with it automatically).
- **Which key signs**: `--as ALIAS|ADDRESS` (or `ATOMA_AS`). Without it, `atoma admin …` signs as
  `admin`, and every other command signs as the first keystore entry that is not a system or
  helper key (`validator`, `admin`, `faucet`, `dev-root-*`, `enclave-node-*`) — `account-0` on a
  fresh local network. `atoma keys list` marks it as the default signer.
- Admin commands find the signer's manager badge with `atoma_getOwnedBadges` (`--badge ID`
  picks one).

## Amounts and ids

- TOMA amounts (`transfer`, `faucet --amount`, `--collateral`, treasury withdrawals) are TOMA
  with up to nine decimals (`12.5`, `1,000`), or base units with a `base` suffix (`1500base`);
  1 TOMA = 10^9 base units. Prices per compute unit and fees per token are whole base units.
- `admin set PARAM VALUE` takes the raw number, or TOMA with a `TOMA` suffix (`2000TOMA`).
- Nodes, tasks and stacks are named by their small ids (`1`, `2`, …); badges by object id (`0x…`).
- Roles, security levels, modalities, device types and optimizations take names or numbers
  (`--security sampling`, `--device nvidia-gpu`, `--optimizations flash-attention,quantization`);
  an unknown number is passed on, so the contract answers with its named error.

## Output and errors

- Text for people by default; with `--json`, exactly one JSON document on stdout. Transaction
  commands print the RPC's transaction result (`digest`, `status`, `events`, …) plus `signer`
  and `created` (what the transaction made: `{"node": "1"}`, `{"stack": "3", "selectedNode":
  "2", "price": "5"}`, `{"userRefund": "…"}`). `events --follow --json` and `start --json` print
  one JSON document per line.
- A malformed command line exits with status 2 (with `--json`, as an `EInvalidArgument`
  document). Any other failure exits with status 1 and prints `NAME (CODE): message` on stderr,
  or with `--json`
  `{"error": {"name": "ETaskNotFound", "code": 312012017, "message": "no task has this id"}}` on
  stdout. A transaction the contract refused is still stored on chain (its nonce is used): the
  error then also names its digest — a second line `the failed transaction is stored: atoma tx
  DIGEST`, or `"digest"` in the JSON error — and `atoma tx DIGEST` shows it. Numbers: contract errors `312012000 + n`, ledger errors `312013000 + n`, the RPC's own
  errors (not found, subscription over HTTP, request body timeout) `312014000 + n`, and the CLI's
  own `312015000 + n`:

{cli_errors}

## Settlement commitments

`node settle`, `node attest`, `node dispute` and `node resolve` take commitments in hex
(`--proof HEX --leaf HEX`), or compute them from the requests the node served with
`--outputs FILE` (SPEC §6.3, `atoma_contract::commitment`). The file is a JSON array, one object
per request in the order served:

```json
[{"input": "What is 2+2?", "output": "4"},
 {"inputHex": "00ff", "outputHex": "0102"}]
```

`input`/`output` are UTF-8 text, `inputHex`/`outputHex` raw bytes. The selected node is party 0;
an attester is party `i + 1` where `i` is its position in the ticket's requested attesters; `k`
is the stack's `cross_validation_extra_nodes_count`.

## Confidential compute on a local network

```sh
atoma admin add-root --device nvidia-gpu --dev            # trust a development root (dev-root-300)
atoma node commit-key 1 --device nvidia-gpu --dev-root    # enclave key for node 1 (enclave-node-1)
atoma task create --role chat-completions --security tee
atoma node settle 1 STACK --units 10 --outputs served.json   # signed with enclave-node-1
```

## Commands

Every command also takes the global options `--rpc`, `--as` and `--json`, shown under `atoma`.
"#;

/// docs/CLI.md: the guide, then `atoma --help` and every visible subcommand's `--help`.
pub fn cli_markdown() -> String {
    let mut root = Cli::command();
    root.build();
    let mut out = GUIDE.replace("{cli_errors}", &cli_errors());
    section(&root, "atoma", &mut out);
    out
}

/// The CLI's own errors as a Markdown table.
fn cli_errors() -> String {
    let mut table = String::from("| name | code | when |\n|---|---|---|");
    for kind in CliErrorKind::ALL {
        table.push_str(&format!("\n| `{}` | {} | {} |", kind.name(), kind.code(), kind.description()));
    }
    table
}

/// The global flags' ids: shown once, under `atoma`, not in every section.
const GLOBAL_IDS: [&str; 3] = ["rpc", "signer", "json"];

fn section(cmd: &clap::Command, path: &str, out: &mut String) {
    let mut shown = cmd.clone();
    if path != "atoma" {
        for id in GLOBAL_IDS {
            if shown.get_arguments().any(|a| a.get_id() == id) {
                shown = shown.mut_arg(id, |a| a.hide(true));
            }
        }
    }
    let help = shown.render_help().to_string();
    let help: Vec<&str> = help.lines().map(str::trim_end).collect();
    out.push_str(&format!("\n### `{path}`\n\n```text\n{}\n```\n", help.join("\n").trim_end()));
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set() && s.get_name() != "help") {
        section(sub, &format!("{path} {}", sub.get_name()), out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_gets_a_section_with_its_full_usage() {
        let md = cli_markdown();
        assert!(md.contains("### `atoma node settle`"));
        assert!(md.contains("Usage: atoma node settle"));
        assert!(md.contains("### `atoma admin withdraw-communal-treasury`"));
        assert!(!md.contains("### `atoma docs"));
    }
}
