//! What happened off-chain: the requests a stack's node served and the units its owner counted.
//!
//! The chain never sees inference; parties only commit to it (SPEC §6.3). The simulator needs a
//! ground truth that every honest party agrees on, so it derives one per stack from the run's
//! seed and the stack's small id: the same stack always had the same requests, outputs and used
//! units, before and after a crash. Honest parties commit to these outputs; liars commit to
//! altered outputs or claim other units; the oracle judges by them.

use atoma_contract::commitment::{settlement_commitment, stack_merkle_leaf};
use atoma_contract::hash::blake2b256;
use atoma_contract::state::Stack;

/// A stack's ground truth.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct StackTruth {
    /// `(input, output)` of each request the selected node served, in order.
    pub requests: Vec<(Vec<u8>, Vec<u8>)>,
    /// The units the owner counted (1..=the stack's units): what an honest node claims.
    pub used_units: u64,
    /// The stack's `k` (attester slots), which the committed proof covers.
    pub k: u64,
}

impl StackTruth {
    /// The truth of `stack` in the run of `seed`.
    pub fn of(seed: u64, stack: &Stack) -> Self {
        let root = blake2b256(&[b"atoma-sim-truth", &seed.to_le_bytes(), &stack.small_id.0.to_le_bytes()]);
        let count = 1 + usize::from(root[0] % 3);
        let requests = (0..count)
            .map(|i| {
                let i = [u8::try_from(i).unwrap_or(u8::MAX)];
                let input = blake2b256(&[&root, b"input", &i]).to_vec();
                let output = blake2b256(&[&root, b"output", &i])[..usize::from(root[1] % 24 + 8)].to_vec();
                (input, output)
            })
            .collect();
        let draw = u64::from_le_bytes(root[8..16].try_into().unwrap_or_default());
        let used_units = 1 + draw % stack.num_compute_units.max(1);
        StackTruth { requests, used_units, k: stack.terms.cross_validation_extra_nodes_count }
    }

    /// The honest `(committed_stack_proof, leaf_0)` of the selected node.
    pub fn honest(&self) -> ([u8; 32], [u8; 32]) {
        commitment(&self.requests, self.k)
    }

    /// The leaf of the attester listed at `position` (party `position + 1`).
    pub fn attester_leaf(&self, position: usize) -> [u8; 32] {
        let party = u64::try_from(position).unwrap_or(u64::MAX).saturating_add(1);
        stack_merkle_leaf(party, &self.requests).unwrap_or([0; 32])
    }

    /// A liar's `(proof, leaf)`: the commitment to outputs it did not really compute.
    pub fn forged(&self) -> ([u8; 32], [u8; 32]) {
        let forged: Vec<(Vec<u8>, Vec<u8>)> = self
            .requests
            .iter()
            .map(|(input, output)| (input.clone(), [output.as_slice(), b"-made-up"].concat()))
            .collect();
        commitment(&forged, self.k)
    }
}

/// When an honest attester listed at `position` has re-run the transcript of `stack`, settled
/// at `settled_ms`, and sends its attestation: 1 ms to half the stack's settlement timeout
/// later, drawn from the run's `seed`. Honest attesters answer within the settlement timeout,
/// the deadline the dispute window's floor in time keeps open for them.
pub fn attester_ready_ms(seed: u64, stack: &Stack, settled_ms: u64, position: usize) -> u64 {
    let position = u64::try_from(position).unwrap_or(u64::MAX);
    let root = blake2b256(&[
        b"atoma-sim-attester",
        &seed.to_le_bytes(),
        &stack.small_id.0.to_le_bytes(),
        &position.to_le_bytes(),
    ]);
    let draw = u64::from_le_bytes(root[..8].try_into().unwrap_or_default());
    let half = (stack.terms.settlement_timeout_ms / 2).max(1);
    settled_ms.saturating_add(1 + draw % half)
}

fn commitment(requests: &[(Vec<u8>, Vec<u8>)], k: u64) -> ([u8; 32], [u8; 32]) {
    // The requests are a few dozen bytes each, far below the format's u32 limit.
    settlement_commitment(requests, k).unwrap_or(([0; 32], [0; 32]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use atoma_contract::commitment::committed_stack_proof;

    fn stack(id: u64, units: u64, k: u64) -> Stack {
        use atoma_contract::enums::SecurityLevel;
        use atoma_contract::state::StackTerms;
        use atoma_contract::{NodeSmallId, ObjectId, StackSmallId, TaskSmallId};
        Stack {
            id: ObjectId([0; 32]),
            small_id: StackSmallId(id),
            badge_id: ObjectId([1; 32]),
            task_small_id: TaskSmallId(1),
            selected_node: NodeSmallId(1),
            num_compute_units: units,
            price_per_compute_unit: 1,
            security_level: SecurityLevel::SamplingConsensus,
            escrow: units,
            terms: StackTerms {
                sampling_consensus_charge_permille: 0,
                cross_validation_extra_nodes_charge_permille: 0,
                cross_validation_extra_nodes_count: k,
                cross_validation_probability_permille: 0,
                stack_dispute_settlement_delay_epochs: 1,
                stack_expiration_epochs: 1,
                dispute_resolution_deadline_epochs: 1,
                settlement_timeout_ms: 1,
            },
            created_epoch: 0,
            created_ms: 0,
            ticket: None,
        }
    }

    #[test]
    fn truth_is_fixed_by_seed_and_stack_and_honest_parties_agree() {
        let s = stack(4, 50, 2);
        let t = StackTruth::of(9, &s);
        assert_eq!(t, StackTruth::of(9, &s));
        assert_ne!(t.requests, StackTruth::of(10, &s).requests);
        assert!((1..=50).contains(&t.used_units));
        let (proof, leaf0) = t.honest();
        assert_eq!(committed_stack_proof(&[leaf0, t.attester_leaf(0), t.attester_leaf(1)]), proof);
        assert_ne!(t.forged().0, proof);
    }
}
