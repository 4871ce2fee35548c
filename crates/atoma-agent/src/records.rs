//! What the agent remembers, in its store (docs/AGENT.md §1): the stacks sampled to its nodes
//! with every request it served on them, the attestations and disputes it was asked to work on,
//! the transactions it sent and has not yet seen the outcome of, and counters for the operator.
//!
//! Every record is BCS in a redb table of `agent.redb`. A request's transcript entry and the
//! stack's unit count move in one transaction ([`AgentStore::record_exchange`]); a transaction is
//! recorded before it is sent ([`AgentStore::put_sent`]) and forgotten once its outcome is known.

use redb::{ReadableDatabase as _, ReadableTable as _, TableDefinition, WriteTransaction};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::store::{AgentStore, StoreError};

const STACKS: TableDefinition<u64, &[u8]> = TableDefinition::new("stacks");
/// `(stack, position)`: the requests served on a stack, in serving order.
const EXCHANGES: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("exchanges");
/// `(stack, node)`: attestations one of our nodes was asked for.
const ATTESTATIONS: TableDefinition<(u64, u64), ()> = TableDefinition::new("attestation_jobs");
/// Stacks in dispute that an oracle among our nodes may resolve.
const DISPUTES: TableDefinition<u64, ()> = TableDefinition::new("dispute_jobs");
/// Transaction digest → what it was for and its signed bytes.
const SENT: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("sent");
const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");

/// Where a stack of ours stands.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Phase {
    /// Requests are served.
    Serving,
    /// No more requests: the settlement is being made.
    Settling,
    /// The settlement ticket exists: waiting for its window and the claim.
    Settled,
    /// Nothing more to do: claimed, expired, overturned, or settled by someone else.
    Closed,
}

impl Phase {
    /// The phase's name in the operator's view.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Serving => "serving",
            Phase::Settling => "settling",
            Phase::Settled => "settled",
            Phase::Closed => "closed",
        }
    }
}

/// A stack sampled to one of our nodes.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct StackRecord {
    /// The selected node (ours).
    pub node: u64,
    /// The stack's task.
    pub task: u64,
    /// Units bought.
    pub units: u64,
    /// Units served so far.
    pub used: u64,
    /// Requests served so far.
    pub requests: u64,
    /// When the last request was served (Unix ms, the agent's clock); 0 before the first.
    pub last_used_ms: u64,
    /// Where it stands.
    pub phase: Phase,
    /// Why it closed, once it has.
    pub outcome: Option<String>,
}

/// One request served on a stack: what the transcript holds and the settlement commits to.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Exchange {
    /// The API path, such as `/v1/chat/completions`.
    pub endpoint: String,
    /// The request as sent to the backend (model named as on chain).
    pub input: Vec<u8>,
    /// The answer's canonical content (docs/AGENT.md §4).
    pub output: Vec<u8>,
    /// Units counted.
    pub units: u64,
}

/// What a sent transaction was for.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Purpose {
    /// `TrySettleStack` for a stack of ours.
    Settle { stack: u64 },
    /// `SubmitStackSettlementAttestation` by one of our nodes.
    Attest { stack: u64, node: u64 },
    /// `ResolveStackDispute` by one of our oracle nodes.
    Resolve { stack: u64, node: u64 },
    /// `ClaimFunds` for stacks of one node.
    Claim { node: u64, stacks: Vec<u64> },
    /// `SetNodeEndpoint`.
    Endpoint { node: u64 },
}

/// A transaction recorded before it was sent.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Sent {
    /// What it is for.
    pub purpose: Purpose,
    /// The signed transaction's bytes.
    pub tx: Vec<u8>,
}

fn storage<E: std::error::Error + Send + Sync + 'static>(what: &'static str) -> impl FnOnce(E) -> StoreError {
    move |source| StoreError::Storage { what, source: Box::new(source) }
}

fn decode<T: DeserializeOwned>(bytes: &[u8], what: &'static str) -> Result<T, StoreError> {
    bcs::from_bytes(bytes).map_err(|_| StoreError::Damaged(what))
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    atoma_types::codec::encode(value)
}

/// A stack's record read inside a write transaction.
///
/// # Errors
/// [`StoreError`] when it cannot be read.
pub fn stack_in(txn: &WriteTransaction, stack: u64) -> Result<Option<StackRecord>, StoreError> {
    let table = txn.open_table(STACKS).map_err(storage("cannot be read"))?;
    let value = table.get(stack).map_err(storage("cannot be read"))?;
    value.map(|v| decode(v.value(), "stack record")).transpose()
}

/// Writes a stack's record inside a write transaction.
///
/// # Errors
/// [`StoreError`] when it cannot be written.
pub fn put_stack_in(txn: &WriteTransaction, stack: u64, record: &StackRecord) -> Result<(), StoreError> {
    let mut table = txn.open_table(STACKS).map_err(storage("cannot be written"))?;
    table.insert(stack, encode(record).as_slice()).map_err(storage("cannot be written"))?;
    Ok(())
}

/// Records an attestation job inside a write transaction.
///
/// # Errors
/// [`StoreError`] when it cannot be written.
pub fn add_attestation_in(txn: &WriteTransaction, stack: u64, node: u64) -> Result<(), StoreError> {
    let mut table = txn.open_table(ATTESTATIONS).map_err(storage("cannot be written"))?;
    table.insert((stack, node), ()).map_err(storage("cannot be written"))?;
    Ok(())
}

/// Records a dispute to look at inside a write transaction.
///
/// # Errors
/// [`StoreError`] when it cannot be written.
pub fn add_dispute_in(txn: &WriteTransaction, stack: u64) -> Result<(), StoreError> {
    let mut table = txn.open_table(DISPUTES).map_err(storage("cannot be written"))?;
    table.insert(stack, ()).map_err(storage("cannot be written"))?;
    Ok(())
}

/// Adds `amount` to a counter inside a write transaction.
///
/// # Errors
/// [`StoreError`] when it cannot be written.
pub fn count_in(txn: &WriteTransaction, counter: &str, amount: u64) -> Result<(), StoreError> {
    let mut table = txn.open_table(COUNTERS).map_err(storage("cannot be written"))?;
    let old = table.get(counter).map_err(storage("cannot be read"))?.map_or(0, |v| v.value());
    table.insert(counter, old.saturating_add(amount)).map_err(storage("cannot be written"))?;
    Ok(())
}

impl AgentStore {
    /// Creates the record tables (idempotent).
    ///
    /// # Errors
    /// [`StoreError`] when they cannot be written.
    pub fn create_records(&self) -> Result<(), StoreError> {
        let txn = self.database().begin_write().map_err(storage("cannot be written"))?;
        txn.open_table(STACKS).map_err(storage("cannot be written"))?;
        txn.open_table(EXCHANGES).map_err(storage("cannot be written"))?;
        txn.open_table(ATTESTATIONS).map_err(storage("cannot be written"))?;
        txn.open_table(DISPUTES).map_err(storage("cannot be written"))?;
        txn.open_table(SENT).map_err(storage("cannot be written"))?;
        txn.open_table(COUNTERS).map_err(storage("cannot be written"))?;
        txn.commit().map_err(storage("cannot be written"))?;
        Ok(())
    }

    /// Runs `f` in one durable write transaction.
    ///
    /// # Errors
    /// [`StoreError`], or `f`'s error (nothing is then written).
    pub fn write<T>(
        &self,
        f: impl FnOnce(&WriteTransaction) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let txn = self.database().begin_write().map_err(storage("cannot be written"))?;
        let value = f(&txn)?;
        txn.commit().map_err(storage("cannot be written"))?;
        Ok(value)
    }

    /// A stack's record.
    ///
    /// # Errors
    /// [`StoreError`] when it cannot be read.
    pub fn stack(&self, stack: u64) -> Result<Option<StackRecord>, StoreError> {
        let txn = self.database().begin_read().map_err(storage("cannot be read"))?;
        let table = txn.open_table(STACKS).map_err(storage("cannot be read"))?;
        let value = table.get(stack).map_err(storage("cannot be read"))?;
        value.map(|v| decode(v.value(), "stack record")).transpose()
    }

    /// Every stack record, by stack id.
    ///
    /// # Errors
    /// [`StoreError`] when they cannot be read.
    pub fn stacks(&self) -> Result<Vec<(u64, StackRecord)>, StoreError> {
        let txn = self.database().begin_read().map_err(storage("cannot be read"))?;
        let table = txn.open_table(STACKS).map_err(storage("cannot be read"))?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(storage("cannot be read"))? {
            let (key, value) = entry.map_err(storage("cannot be read"))?;
            out.push((key.value(), decode(value.value(), "stack record")?));
        }
        Ok(out)
    }

    /// Records one served request and counts its units on the stack, in one durable
    /// transaction: the transcript entry exists before the answer leaves. Returns the record
    /// after the request.
    ///
    /// # Errors
    /// [`StoreError`]; [`StoreError::Damaged`] when the stack has no record.
    pub fn record_exchange(
        &self,
        stack: u64,
        exchange: &Exchange,
        now_ms: u64,
    ) -> Result<StackRecord, StoreError> {
        self.write(|txn| {
            let mut record = stack_in(txn, stack)?.ok_or(StoreError::Damaged("stack record"))?;
            let units = exchange.units.min(record.units.saturating_sub(record.used));
            let counted = Exchange { units, ..exchange.clone() };
            {
                let mut table = txn.open_table(EXCHANGES).map_err(storage("cannot be written"))?;
                table
                    .insert((stack, record.requests), encode(&counted).as_slice())
                    .map_err(storage("cannot be written"))?;
            }
            record.requests = record.requests.saturating_add(1);
            record.used = record.used.saturating_add(units);
            record.last_used_ms = now_ms;
            put_stack_in(txn, stack, &record)?;
            count_in(txn, "requests_served", 1)?;
            count_in(txn, "units_served", units)?;
            Ok(record)
        })
    }

    /// The requests served on a stack, in serving order.
    ///
    /// # Errors
    /// [`StoreError`] when they cannot be read.
    pub fn exchanges(&self, stack: u64) -> Result<Vec<Exchange>, StoreError> {
        let txn = self.database().begin_read().map_err(storage("cannot be read"))?;
        let table = txn.open_table(EXCHANGES).map_err(storage("cannot be read"))?;
        let mut out = Vec::new();
        for entry in table.range((stack, 0)..=(stack, u64::MAX)).map_err(storage("cannot be read"))? {
            let (_, value) = entry.map_err(storage("cannot be read"))?;
            out.push(decode(value.value(), "transcript entry")?);
        }
        Ok(out)
    }

    /// The attestation jobs, as `(stack, node)`.
    ///
    /// # Errors
    /// [`StoreError`] when they cannot be read.
    pub fn attestation_jobs(&self) -> Result<Vec<(u64, u64)>, StoreError> {
        let txn = self.database().begin_read().map_err(storage("cannot be read"))?;
        let table = txn.open_table(ATTESTATIONS).map_err(storage("cannot be read"))?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(storage("cannot be read"))? {
            out.push(entry.map_err(storage("cannot be read"))?.0.value());
        }
        Ok(out)
    }

    /// Forgets an attestation job.
    ///
    /// # Errors
    /// [`StoreError`] when it cannot be written.
    pub fn finish_attestation(&self, stack: u64, node: u64, counter: Option<&str>) -> Result<(), StoreError> {
        self.write(|txn| {
            let mut table = txn.open_table(ATTESTATIONS).map_err(storage("cannot be written"))?;
            table.remove((stack, node)).map_err(storage("cannot be written"))?;
            if let Some(counter) = counter {
                count_in(txn, counter, 1)?;
            }
            Ok(())
        })
    }

    /// The stacks in dispute to look at.
    ///
    /// # Errors
    /// [`StoreError`] when they cannot be read.
    pub fn dispute_jobs(&self) -> Result<Vec<u64>, StoreError> {
        let txn = self.database().begin_read().map_err(storage("cannot be read"))?;
        let table = txn.open_table(DISPUTES).map_err(storage("cannot be read"))?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(storage("cannot be read"))? {
            out.push(entry.map_err(storage("cannot be read"))?.0.value());
        }
        Ok(out)
    }

    /// Forgets a dispute job.
    ///
    /// # Errors
    /// [`StoreError`] when it cannot be written.
    pub fn finish_dispute(&self, stack: u64, counter: Option<&str>) -> Result<(), StoreError> {
        self.write(|txn| {
            let mut table = txn.open_table(DISPUTES).map_err(storage("cannot be written"))?;
            table.remove(stack).map_err(storage("cannot be written"))?;
            if let Some(counter) = counter {
                count_in(txn, counter, 1)?;
            }
            Ok(())
        })
    }

    /// Records a transaction before it is sent.
    ///
    /// # Errors
    /// [`StoreError`] when it cannot be written.
    pub fn put_sent(&self, digest: &[u8; 32], sent: &Sent) -> Result<(), StoreError> {
        self.write(|txn| {
            let mut table = txn.open_table(SENT).map_err(storage("cannot be written"))?;
            table.insert(digest, encode(sent).as_slice()).map_err(storage("cannot be written"))?;
            Ok(())
        })
    }

    /// Forgets a sent transaction inside a write transaction (its outcome is known).
    ///
    /// # Errors
    /// [`StoreError`] when it cannot be written.
    pub fn remove_sent_in(txn: &WriteTransaction, digest: &[u8; 32]) -> Result<(), StoreError> {
        let mut table = txn.open_table(SENT).map_err(storage("cannot be written"))?;
        table.remove(digest).map_err(storage("cannot be written"))?;
        Ok(())
    }

    /// The transactions sent whose outcome is not yet known.
    ///
    /// # Errors
    /// [`StoreError`] when they cannot be read.
    pub fn sent(&self) -> Result<Vec<([u8; 32], Sent)>, StoreError> {
        let txn = self.database().begin_read().map_err(storage("cannot be read"))?;
        let table = txn.open_table(SENT).map_err(storage("cannot be read"))?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(storage("cannot be read"))? {
            let (key, value) = entry.map_err(storage("cannot be read"))?;
            out.push((*key.value(), decode(value.value(), "sent transaction")?));
        }
        Ok(out)
    }

    /// Every counter, by name.
    ///
    /// # Errors
    /// [`StoreError`] when they cannot be read.
    pub fn counters(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let txn = self.database().begin_read().map_err(storage("cannot be read"))?;
        let table = txn.open_table(COUNTERS).map_err(storage("cannot be read"))?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(storage("cannot be read"))? {
            let (key, value) = entry.map_err(storage("cannot be read"))?;
            out.push((key.value().to_string(), value.value()));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> StackRecord {
        StackRecord {
            node: 1,
            task: 2,
            units: 100,
            used: 0,
            requests: 0,
            last_used_ms: 0,
            phase: Phase::Serving,
            outcome: None,
        }
    }

    #[test]
    fn exchanges_and_units_move_together_and_survive_a_reopen() {
        let dir = tempfile::tempdir().expect("a dir");
        let path = dir.path().join("agent.redb");
        {
            let store = AgentStore::open(&path).expect("opens");
            store.create_records().expect("tables");
            store.write(|txn| put_stack_in(txn, 5, &record())).expect("writes");
            for i in 0..3u8 {
                let exchange = Exchange {
                    endpoint: "/v1/completions".into(),
                    input: vec![i],
                    output: vec![i, i],
                    units: 7,
                };
                store.record_exchange(5, &exchange, 1_000 + u64::from(i)).expect("records");
            }
            // More than is left is counted as what is left.
            let greedy =
                Exchange { endpoint: "/v1/completions".into(), input: vec![9], output: vec![], units: 500 };
            assert_eq!(store.record_exchange(5, &greedy, 2_000).expect("records").used, 100);
            let missing = Exchange { endpoint: String::new(), input: vec![], output: vec![], units: 1 };
            assert!(store.record_exchange(6, &missing, 0).is_err(), "no record, no exchange");
        }
        let store = AgentStore::open(&path).expect("reopens");
        let record = store.stack(5).expect("reads").expect("the record");
        assert_eq!((record.used, record.requests, record.last_used_ms), (100, 4, 2_000));
        let exchanges = store.exchanges(5).expect("reads");
        let inputs: Vec<Vec<u8>> = exchanges.iter().map(|e| e.input.clone()).collect();
        assert_eq!(inputs, vec![vec![0], vec![1], vec![2], vec![9]]);
        assert_eq!(exchanges[3].units, 79, "capped to what was left");
        assert!(store.exchanges(6).expect("reads").is_empty());
        let counters = store.counters().expect("reads");
        assert!(counters.contains(&("units_served".to_string(), 100)));
    }
}
