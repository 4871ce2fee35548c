//! Confidential compute (SPEC §5.5, §6.4): the enclave key chain and the settlement signature.
//!
//! The admin trusts one ed25519 *attestation root* per device type, standing in for a hardware
//! vendor's root of trust. A node proves its enclave key with evidence
//! `device_public_key[32] ‖ root_sig(device_public_key)[64] ‖
//! device_sig(public_key ‖ u64_le(node_small_id) ‖ u64_le(rotation))[64]`. Checking evidence sits
//! behind [`TeeVerifier`] so that real vendor formats (NVIDIA, Intel TDX) can be added beside
//! [`Ed25519Chain`].

use ed25519_dalek::{Signature, SigningKey, VerifyingKey};

use crate::enums::DeviceType;
use crate::error::ContractError;
use crate::event::{NewKeyRotationEvent, NodePublicKeyCommittmentEvent};
use crate::exec::Tx;
use crate::ids::{NodeSmallId, StackSmallId};
use crate::state::{AtomaDb, TeeKey};

/// The length of [`Ed25519Chain`] evidence.
pub const EVIDENCE_LEN: usize = 32 + 64 + 64;
/// The domain separator of a settlement signature.
pub const SETTLE_DOMAIN: &[u8] = b"atoma-tee-settle";

/// Checks that an enclave key chains to a trusted root.
pub trait TeeVerifier {
    /// Whether `evidence` proves that `public_key` is an enclave key of `node` for `rotation`,
    /// vouched for by `root`.
    fn verify(
        &self,
        root: &[u8; 32],
        node: NodeSmallId,
        rotation: u64,
        public_key: &[u8; 32],
        evidence: &[u8],
    ) -> bool;
}

/// The ed25519 root → device → enclave chain of SPEC §6.4.
pub struct Ed25519Chain;

impl TeeVerifier for Ed25519Chain {
    fn verify(
        &self,
        root: &[u8; 32],
        node: NodeSmallId,
        rotation: u64,
        public_key: &[u8; 32],
        evidence: &[u8],
    ) -> bool {
        if evidence.len() != EVIDENCE_LEN {
            return false;
        }
        let (device_key, rest) = evidence.split_at(32);
        let (root_sig, device_sig) = rest.split_at(64);
        let Ok(device_key) = <[u8; 32]>::try_from(device_key) else {
            return false;
        };
        verify_signature(root, &device_key, root_sig)
            && verify_signature(&device_key, &enclave_key_message(public_key, node, rotation), device_sig)
    }
}

/// What a device signs to vouch for an enclave key.
pub fn enclave_key_message(public_key: &[u8; 32], node: NodeSmallId, rotation: u64) -> Vec<u8> {
    let mut message = public_key.to_vec();
    message.extend_from_slice(&node.0.to_le_bytes());
    message.extend_from_slice(&rotation.to_le_bytes());
    message
}

/// What an enclave signs to settle a confidential-compute stack.
pub fn settlement_message(stack: StackSmallId, units: u64, proof: &[u8; 32]) -> Vec<u8> {
    let mut message = SETTLE_DOMAIN.to_vec();
    message.extend_from_slice(&stack.0.to_le_bytes());
    message.extend_from_slice(&units.to_le_bytes());
    message.extend_from_slice(proof);
    message
}

/// Strict ed25519 verification of a 64-byte signature; false for any malformed input.
pub fn verify_signature(public_key: &[u8; 32], message: &[u8], signature: &[u8]) -> bool {
    let Ok(key) = VerifyingKey::from_bytes(public_key) else {
        return false;
    };
    let Ok(bytes) = <[u8; 64]>::try_from(signature) else {
        return false;
    };
    key.verify_strict(message, &Signature::from_bytes(&bytes)).is_ok()
}

/// Builds evidence for an enclave key: the client-side half of [`Ed25519Chain`], used by node
/// software, tests and the local network's demo.
pub fn build_evidence(
    root: &SigningKey,
    device: &SigningKey,
    public_key: &[u8; 32],
    node: NodeSmallId,
    rotation: u64,
) -> Vec<u8> {
    use ed25519_dalek::Signer;
    let device_public = device.verifying_key().to_bytes();
    let mut evidence = device_public.to_vec();
    evidence.extend_from_slice(&root.sign(&device_public).to_bytes());
    evidence.extend_from_slice(&device.sign(&enclave_key_message(public_key, node, rotation)).to_bytes());
    evidence
}

/// Signs a settlement with an enclave key.
pub fn sign_settlement(enclave: &SigningKey, stack: StackSmallId, units: u64, proof: &[u8; 32]) -> Vec<u8> {
    use ed25519_dalek::Signer;
    enclave.sign(&settlement_message(stack, units, proof)).to_bytes().to_vec()
}

/// What `commit_node_public_key` carries.
pub(crate) struct KeyCommitment<'a> {
    pub node: NodeSmallId,
    pub device_type: u16,
    pub rotation: u64,
    pub public_key: &'a [u8; 32],
    pub evidence: &'a [u8],
}

impl AtomaDb {
    pub(crate) fn commit_node_public_key(
        &mut self,
        tx: &mut Tx<'_>,
        c: KeyCommitment<'_>,
    ) -> Result<(), ContractError> {
        let node = self.owned_node(tx, c.node)?;
        if node.is_disabled() {
            return Err(ContractError::ENodeAlreadyDisabled);
        }
        let device = DeviceType::from_wire(c.device_type).ok_or(ContractError::EInvalidDeviceType)?;
        if VerifyingKey::from_bytes(c.public_key).is_err() {
            return Err(ContractError::EInvalidPublicKey);
        }
        if c.rotation != self.globals.get().key_rotation_counter {
            return Err(ContractError::EInvalidKeyRotationCounter);
        }
        let root = self.attestation_roots.get(&device).ok_or(ContractError::EInvalidTeeEvidence)?;
        if !Ed25519Chain.verify(root, c.node, c.rotation, c.public_key, c.evidence) {
            return Err(ContractError::EInvalidTeeEvidence);
        }
        self.node_mut(c.node)?.tee_key = Some(Box::new(TeeKey {
            device_type: device,
            public_key: *c.public_key,
            key_rotation_counter: c.rotation,
        }));
        tx.emit(NodePublicKeyCommittmentEvent {
            epoch: tx.epoch(),
            key_rotation_counter: c.rotation,
            node_id: c.node,
            device_type: c.device_type,
            public_key: c.public_key.to_vec(),
        });
        Ok(())
    }

    pub(crate) fn new_network_key_rotation(&mut self, tx: &mut Tx<'_>) -> Result<(), ContractError> {
        let g = self.globals.get_mut();
        g.key_rotation_counter =
            g.key_rotation_counter.checked_add(1).ok_or(ContractError::EArithmeticOverflow)?;
        let counter = g.key_rotation_counter;
        tx.emit(NewKeyRotationEvent { epoch: tx.epoch(), key_rotation_counter: counter });
        Ok(())
    }
}
