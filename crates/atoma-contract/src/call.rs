//! The entry functions (SPEC §5) as data: one [`Call`] per transaction.
//!
//! Calls are BCS-encoded inside signed transactions, so the order of variants and fields is part
//! of the wire format: append, never reorder. Enumerations travel as their raw wire numbers and
//! commitments as byte vectors, so that a bad value gets its own named error from the contract
//! instead of failing to decode.

use serde::{Deserialize, Serialize};

#[cfg(doc)]
use crate::config::{MAX_CROSS_VALIDATION_EXTRA_NODES, MAX_DELAY_EPOCHS, MAX_ENDPOINT_BYTES};
use crate::ids::{Address, EchelonId, NodeSmallId, ObjectId, StackSmallId, TaskSmallId};

/// One entry-function call. Fields carry the parameters SPEC §5 names.
#[allow(missing_docs)]
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Call {
    /// Moves TOMA from the sender to `recipient`.
    TransferToma { recipient: Address, amount: u64 },
    /// Gives a badge the sender owns to `recipient`.
    TransferBadge { badge: ObjectId, recipient: Address },
    /// SPEC §5.1 `register_node`.
    RegisterNode { collateral: u64, supported_optimizations: u8 },
    /// SPEC §5.1 `add_node_collateral`.
    AddNodeCollateral { node: NodeSmallId, amount: u64 },
    /// SPEC §5.1 `subscribe_node_to_task`.
    SubscribeNodeToTask {
        node: NodeSmallId,
        task: TaskSmallId,
        price_per_compute_unit: u64,
        max_num_compute_units: u64,
    },
    /// SPEC §5.1 `update_node_subscription`.
    UpdateNodeSubscription {
        node: NodeSmallId,
        task: TaskSmallId,
        price_per_compute_unit: u64,
        max_num_compute_units: u64,
    },
    /// SPEC §5.1 `unsubscribe_node_from_task`.
    UnsubscribeNodeFromTask { node: NodeSmallId, task: TaskSmallId },
    /// SPEC §5.1 `add_node_to_model`.
    AddNodeToModel { node: NodeSmallId, model_name: String, echelon: EchelonId },
    /// SPEC §5.1 `remove_node_from_model`.
    RemoveNodeFromModel { node: NodeSmallId, model_name: String, echelon: EchelonId },
    /// SPEC §5.1 `set_node_optimizations`.
    SetNodeOptimizations { node: NodeSmallId, supported_optimizations: u8 },
    /// SPEC §5.1 `permanently_disable_node`, by the node's owner.
    PermanentlyDisableNode { node: NodeSmallId },
    /// SPEC §5.1 `destroy_disabled_node`.
    DestroyDisabledNode { node: NodeSmallId },
    /// SPEC §5.1 `withdraw_fees`.
    WithdrawFees { node: NodeSmallId },
    /// SPEC §5.2 `create_task`.
    CreateTask {
        role: u16,
        model_name: Option<String>,
        security_level: u16,
        minimum_reputation_score: Option<u16>,
        required_optimizations: u8,
    },
    /// SPEC §5.2 `deprecate_task`, by the task's owner.
    DeprecateTask { task: TaskSmallId },
    /// SPEC §5.2 `remove_deprecated_task`, by the task's owner.
    RemoveDeprecatedTask { task: TaskSmallId },
    /// SPEC §5.3 `acquire_new_stack`.
    AcquireNewStack { task: TaskSmallId, num_compute_units: u64, max_price_per_compute_unit: u64 },
    /// SPEC §5.3 `reclaim_expired_stack`.
    ReclaimExpiredStack { stack: StackSmallId },
    /// SPEC §5.4 `try_settle_stack`.
    TrySettleStack {
        node: NodeSmallId,
        stack: StackSmallId,
        num_claimed_compute_units: u64,
        committed_stack_proof: Vec<u8>,
        stack_merkle_leaf: Vec<u8>,
        tee_signature: Option<Vec<u8>>,
    },
    /// SPEC §5.4 `submit_stack_settlement_attestation`.
    SubmitStackSettlementAttestation {
        node: NodeSmallId,
        stack: StackSmallId,
        committed_stack_proof: Vec<u8>,
        stack_merkle_leaf: Vec<u8>,
    },
    /// SPEC §5.4 `start_attestation_dispute`.
    StartAttestationDispute { node: NodeSmallId, stack: StackSmallId, attestation_commitment: Vec<u8> },
    /// SPEC §5.4 `contest_claimed_units`.
    ContestClaimedUnits { stack: StackSmallId, counted_units: u64 },
    /// SPEC §5.4 `resolve_stack_dispute`.
    ResolveStackDispute {
        oracle_node: NodeSmallId,
        stack: StackSmallId,
        correct_committed_stack_proof: Vec<u8>,
        correct_units: u64,
    },
    /// SPEC §5.4 `claim_funds`.
    ClaimFunds { node: NodeSmallId, stacks: Vec<StackSmallId> },
    /// SPEC §5.4 `expire_dispute`.
    ExpireDispute { stack: StackSmallId },
    /// SPEC §5.5 `commit_node_public_key`.
    CommitNodePublicKey {
        node: NodeSmallId,
        device_type: u16,
        key_rotation_counter: u64,
        public_key: [u8; 32],
        evidence: Vec<u8>,
    },
    /// SPEC §5.6: an admin function, authorized by the named manager badge.
    Admin { manager_badge: ObjectId, op: AdminOp },
    /// Publishes the URL where the node's agent serves users (see [`MAX_ENDPOINT_BYTES`]). Not in
    /// the seed: added so that a user can find the agent of the node a stack was sampled to
    /// (docs/PROTOCOL.md, "Node endpoints").
    SetNodeEndpoint { node: NodeSmallId, url: String },
}

/// The admin functions of SPEC §5.6 (and §5.5's key rotation), named as there.
#[allow(missing_docs)]
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum AdminOp {
    AddModel {
        name: String,
        modality: u16,
    },
    RemoveModel {
        name: String,
    },
    DisableModel {
        name: String,
    },
    EnableModel {
        name: String,
    },
    AddModelEchelon {
        model_name: String,
        echelon: EchelonId,
        params: EchelonParams,
    },
    UpdateModelEchelon {
        model_name: String,
        echelon: EchelonId,
        params: EchelonParams,
    },
    RemoveModelEchelon {
        model_name: String,
        echelon: EchelonId,
    },
    AddModelEchelonOracleNode {
        model_name: String,
        echelon: EchelonId,
        node: NodeSmallId,
    },
    RemoveModelEchelonOracleNode {
        model_name: String,
        echelon: EchelonId,
        node: NodeSmallId,
    },
    /// One setter per row of SPEC §4's configuration table.
    SetParameter {
        parameter: Parameter,
        value: u64,
    },
    DisableRegistration,
    EnableRegistration,
    PermanentlyDisableNode {
        node: NodeSmallId,
    },
    DeprecateTask {
        task: TaskSmallId,
    },
    RemoveDeprecatedTask {
        task: TaskSmallId,
    },
    NewNetworkKeyRotation,
    AddAttestationRoot {
        device_type: u16,
        public_key: [u8; 32],
    },
    RemoveAttestationRoot {
        device_type: u16,
    },
    WithdrawFeeTreasury {
        amount: u64,
        recipient: Address,
    },
    WithdrawCommunalTreasury {
        amount: u64,
        recipient: Address,
    },
    CreateManagerBadge {
        recipient: Address,
    },
}

/// An echelon's parameters (SPEC §5.6 `add_model_echelon`).
#[allow(missing_docs)]
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct EchelonParams {
    pub input_fee_per_token: u64,
    pub output_fee_per_token: u64,
    pub relative_performance: u64,
    pub settlement_timeout_ms: u64,
}

macro_rules! parameters {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)+) => {
        /// A numeric protocol parameter the admin can set (SPEC §4).
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Serialize, Deserialize)]
        pub enum Parameter {
            $($(#[$doc])* $variant,)+
        }

        impl Parameter {
            /// Every parameter, in wire order.
            pub const ALL: &'static [Parameter] = &[$(Parameter::$variant,)+];

            /// The parameter's snake_case name, as in SPEC §4.
            pub fn name(self) -> &'static str {
                match self {
                    $(Parameter::$variant => $name,)+
                }
            }

            /// The parameter with this snake_case name.
            pub fn from_name(name: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|p| p.name() == name)
            }
        }
    };
}

parameters! {
    /// Collateral a node must put up to register, in base units (> 0).
    RegistrationCollateral => "registration_collateral",
    /// Default settlement timeout for stacks whose model echelon sets none (> 0).
    SettlementTimeoutMs => "settlement_timeout_ms",
    /// Share of collateral slashed on a timeout (≤ 1000).
    PermilleToSlashNodeOnTimeout => "permille_to_slash_node_on_timeout",
    /// Oracle's share of a dispute slash (oracle + honest ≤ 1000).
    PermilleForOracleOnDispute => "permille_for_oracle_on_dispute",
    /// Honest parties' share of a dispute slash (oracle + honest ≤ 1000).
    PermilleForHonestNodesOnDispute => "permille_for_honest_nodes_on_dispute",
    /// Chance that a sampling-consensus settlement is cross-validated (≤ 1000).
    CrossValidationProbabilityPermille => "cross_validation_probability_permille",
    /// Attesters sampled per cross-validation (1 to [`MAX_CROSS_VALIDATION_EXTRA_NODES`]).
    CrossValidationExtraNodesCount => "cross_validation_extra_nodes_count",
    /// Fee per attester, in permille of the base cost (≤ 1000).
    CrossValidationExtraNodesChargePermille => "cross_validation_extra_nodes_charge_permille",
    /// Sampling-consensus surcharge, in permille of the base cost (≤ 1000).
    SamplingConsensusChargePermille => "sampling_consensus_charge_permille",
    /// Epochs a settlement ticket stays open to attestations and disputes (1 to [`MAX_DELAY_EPOCHS`]).
    StackDisputeSettlementDelayEpochs => "stack_dispute_settlement_delay_epochs",
    /// Epochs between a task's deprecation and its removal (at most [`MAX_DELAY_EPOCHS`]).
    TaskRemovalDelayEpochs => "task_removal_delay_epochs",
    /// Epochs between a node's disabling and its destruction (at most [`MAX_DELAY_EPOCHS`]).
    NodeDestroyDelayEpochs => "node_destroy_delay_epochs",
    /// Epochs after purchase before an unsettled stack can be reclaimed (1 to [`MAX_DELAY_EPOCHS`]).
    StackExpirationEpochs => "stack_expiration_epochs",
    /// Epochs an unresolved dispute waits for an oracle before it can expire (1 to [`MAX_DELAY_EPOCHS`]).
    DisputeResolutionDeadlineEpochs => "dispute_resolution_deadline_epochs",
}
