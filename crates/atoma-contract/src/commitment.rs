//! The commitment format of SPEC §6.3, exported for clients.
//!
//! Party `i` (0 = the selected node, 1..=k = the attesters in the order the contract listed
//! them) hashes each request of the stack as the RFC 6962 leaf
//! `blake2b-256(0x00 ‖ u64_le(i) ‖ u32_le(len(input)) ‖ input ‖ u32_le(len(output)) ‖ output)`
//! and takes the RFC 6962 Merkle root (interior nodes `blake2b-256(0x01 ‖ left ‖ right)`) as its
//! *stack Merkle leaf*. The committed stack proof is `blake2b-256(leaf_0 ‖ … ‖ leaf_k)`.
//! Because the leaves differ only by `i`, any party can compute the whole proof from its own
//! outputs; parties that served identical outputs compute identical proofs.
//!
//! [`party_commitment`] is what a node (selected, attesting or resolving a dispute as an oracle)
//! submits, from the `(input, output)` pairs it served.

use crate::config::MAX_CROSS_VALIDATION_EXTRA_NODES;
use crate::hash::blake2b256;

/// An input or output longer than `u32::MAX` bytes cannot be committed to.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[error("a request's input or output exceeds u32::MAX bytes")]
pub struct TooLarge;

/// The RFC 6962 leaf hash of one request as served by party `party`.
///
/// # Errors
/// [`TooLarge`] when the input or output is longer than `u32::MAX` bytes.
pub fn request_hash(party: u64, input: &[u8], output: &[u8]) -> Result<[u8; 32], TooLarge> {
    let input_len = u32::try_from(input.len()).map_err(|_| TooLarge)?;
    let output_len = u32::try_from(output.len()).map_err(|_| TooLarge)?;
    Ok(blake2b256(&[
        &[0x00],
        &party.to_le_bytes(),
        &input_len.to_le_bytes(),
        input,
        &output_len.to_le_bytes(),
        output,
    ]))
}

/// The RFC 6962 Merkle tree hash of already-hashed leaves (the empty tree hashes to
/// `blake2b-256("")`).
pub fn merkle_root(leaves: &[[u8; 32]]) -> [u8; 32] {
    match leaves {
        [] => blake2b256(&[]),
        [only] => *only,
        _ => {
            // The largest power of two strictly smaller than the number of leaves.
            let split = leaves.len().next_power_of_two() / 2;
            let (left, right) = leaves.split_at(split);
            blake2b256(&[&[0x01], &merkle_root(left), &merkle_root(right)])
        }
    }
}

/// Party `party`'s stack Merkle leaf over `(input, output)` requests in order.
///
/// # Errors
/// [`TooLarge`] as for [`request_hash`].
pub fn stack_merkle_leaf(party: u64, requests: &[(Vec<u8>, Vec<u8>)]) -> Result<[u8; 32], TooLarge> {
    let hashes: Vec<[u8; 32]> = requests
        .iter()
        .map(|(input, output)| request_hash(party, input, output))
        .collect::<Result<_, _>>()?;
    Ok(merkle_root(&hashes))
}

/// `blake2b-256(leaf_0 ‖ … ‖ leaf_k)`.
pub fn committed_stack_proof(leaves: &[[u8; 32]]) -> [u8; 32] {
    let parts: Vec<&[u8]> = leaves.iter().map(|l| &l[..]).collect();
    blake2b256(&parts)
}

/// The leaves of parties `0..=k`, in party order.
fn party_leaves(requests: &[(Vec<u8>, Vec<u8>)], k: u64) -> Result<Vec<[u8; 32]>, TooLarge> {
    (0..=k).map(|i| stack_merkle_leaf(i, requests)).collect()
}

/// The proof and leaf the selected node submits for a stack with `k` attester slots: the
/// proof covers the leaves of parties `0..=k` computed from these outputs. Unlike
/// [`party_commitment`] it does not check `k` against the contract's limit.
///
/// # Errors
/// [`TooLarge`] as for [`request_hash`].
pub fn settlement_commitment(
    requests: &[(Vec<u8>, Vec<u8>)],
    k: u64,
) -> Result<([u8; 32], [u8; 32]), TooLarge> {
    let leaves = party_leaves(requests, k)?;
    let proof = committed_stack_proof(&leaves);
    Ok((proof, leaves[0]))
}

/// What one party submits for a stack: the proof every honest party shares, and its own leaf.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PartyCommitment {
    /// `blake2b-256(leaf_0 ‖ … ‖ leaf_k)`: the same for every party that served the same outputs.
    pub committed_stack_proof: [u8; 32],
    /// This party's stack Merkle leaf.
    pub stack_merkle_leaf: [u8; 32],
}

/// Why a party's commitment cannot be computed.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum CommitmentError {
    /// No stack has more attester slots than the contract allows.
    #[error("a stack has at most {max} attester slots, not {k}", max = MAX_CROSS_VALIDATION_EXTRA_NODES)]
    TooManyAttesterSlots {
        /// The attester slots asked for.
        k: u64,
    },
    /// Parties are numbered `0..=k`.
    #[error("there is no party {party} in a stack with {k} attester slots")]
    NoSuchParty {
        /// The party asked for.
        party: u64,
        /// The stack's attester slots.
        k: u64,
    },
    /// A request is too long to commit to.
    #[error(transparent)]
    TooLarge(#[from] TooLarge),
}

/// The commitment party `party` submits for a stack with `k` attester slots (`k` is the stack's
/// `cross_validation_extra_nodes_count`), from the `(input, output)` pairs it served, in order:
/// party 0 (the selected node, or an oracle resolving a dispute) settles with it, party `i`
/// (the `i`-th attester the ticket lists) attests with it.
///
/// # Errors
/// [`CommitmentError::TooManyAttesterSlots`] when `k` exceeds
/// [`MAX_CROSS_VALIDATION_EXTRA_NODES`]; [`CommitmentError::NoSuchParty`] when `party > k`;
/// [`CommitmentError::TooLarge`] when an input or output is longer than `u32::MAX` bytes.
pub fn party_commitment(
    requests: &[(Vec<u8>, Vec<u8>)],
    party: u64,
    k: u64,
) -> Result<PartyCommitment, CommitmentError> {
    if k > MAX_CROSS_VALIDATION_EXTRA_NODES {
        return Err(CommitmentError::TooManyAttesterSlots { k });
    }
    let no_such_party = CommitmentError::NoSuchParty { party, k };
    if party > k {
        return Err(no_such_party);
    }
    let leaves = party_leaves(requests, k)?;
    let stack_merkle_leaf =
        usize::try_from(party).ok().and_then(|i| leaves.get(i)).copied().ok_or(no_such_party)?;
    Ok(PartyCommitment { committed_stack_proof: committed_stack_proof(&leaves), stack_merkle_leaf })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_leaf_tree_is_the_leaf_and_pairs_use_the_node_prefix() {
        let a = request_hash(0, b"in", b"out").unwrap();
        let b = request_hash(0, b"in2", b"out2").unwrap();
        assert_eq!(merkle_root(&[a]), a);
        assert_eq!(merkle_root(&[a, b]), blake2b256(&[&[1], &a, &b]));
        // Three leaves split 2 + 1 (RFC 6962 §2.1).
        let c = request_hash(0, b"", b"").unwrap();
        assert_eq!(merkle_root(&[a, b, c]), blake2b256(&[&[1], &merkle_root(&[a, b]), &c]));
    }

    #[test]
    fn parties_differ_only_by_index() {
        let requests = vec![(b"hello".to_vec(), b"world".to_vec())];
        assert_ne!(stack_merkle_leaf(0, &requests).unwrap(), stack_merkle_leaf(1, &requests).unwrap());
        let (proof, leaf0) = settlement_commitment(&requests, 2).unwrap();
        let leaves: Vec<_> = (0..=2).map(|i| stack_merkle_leaf(i, &requests).unwrap()).collect();
        assert_eq!(leaf0, leaves[0]);
        assert_eq!(proof, committed_stack_proof(&leaves));
    }

    #[test]
    fn every_party_shares_the_proof_and_keeps_its_own_leaf() {
        let requests = vec![(b"q".to_vec(), b"a".to_vec()), (b"q2".to_vec(), b"a2".to_vec())];
        let (proof, leaf0) = settlement_commitment(&requests, 2).unwrap();
        assert_eq!(
            party_commitment(&requests, 0, 2),
            Ok(PartyCommitment { committed_stack_proof: proof, stack_merkle_leaf: leaf0 })
        );
        for party in 1..=2 {
            let c = party_commitment(&requests, party, 2).unwrap();
            assert_eq!(c.committed_stack_proof, proof);
            assert_eq!(c.stack_merkle_leaf, stack_merkle_leaf(party, &requests).unwrap());
        }
    }

    #[test]
    fn parties_and_slots_are_bounded() {
        let requests = vec![(b"q".to_vec(), b"a".to_vec())];
        let max = MAX_CROSS_VALIDATION_EXTRA_NODES;
        assert_eq!(party_commitment(&requests, 3, 2), Err(CommitmentError::NoSuchParty { party: 3, k: 2 }));
        assert_eq!(party_commitment(&requests, 1, 0), Err(CommitmentError::NoSuchParty { party: 1, k: 0 }));
        assert!(party_commitment(&requests, 0, 0).is_ok());
        assert!(party_commitment(&requests, max, max).is_ok());
        assert_eq!(
            party_commitment(&requests, 0, max + 1),
            Err(CommitmentError::TooManyAttesterSlots { k: max + 1 })
        );
        assert_eq!(
            party_commitment(&requests, 0, u64::MAX),
            Err(CommitmentError::TooManyAttesterSlots { k: u64::MAX })
        );
    }

    #[test]
    fn request_encoding_is_length_prefixed() {
        // Moving a byte from input to output changes the hash.
        assert_ne!(request_hash(0, b"ab", b"c").unwrap(), request_hash(0, b"a", b"bc").unwrap());
    }
}
