//! Recovering the state from the store: the newest usable snapshot and a replay of the blocks
//! after it, repairing what can be repaired on the way; and rebuilding the derived indexes.

use std::collections::BTreeMap;

use atoma_contract::Address;

use crate::digest::Digest;
use crate::error::{ChainError, Damage};
use crate::execution::{VerifiedBlock, check_follows, execute_block};
use crate::state::{ChainParams, ChainState};
use crate::store::{DAMAGED_STORE_HINT, Snapshot, Store, block_entries};
use atoma_types::TxOutcome;

/// Writes the indexes again from the blocks, found damaged for `why`. A block that is not whole
/// makes them impossible to rebuild (`ECorruptStore`, saying what to do); any other failure — a
/// full disk, an I/O error — is passed on as it is: the store is not known to be damaged.
pub(crate) fn rebuild_indexes(
    store: &Store,
    nonces: &BTreeMap<Address, u64>,
    why: &str,
) -> Result<(), ChainError> {
    store.rebuild_indexes(nonces).map_err(|e| match e {
        ChainError::Corrupt(e) => ChainError::corrupt(format!(
            "{}: the indexes are damaged ({why}) and cannot be rebuilt: {e}; {DAMAGED_STORE_HINT}",
            store.path().display()
        )),
        other => other,
    })
}

/// What recovery repaired, and what is left for the caller to repair.
#[derive(Default)]
pub(super) struct Repairs {
    pub(super) done: Vec<String>,
    /// Why the held index entries could not be gathered from the blocks.
    pub(super) index_damage: Option<Damage>,
    /// The heights of the damaged snapshots passed over, to be deleted: the replay vouched for
    /// the blocks up to the tip, and kept they would be passed over at every start and could
    /// outlive a whole snapshot when old ones are pruned.
    pub(super) damaged_snapshots: Vec<u64>,
}

/// The state after the last committed block: the newest usable snapshot plus the blocks after
/// it. Also gathers the store's held index entries: from the stored blocks up to the snapshot,
/// and from the replayed blocks' outcomes after it.
pub(super) fn recover(store: &Store, params: &ChainParams) -> Result<(ChainState, Repairs), ChainError> {
    let mut repairs = Repairs::default();
    let (snapshot, state) = usable_snapshot(store, &mut repairs)?;
    let tip = store.tip_height()?;
    let indexed = match store.rebuild_unindexed(snapshot.height) {
        Ok(indexed) => Some(indexed),
        Err(ChainError::Corrupt(why)) => {
            repairs.index_damage = Some(why);
            None
        }
        Err(e) => return Err(e),
    };
    let mut damaged_digests = DamagedDigests::new();
    let on_replayed = &mut |height, outcomes: &[TxOutcome], nonces: &[(Address, u64)]| {
        if indexed.is_some_and(|indexed| height > indexed) {
            store.hold(&block_entries(outcomes, nonces));
        }
    };
    let state = replay(store, params, state, snapshot.height, tip, Some(&mut damaged_digests), on_replayed)
        .map_err(|e| match e {
        ChainError::Corrupt(why) => ChainError::corrupt(format!(
            "{}: {why}. The blocks after snapshot {} (the newest usable one) must be replayed, and a \
             single validator has no other copy of them; {DAMAGED_STORE_HINT}",
            store.path().display(),
            snapshot.height
        )),
        other => other,
    })?;
    // The tip's header is replayed only when a snapshot is older than it.
    if store.header(tip)?.is_none_or(|h| h.digest() != state.ledger.block_digest) {
        return Err(ChainError::corrupt(format!(
            "{}: the header of block {tip}, the tip, is not the block its snapshot recorded; {DAMAGED_STORE_HINT}",
            store.path().display()
        )));
    }
    // A recorded digest is a copy of the state after its block; the replay that reached the tip
    // from a whole snapshot through checked blocks vouches for the state it passed there.
    for (height, digest, why) in damaged_digests {
        store.rewrite_state_digest(height, &digest)?;
        repairs.done.push(format!("{why}; it was written again from the replay, which passed that height"));
    }
    Ok((state, repairs))
}

/// The newest snapshot that is whole, matches its own digest and the state digest recorded at
/// its height, restored; each newer one passed over is said in `repairs` and listed for deletion.
fn usable_snapshot(store: &Store, repairs: &mut Repairs) -> Result<(Snapshot, ChainState), ChainError> {
    let mut passed_over = Vec::new();
    for height in store.snapshot_heights()?.into_iter().rev() {
        match restore_snapshot(store, height, &mut repairs.done) {
            Ok((snapshot, state)) => {
                if !passed_over.is_empty() {
                    let deleted = match repairs.damaged_snapshots.as_slice() {
                        [one] => format!("the damaged snapshot at height {one} was deleted"),
                        many => format!(
                            "the damaged snapshots at heights {} were deleted",
                            many.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
                        ),
                    };
                    repairs.done.push(format!(
                        "recovered from the snapshot at height {height} and replayed the blocks after it, \
                         because {}; {deleted}",
                        passed_over.join("; ")
                    ));
                }
                return Ok((snapshot, state));
            }
            Err(ChainError::Corrupt(why)) => {
                passed_over.push(why.to_string());
                repairs.damaged_snapshots.push(height);
            }
            Err(e) => return Err(e),
        }
    }
    Err(ChainError::corrupt(format!(
        "{}: no snapshot is usable, not even the genesis one ({}); {DAMAGED_STORE_HINT}",
        store.path().display(),
        if passed_over.is_empty() { "there are none".into() } else { passed_over.join("; ") }
    )))
}

/// The snapshot at `height`, restored and checked. The state digest recorded at its height is a
/// second copy of the snapshot's own: if that copy is damaged but the snapshot is whole (its
/// checksum and its digest hold), the copy is written again and `repairs` says so.
pub(super) fn restore_snapshot(
    store: &Store,
    height: u64,
    repairs: &mut Vec<String>,
) -> Result<(Snapshot, ChainState), ChainError> {
    let snapshot = store
        .snapshot_at(height)?
        .ok_or_else(|| ChainError::corrupt(format!("the snapshot at height {height} is missing")))?;
    let state = snapshot.restore()?;
    match store.state_digest_at(height) {
        Ok(recorded) if recorded == Some(snapshot.digest) => {}
        Ok(_) => {
            return Err(ChainError::corrupt(format!(
                "the snapshot at height {height} disagrees with the state digest recorded there"
            )));
        }
        Err(ChainError::Corrupt(why)) => {
            store.rewrite_state_digest(height, &snapshot.digest)?;
            repairs.push(format!("{why}; it was written again from the whole snapshot at that height"));
        }
        Err(e) => return Err(e),
    }
    Ok((snapshot, state))
}

/// Blocks each reader thread reads ahead of execution during a replay.
const REPLAY_READ_AHEAD: usize = 4;
/// Threads reading and decoding blocks during a replay (alternate heights).
const REPLAY_READERS: u64 = 2;

/// What a replay hands on for each block: its height, outcomes and senders' new nonces.
type OnReplayed<'a> = dyn FnMut(u64, &[TxOutcome], &[(Address, u64)]) + 'a;

/// Re-executes the stored blocks after `from` up to `tip` on `state` without writing them,
/// checking the state digest wherever one was recorded (at snapshot heights). Reader threads
/// read and decode the blocks (and hash their transactions) while this one executes them in
/// height order.
pub(super) fn replay(
    store: &Store,
    params: &ChainParams,
    mut state: ChainState,
    from: u64,
    tip: u64,
    mut damaged_digests: Option<&mut DamagedDigests>,
    on_replayed: &mut OnReplayed<'_>,
) -> Result<ChainState, ChainError> {
    let first = from.saturating_add(1);
    std::thread::scope(|scope| {
        let readers: Vec<_> = (0..REPLAY_READERS)
            .map(|reader| {
                let (blocks, ready) = std::sync::mpsc::sync_channel(REPLAY_READ_AHEAD);
                let heights = (first.saturating_add(reader)..=tip).step_by(REPLAY_READERS as usize);
                scope.spawn(move || {
                    for height in heights {
                        let block = read_stored_block(store, params, height);
                        let failed = block.is_err();
                        // The executor stops listening when it fails.
                        if blocks.send(block).is_err() || failed {
                            break;
                        }
                    }
                });
                ready
            })
            .collect();
        for (height, ready) in (first..=tip).zip(readers.iter().cycle()) {
            let stopped = || ChainError::corrupt(format!("block {height} was not read"));
            let (block, recorded) = ready.recv().map_err(|_| stopped())??;
            check_follows(&state, &block, params)
                .map_err(|e| ChainError::corrupt(format!("block {height}: {e}")))?;
            let (outcomes, nonces) = execute_block(&mut state, &block);
            // Digests are recorded at snapshot heights only.
            match recorded {
                Recorded::Digest(Some(recorded)) if state.digest() != recorded => {
                    return Err(ChainError::corrupt(format!("block {height} replays to a different state")));
                }
                Recorded::Digest(_) => {}
                Recorded::Damaged(why) => match damaged_digests.as_deref_mut() {
                    Some(damaged) => damaged.push((height, state.digest(), why)),
                    None => return Err(ChainError::Corrupt(why)),
                },
            }
            on_replayed(height, &outcomes, &nonces);
        }
        Ok(state)
    })
}

/// A stored block for replay, with the state digest recorded after it. Stored blocks were
/// verified before they were committed; their transactions must still decode and be the ones
/// the header names.
fn read_stored_block(
    store: &Store,
    params: &ChainParams,
    height: u64,
) -> Result<(VerifiedBlock, Recorded), ChainError> {
    let corrupt = |what: String| ChainError::corrupt(what);
    let block = store.block(height)?.ok_or_else(|| corrupt(format!("block {height} is missing")))?;
    let block =
        VerifiedBlock::from_own_store(block, params).map_err(|e| corrupt(format!("block {height}: {e}")))?;
    let recorded = match store.state_digest_at(height) {
        Ok(digest) => Recorded::Digest(digest),
        Err(ChainError::Corrupt(why)) => Recorded::Damaged(why),
        Err(e) => return Err(e),
    };
    Ok((block, recorded))
}

/// The state digest recorded after a stored block (at snapshot heights only).
enum Recorded {
    Digest(Option<Digest>),
    /// The record is damaged (why): nothing to check the replay against at this height.
    Damaged(Damage),
}

/// Recorded state digests a replay found damaged: the height, the digest the replay reached
/// there (which a caller that trusts the replay may write again), and why.
type DamagedDigests = Vec<(u64, Digest, Damage)>;
