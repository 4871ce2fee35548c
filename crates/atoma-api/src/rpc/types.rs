//! The JSON shapes of the RPC's results, shared by the server (which writes them) and the client
//! (which reads them back), so the two cannot drift apart.
//!
//! State records (nodes, tasks, stacks, tickets, models, badges, the db, the audit) and events use
//! the views of this crate unchanged; this module holds what is specific to the chain and the
//! RPC: transaction results, blocks, chain info, balances, nonces, pages and event filters.

use atoma_contract::{Address, ContractError, NodeSmallId, ObjectId, StackSmallId, TaskSmallId};
use atoma_types::{Digest, EventFilter, LedgerError, SignedTransaction, Transaction};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::wire::{self, base64_bytes, opt_u64_str, text, text_vec, u64_str};
use crate::{ErrorView, EventEnvelope, EventId, TaskView};

/// Whether the contract applied an executed transaction.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutionStatus {
    /// Applied; its events are in the result.
    Success,
    /// Refused by the contract (nothing changed but the sender's nonce), or skipped inside its
    /// block by the ledger (nothing changed at all: `ENonceUsed` / `ENonceFuture`); `error` says
    /// which.
    Failure,
}

impl ExecutionStatus {
    /// A transaction's status as the RPC shows it: `success`, or `failure` with the error — the
    /// contract's, or for a transaction skipped inside its block, the ledger refusal it stands
    /// for (docs/LEDGER.md §3).
    pub fn of(status: &atoma_types::TxStatus) -> (Self, Option<ErrorView>) {
        use atoma_types::TxStatus;
        match status {
            TxStatus::Success => (ExecutionStatus::Success, None),
            TxStatus::Failure(e) => (ExecutionStatus::Failure, Some((*e).into())),
            TxStatus::Skipped(reason) => (
                ExecutionStatus::Failure,
                Some(ErrorView {
                    name: reason.name().into(),
                    code: reason.code(),
                    message: reason.message().into(),
                }),
            ),
        }
    }
}

/// The outcome of an executed transaction: what `atoma_executeTransaction`, `atoma_faucet` and
/// `atoma_getTransaction` return.
///
/// A contract refusal is not a JSON-RPC error: the transaction was ordered, consumed its nonce and
/// is on the chain with `status: "failure"` and the contract's `error`, as on Sui.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransactionResult {
    /// The transaction digest (base58).
    #[serde(with = "text")]
    pub digest: Digest,
    /// Whether the contract applied the call.
    pub status: ExecutionStatus,
    /// `{name, code, message}` of the contract error when `status` is `failure`, else `null`.
    pub error: Option<ErrorView>,
    #[serde(with = "text")]
    /// The signer.
    pub sender: Address,
    /// The block that holds the transaction.
    #[serde(with = "u64_str")]
    pub block_height: u64,
    /// The transaction's index in its block.
    #[serde(with = "u64_str")]
    pub tx_index: u64,
    #[serde(with = "u64_str")]
    /// The block's epoch.
    pub epoch: u64,
    /// The block's timestamp.
    #[serde(with = "u64_str")]
    pub timestamp_ms: u64,
    /// Every event the transaction emitted, in order (empty on failure).
    pub events: Vec<EventEnvelope>,
    /// The signed transaction itself: only in `atoma_getTransaction` answers, and absent for the
    /// genesis pseudo-transaction (whose digest is the chain id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction: Option<TransactionData>,
}

impl TransactionResult {
    /// Whether the contract applied the call.
    pub fn is_success(&self) -> bool {
        self.status == ExecutionStatus::Success
    }

    /// The contract's error when it refused the call (and this build knows the error).
    pub fn contract_error(&self) -> Option<ContractError> {
        self.error.as_ref().and_then(ErrorView::contract_error)
    }
}

/// A stored transaction as submitted: its bytes, its signature, and what they say.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransactionData {
    /// `bcs(Transaction)` in base64, exactly as signed.
    #[serde(with = "base64_bytes")]
    pub tx_bytes: Vec<u8>,
    /// The 97-byte `0x00 ‖ signature ‖ public key` in base64.
    #[serde(with = "base64_bytes")]
    pub signature: Vec<u8>,
    /// The sender's sequence number this transaction used.
    #[serde(with = "u64_str")]
    pub nonce: u64,
    /// The entry function called, such as `RegisterNode`, or `Admin::AddModel` for admin calls.
    pub call: String,
    /// The whole call as JSON: `{"<EntryFunction>": {<arguments>}}`, ids and addresses as `0x`
    /// hex, amounts and small ids as JSON numbers, byte vectors as arrays of numbers.
    #[serde(default)]
    pub arguments: Value,
}

impl TransactionData {
    /// The signed transaction these bytes make up.
    pub fn signed(&self) -> SignedTransaction {
        SignedTransaction { tx_bytes: self.tx_bytes.clone(), signature: self.signature.clone() }
    }

    /// The decoded transaction (chain id, sender, nonce and the full call).
    ///
    /// # Errors
    /// `EMalformedTransaction` when `txBytes` is not a canonical BCS transaction.
    pub fn decode(&self) -> Result<Transaction, LedgerError> {
        self.signed().decode_transaction()
    }
}

/// What a transaction would do now: `atoma_dryRunTransaction`. Nothing is stored.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DryRunResult {
    /// The digest the transaction would have.
    #[serde(with = "text")]
    pub digest: Digest,
    /// Whether the contract would apply the call.
    pub status: ExecutionStatus,
    /// `{name, code, message}` of the contract error it would return, else `null`.
    pub error: Option<ErrorView>,
    /// The tip's epoch, which the dry run executed in.
    #[serde(with = "u64_str")]
    pub epoch: u64,
    /// The tip's timestamp, which the dry run executed at.
    #[serde(with = "u64_str")]
    pub timestamp_ms: u64,
    /// The events it would emit. Sampling uses other randomness than the real block will, so a
    /// sampled node may differ.
    pub events: Vec<EventEnvelope>,
}

/// `atoma_getChainInfo`: the chain id and the tip.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChainInfoView {
    /// The genesis digest (base58), which every transaction must name.
    #[serde(with = "text")]
    pub chain_id: Digest,
    #[serde(with = "text")]
    /// Equal to `chainId`.
    pub genesis_digest: Digest,
    #[serde(with = "u64_str")]
    /// The tip's height.
    pub height: u64,
    #[serde(with = "u64_str")]
    /// The tip's epoch.
    pub epoch: u64,
    /// The tip block's timestamp.
    #[serde(with = "u64_str")]
    pub timestamp_ms: u64,
    #[serde(with = "text")]
    /// The tip's block digest (base58).
    pub latest_block_digest: Digest,
    #[serde(with = "text")]
    /// The validator's address.
    pub validator: Address,
    /// Whether the faucet and the time controls are offered.
    pub local_network: bool,
    #[serde(with = "u64_str")]
    /// How long an epoch lasts at least, fixed at genesis.
    pub epoch_duration_ms: u64,
    #[serde(with = "text")]
    /// The contract package id, which every event type names.
    pub package_id: ObjectId,
    #[serde(with = "text")]
    /// The id of the db object.
    pub db_id: ObjectId,
    /// The validator set, when the node answering is one of a set's validators; absent on a
    /// single validator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consensus: Option<ConsensusView>,
}

/// `atoma_getStateDigest`: the digest of the whole state (SPEC §12) after a block, the height
/// and block it follows. Two validators that executed the same blocks answer the same digest at
/// the same height.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateDigestView {
    /// The block the state follows.
    #[serde(with = "u64_str")]
    pub height: u64,
    /// That block's digest (base58).
    #[serde(with = "text")]
    pub block_digest: Digest,
    /// The combined digest of the contract's and the ledger's state after it (base58).
    #[serde(with = "text")]
    pub state_digest: Digest,
}

/// A validator set as the validator answering sees it (`atoma_getChainInfo`'s `consensus`).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsensusView {
    /// The consensus engine: `"simplex"`.
    pub engine: String,
    /// Validators in the set.
    pub validators: u64,
    /// How many of them may be faulty: the largest `f` with `validators ≥ 3f + 1`.
    pub max_faulty: u64,
    /// The answering validator's index in the set.
    pub index: u64,
    /// The newest view with a certificate it saw.
    #[serde(with = "u64_str")]
    pub view: u64,
    /// The newest finalized height it knows of (its executed height is `height`).
    #[serde(with = "u64_str")]
    pub finalized_height: u64,
    /// The leader of the newest view it proposed or verified in, by index.
    pub leader: Option<u64>,
    /// The peers it heard from within the last few seconds, each with the height it executed.
    pub peers: Vec<PeerView>,
    /// The newest executed block's time from its proposal to its execution here.
    #[serde(with = "u64_str")]
    pub finalization_latency_ms: u64,
}

/// A live peer in [`ConsensusView`].
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerView {
    /// Its index in the set.
    pub index: u64,
    /// The newest height it executed.
    #[serde(with = "u64_str")]
    pub height: u64,
}

/// A block header: `atoma_getBlock`, `atoma_getLatestBlock`, `atoma_advanceEpoch`,
/// `atoma_advanceClock`.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockView {
    #[serde(with = "u64_str")]
    /// 0 for genesis, then +1 per block.
    pub height: u64,
    /// The block digest (base58): blake2b-256 of the header's BCS encoding.
    #[serde(with = "text")]
    pub digest: Digest,
    #[serde(with = "text")]
    /// The previous block's digest; for genesis, the chain id.
    pub parent_digest: Digest,
    #[serde(with = "u64_str")]
    /// Milliseconds since the Unix epoch; never below the parent's.
    pub timestamp_ms: u64,
    #[serde(with = "u64_str")]
    /// The epoch the block's transactions executed in.
    pub epoch: u64,
    /// The block's randomness (see docs/LEDGER.md §2 for who knows it when).
    pub random_seed: [u8; 32],
    /// The digests of its transactions, in execution order.
    #[serde(with = "text_vec")]
    pub transactions: Vec<Digest>,
}

/// `atoma_getBalance`: an account's TOMA in base units (0 for an address never seen).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BalanceView {
    #[serde(with = "text")]
    /// The account.
    pub address: Address,
    #[serde(with = "u64_str")]
    /// Base units (1 TOMA = 10^9).
    pub balance: u64,
}

/// `atoma_getNonce`: the nonce the address's next transaction must carry, counting transactions
/// already waiting in the mempool.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NonceView {
    #[serde(with = "text")]
    /// The account.
    pub address: Address,
    #[serde(with = "u64_str")]
    /// The nonce of the account's next transaction.
    pub nonce: u64,
}

/// A page of `atoma_queryEvents`, in Sui's shape. `nextCursor` is the id of the last event
/// returned (or the request's cursor when the page is empty); pass it back to continue.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventPage {
    /// The events, in log order (reversed when `descending`).
    pub data: Vec<EventEnvelope>,
    /// The cursor for the next page.
    pub next_cursor: Option<EventId>,
    /// Whether more events follow.
    pub has_next_page: bool,
}

/// A page of `atoma_listTasks`, in task id order. `nextCursor` is the last task's small id as a
/// decimal string (or the request's cursor when the page is empty).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskPage {
    /// The tasks, in id order.
    pub data: Vec<TaskView>,
    #[serde(with = "opt_u64_str")]
    /// The cursor for the next page.
    pub next_cursor: Option<u64>,
    /// Whether more tasks follow.
    pub has_next_page: bool,
}

/// `GET /health`.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthView {
    /// Always `ok` when the server answers.
    pub status: String,
    #[serde(with = "text")]
    /// The chain id (base58).
    pub chain_id: Digest,
    #[serde(with = "u64_str")]
    /// The tip's height.
    pub height: u64,
    #[serde(with = "u64_str")]
    /// The tip's epoch.
    pub epoch: u64,
}

/// The longest event type name a filter may name (event names are far shorter).
const MAX_EVENT_TYPE_LEN: usize = 128;

/// An event filter as JSON, for `atoma_queryEvents` and `atoma_subscribeEvents`:
/// `"All"`, `{"EventType": "StackCreatedEvent"}`, `{"Sender": "0x…"}`,
/// `{"Transaction": "<base58 digest>"}`, `{"Node": "3"}`, `{"Task": "1"}`, `{"Stack": "7"}`.
pub fn filter_to_json(filter: &EventFilter) -> Value {
    let tagged = |tag: &str, value: Value| Value::Object(Map::from_iter([(tag.to_string(), value)]));
    match filter {
        EventFilter::All => Value::String("All".into()),
        EventFilter::EventType(name) => tagged("EventType", Value::String(name.clone())),
        EventFilter::Sender(address) => tagged("Sender", Value::String(address.to_string())),
        EventFilter::Transaction(digest) => tagged("Transaction", Value::String(digest.to_string())),
        EventFilter::Node(id) => tagged("Node", Value::String(id.to_string())),
        EventFilter::Task(id) => tagged("Task", Value::String(id.to_string())),
        EventFilter::Stack(id) => tagged("Stack", Value::String(id.to_string())),
    }
}

/// Reads an event filter written by [`filter_to_json`], and also: `null` or `{"All": …}` for
/// every event; `{"MoveEventType": "0x…::db::StackCreatedEvent"}` (Sui's name, the last segment
/// is used); small ids as numbers, decimal strings or `{"inner": "7"}`.
///
/// # Errors
/// A sentence saying what was expected.
pub fn filter_from_json(value: &Value) -> Result<EventFilter, String> {
    const EXPECTED: &str = "expected \"All\" or one of {\"EventType\": name}, {\"Sender\": address}, \
        {\"Transaction\": digest}, {\"Node\": id}, {\"Task\": id}, {\"Stack\": id}";
    let (tag, inner) = match value {
        Value::Null => return Ok(EventFilter::All),
        Value::String(s) if s == "All" => return Ok(EventFilter::All),
        Value::Object(map) if map.len() == 1 => map.iter().next().ok_or(EXPECTED)?,
        _ => return Err(EXPECTED.into()),
    };
    let string = || inner.as_str().ok_or_else(|| format!("{tag}: expected a string"));
    let small_id = || small_id_of(inner).ok_or_else(|| format!("{tag}: expected a small id"));
    match tag.as_str() {
        "All" => Ok(EventFilter::All),
        "EventType" | "MoveEventType" => event_type_name(string()?).map(EventFilter::EventType),
        "Sender" => string()?.parse().map(EventFilter::Sender).map_err(|e| format!("Sender: {e}")),
        "Transaction" => {
            string()?.parse().map(EventFilter::Transaction).map_err(|e| format!("Transaction: {e}"))
        }
        "Node" => small_id().map(|id| EventFilter::Node(NodeSmallId(id))),
        "Task" => small_id().map(|id| EventFilter::Task(TaskSmallId(id))),
        "Stack" => small_id().map(|id| EventFilter::Stack(StackSmallId(id))),
        _ => Err(EXPECTED.into()),
    }
}

/// The bare event name of `EventType` or Sui's `MoveEventType` (`0x…::db::Name`).
fn event_type_name(text: &str) -> Result<String, String> {
    let name = text.rsplit("::").next().unwrap_or(text);
    let valid = !name.is_empty()
        && name.len() <= MAX_EVENT_TYPE_LEN
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if valid { Ok(name.to_string()) } else { Err(format!("EventType: not an event name: {text:?}")) }
}

/// A small id from a number, a decimal string, or `{"inner": "7"}`, as filters and the RPC's
/// parameters accept it.
pub fn small_id_of(value: &Value) -> Option<u64> {
    match value {
        Value::Object(map) if map.len() == 1 => map.get("inner").and_then(wire::u64_of),
        other => wire::u64_of(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn filters_round_trip_and_accept_sui_spellings() {
        let filters = [
            EventFilter::All,
            EventFilter::EventType("StackCreatedEvent".into()),
            EventFilter::Sender(Address([7; 32])),
            EventFilter::Transaction(Digest([9; 32])),
            EventFilter::Node(NodeSmallId(3)),
            EventFilter::Task(TaskSmallId(1)),
            EventFilter::Stack(StackSmallId(u64::MAX)),
        ];
        for filter in filters {
            assert_eq!(filter_from_json(&filter_to_json(&filter)), Ok(filter));
        }
        let sui = json!({"MoveEventType": "0x2::db::NodeRegisteredEvent"});
        assert_eq!(filter_from_json(&sui), Ok(EventFilter::EventType("NodeRegisteredEvent".into())));
        assert_eq!(filter_from_json(&json!({"Node": {"inner": "4"}})), Ok(EventFilter::Node(NodeSmallId(4))));
        assert_eq!(filter_from_json(&json!({"Task": 2})), Ok(EventFilter::Task(TaskSmallId(2))));
        assert_eq!(filter_from_json(&Value::Null), Ok(EventFilter::All));
        for bad in [
            json!("Everything"),
            json!({"Node": -1}),
            json!({"Sender": "0x12"}),
            json!({"EventType": ""}),
            json!({"EventType": "a b"}),
            json!({"Node": 1, "Task": 2}),
            json!([1]),
        ] {
            assert!(filter_from_json(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn small_ids_take_three_spellings() {
        assert_eq!(small_id_of(&json!(7)), Some(7));
        assert_eq!(small_id_of(&json!("7")), Some(7));
        assert_eq!(small_id_of(&json!({"inner": "7"})), Some(7));
        assert_eq!(small_id_of(&json!({"inner": 7, "x": 1})), None);
        assert_eq!(small_id_of(&json!("0x7")), None);
    }
}
