//! The contract's errors (SPEC §11). Each has a stable name and number, `312012000 + n`;
//! numbers are never reused. A call that returns one of these changed nothing.

use serde::{Deserialize, Serialize};

/// The base that every error number is added to.
pub const ERROR_CODE_BASE: u64 = 312_012_000;

macro_rules! contract_errors {
    ($($(#[$doc:meta])* $name:ident = $n:literal => $msg:literal,)+) => {
        /// Why a call was refused. The call changed nothing and emitted nothing.
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
        #[allow(missing_docs)] // each variant's message() says what it means
        pub enum ContractError {
            $($(#[$doc])* $name,)+
        }

        impl ContractError {
            /// Every error, in number order.
            pub const ALL: &'static [ContractError] = &[$(ContractError::$name,)+];

            /// The error's offset from [`ERROR_CODE_BASE`].
            pub fn offset(self) -> u64 {
                match self {
                    $(ContractError::$name => $n,)+
                }
            }

            /// The error's stable name, such as `ETaskNotFound`.
            pub fn name(self) -> &'static str {
                match self {
                    $(ContractError::$name => stringify!($name),)+
                }
            }

            /// A sentence for humans saying what went wrong.
            pub fn message(self) -> &'static str {
                match self {
                    $(ContractError::$name => $msg,)+
                }
            }

            /// The error with this full number (`312012000 + n`), if there is one.
            pub fn from_code(code: u64) -> Option<Self> {
                Self::ALL.iter().copied().find(|e| e.code() == code)
            }

            /// The error with this name, if there is one.
            pub fn from_name(name: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|e| e.name() == name)
            }
        }
    };
}

contract_errors! {
    ENodeRegDisabled = 0 => "node registration is disabled",
    EModelDisabled = 1 => "the model is disabled",
    ENotAuthorized = 2 => "the sender does not own the badge this call needs",
    EProtocolFeeCannotBeZero = 3 => "an echelon's fees per token must be greater than zero",
    ERelativePerformanceCannotBeZero = 4 => "an echelon's relative performance must be greater than zero",
    EEchelonNotFound = 5 => "the model has no echelon with this id",
    EEchelonAlreadyExistsForModel = 6 => "the model already has an echelon with this id",
    ETotalPermilleMustBeLessThan1000 = 7 => "the oracle's and honest nodes' dispute shares must add up to at most 1000 permille",
    ENodeAlreadySubscribedToModel = 9 => "the node already serves this model in this echelon",
    ENodeNotSubscribedToModel = 10 => "the node does not serve this model in this echelon",
    ENodeAlreadyDisabled = 12 => "the node is disabled",
    ENodeMustWaitBeforeDestroy = 13 => "a disabled node can be destroyed only node_destroy_delay_epochs after it was disabled",
    ECannotSampleZeroNodes = 14 => "cannot sample zero nodes",
    ETaskDeprecated = 15 => "the task is deprecated",
    ENodeAlreadySubscribedToTask = 16 => "the node is already subscribed to the task",
    ETaskNotFound = 17 => "no task has this id",
    ENodeNotSubscribedToTask = 18 => "the node is not subscribed to the task",
    ENotEnoughEpochsPassed = 19 => "not enough epochs have passed",
    ETaskNotDeprecated = 20 => "the task is not deprecated",
    ENoNodesSubscribedToTask = 21 => "no node is subscribed to the task",
    ENoNodesEligibleForTask = 22 => "no subscribed node is eligible for this stack (price cap, compute units, collateral, reputation, optimizations or TEE key)",
    ENodeNotSelectedForStack = 23 => "the node was not selected for this stack",
    EStackInSettlementDispute = 24 => "the stack already has a settlement ticket",
    ETooManyComputedUnits = 25 => "more compute units than the stack holds",
    EStackDoesNotRequireSamplingConsensus = 26 => "the stack's task does not use sampling consensus",
    EStackNotFound = 27 => "no open stack has this id",
    EStackNotInSettlementDispute = 28 => "the stack's settlement ticket is not in dispute",
    EStackDisputePeriodOver = 29 => "the stack's dispute window has closed",
    ENodeNotSelectedForAttestation = 30 => "the node was not requested to attest this stack",
    EStackInDispute = 31 => "the stack's settlement ticket is in dispute",
    EStackDisputePeriodIsNotOver = 32 => "the stack's dispute window is still open",
    ENodeNotSelectedForSettlement = 33 => "the node is not the stack's selected node",
    ETaskAlreadyDeprecated = 34 => "the task is already deprecated",
    EInvalidTaskRole = 35 => "unknown task role",
    EInvalidSecurityLevel = 36 => "unknown security level",
    EInvalidPricePerComputeUnit = 37 => "the price per compute unit must be greater than zero",
    ENodeDoesNotMeetTaskRequirements = 38 => "the node does not meet the task's requirements (reputation, optimizations, model or TEE key)",
    EInvalidComputeUnits = 39 => "the number of compute units is not valid",
    EInsufficientBalance = 40 => "the sender's balance is too low",
    EInvalidCommittedStackProof = 41 => "a committed stack proof must be exactly 32 bytes",
    EInvalidStackMerkleLeaf = 42 => "a stack Merkle leaf must be exactly 32 bytes",
    EInvalidMinimumReputationScore = 43 => "the minimum reputation score must be at most 1000",
    EStackAlreadyInDispute = 46 => "the stack's settlement ticket is already in dispute",
    ETaskSecurityLevelNotSamplingConsensus = 47 => "the task's security level is not sampling consensus",
    EInvalidDeviceType = 48 => "unknown device type",
    EInvalidKeyRotationCounter = 49 => "the key rotation counter is not the current one",
    ETaskIsNotConfidentialCompute = 51 => "a TEE signature was given for a stack whose task is not confidential compute",
    EStackAlreadyClaimed = 53 => "the stack's funds were already paid out",
    EArithmeticOverflow = 100 => "an amount does not fit in 64 bits",
    EInsufficientCollateral = 101 => "the collateral is below the registration collateral",
    EInvalidOptimizations = 102 => "unknown optimization bits are set",
    EInvalidAmount = 103 => "the amount must be greater than zero",
    ENodeNotFound = 104 => "no node has this id",
    ENodeNotDisabled = 105 => "the node is not disabled",
    ENodeHasOpenWork = 106 => "an open stack or settlement ticket still names the node",
    ENodeHasLockedFees = 107 => "the node has fees that unlock at the next epoch",
    ENoFeesToWithdraw = 108 => "the node has no unlocked fees",
    EModelNotFound = 109 => "no model has this name",
    EModelAlreadyExists = 110 => "a model with this name already exists",
    EModelInUse = 111 => "a task still names the model",
    EInvalidModelName = 112 => "a model name must be 1 to 128 bytes",
    EInvalidModality = 113 => "unknown model modality",
    ESamplingConsensusRequiresModel = 114 => "a sampling consensus task must name a model",
    ETaskHasOpenStacks = 115 => "the task still has open stacks",
    EStackNotExpired = 116 => "the stack has not expired, or a settlement was attempted",
    ENoSettlementTicket = 117 => "the stack has no settlement ticket yet",
    EAlreadyAttested = 118 => "the node already attested this stack",
    ENotAnOracle = 119 => "the node is not an oracle of any echelon of the task's model",
    EOracleIsDisputeParty = 120 => "an oracle cannot resolve a dispute it is a party to",
    ENoOracleForTask = 121 => "the task's model has no oracle, so its units cannot be contested",
    EInvalidTeeProof = 122 => "the TEE settlement signature is missing or does not verify against the node's current enclave key",
    EInvalidTeeEvidence = 123 => "the TEE evidence does not chain to a trusted attestation root",
    EInsufficientTreasury = 124 => "the treasury holds less than the amount",
    EInvalidParameter = 125 => "the parameter value is out of range",
    EOracleAlreadyExists = 126 => "the node is already an oracle of this echelon",
    EBadgeNotFound = 127 => "no badge has this id",
    ETooManyStacks = 128 => "a claim names 1 to 256 stacks",
    ENodeServesTaskWithModel = 129 => "the node is subscribed to a task of this model and serves it in no other echelon",
    EAttestationRootNotFound = 130 => "no attestation root is registered for this device type",
    EUnitsNotContested = 131 => "the counted units equal the claimed units",
    EInvalidPublicKey = 132 => "the public key is not a valid ed25519 key",
    EInvalidEndpoint = 133 => "an endpoint must be an http:// or https:// URL of at most 256 printable ASCII bytes",
    EInternalPanic = 199 => "the contract hit an internal error; the call was rolled back",
}

impl ContractError {
    /// The full error number: `312012000 + offset`.
    pub fn code(self) -> u64 {
        ERROR_CODE_BASE + self.offset()
    }
}

impl core::fmt::Display for ContractError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} ({}): {}", self.name(), self.code(), self.message())
    }
}

impl std::error::Error for ContractError {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn numbers_are_unique_and_match_spec() {
        let offsets: BTreeSet<u64> = ContractError::ALL.iter().map(|e| e.offset()).collect();
        assert_eq!(offsets.len(), ContractError::ALL.len());
        assert_eq!(ContractError::ETaskNotFound.code(), 312_012_017);
        assert_eq!(ContractError::EStackAlreadyClaimed.code(), 312_012_053);
        assert_eq!(ContractError::ENoNodesEligibleForTask.code(), 312_012_022);
        assert_eq!(ContractError::EArithmeticOverflow.code(), 312_012_100);
        assert_eq!(ContractError::EInvalidEndpoint.code(), 312_012_133);
    }

    #[test]
    fn names_round_trip() {
        for e in ContractError::ALL {
            assert_eq!(ContractError::from_name(e.name()), Some(*e));
            assert_eq!(ContractError::from_code(e.code()), Some(*e));
        }
        assert_eq!(ContractError::from_code(312_012_008), None);
    }
}
