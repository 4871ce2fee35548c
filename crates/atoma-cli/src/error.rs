//! Every failure the CLI reports: a stable name, a number and a sentence.
//!
//! Contract errors keep their `312012000 + n` numbers (SPEC §11), ledger errors their
//! `312013000 + n`, the RPC's own not-found errors their `312014000 + n`. Failures that happen in
//! the CLI itself (no node at the URL, a bad argument, an unknown key) are numbered
//! `312015000 + n` ([`CliErrorKind`]) so that every error a script sees has the same shape:
//! `{"error": {"name": …, "code": …, "message": …}}`.

use atoma_api::ErrorView;
use atoma_contract::ContractError;
use atoma_contract::commitment::CommitmentError;
use atoma_ledger::{ChainError, LedgerError};
use serde_json::{Value, json};

/// The base of the CLI's own error numbers.
pub const CLI_ERROR_CODE_BASE: u64 = 312_015_000;

/// The CLI's own failures (not the chain's). Named like the contract's errors, `E` first.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[allow(clippy::enum_variant_names)]
pub enum CliErrorKind {
    /// Nothing answers at the RPC URL.
    ENoNodeRunning,
    /// An argument is malformed or a combination of arguments makes no sense.
    EInvalidArgument,
    /// No keystore entry has this alias or address.
    EUnknownKey,
    /// The keystore cannot be read or written, or an alias is taken.
    EKeystore,
    /// The signer owns no manager badge, so admin calls would fail.
    ENoManagerBadge,
    /// A file named on the command line cannot be read or is not in the expected format.
    EFile,
    /// The node answered with an error that has no Atoma name, or with something unreadable.
    ERpc,
    /// `atoma start` could not listen on the RPC address.
    EAddressInUse,
    /// The walkthrough found the chain in a state it did not expect.
    EDemo,
    /// A validator or testnet could not be created or started.
    EValidator,
    /// A node agent could not start or stopped, or an agent refused a request.
    EAgent,
}

impl CliErrorKind {
    /// Every kind, in number order.
    pub const ALL: &'static [CliErrorKind] = &[
        CliErrorKind::ENoNodeRunning,
        CliErrorKind::EInvalidArgument,
        CliErrorKind::EUnknownKey,
        CliErrorKind::EKeystore,
        CliErrorKind::ENoManagerBadge,
        CliErrorKind::EFile,
        CliErrorKind::ERpc,
        CliErrorKind::EAddressInUse,
        CliErrorKind::EDemo,
        CliErrorKind::EValidator,
        CliErrorKind::EAgent,
    ];

    /// The stable name.
    pub fn name(self) -> &'static str {
        match self {
            CliErrorKind::ENoNodeRunning => "ENoNodeRunning",
            CliErrorKind::EInvalidArgument => "EInvalidArgument",
            CliErrorKind::EUnknownKey => "EUnknownKey",
            CliErrorKind::EKeystore => "EKeystore",
            CliErrorKind::ENoManagerBadge => "ENoManagerBadge",
            CliErrorKind::EFile => "EFile",
            CliErrorKind::ERpc => "ERpc",
            CliErrorKind::EAddressInUse => "EAddressInUse",
            CliErrorKind::EDemo => "EDemo",
            CliErrorKind::EValidator => "EValidator",
            CliErrorKind::EAgent => "EAgent",
        }
    }

    /// When it happens, for docs/CLI.md.
    pub fn description(self) -> &'static str {
        match self {
            CliErrorKind::ENoNodeRunning => "nothing answers at the `--rpc` URL",
            CliErrorKind::EInvalidArgument => "an argument is malformed",
            CliErrorKind::EUnknownKey => "no keystore entry has the alias or address",
            CliErrorKind::EKeystore => "the keystore cannot be read or written, or an alias is taken",
            CliErrorKind::ENoManagerBadge => "the admin signer owns no manager badge",
            CliErrorKind::EFile => "a file named on the command line is unreadable or malformed",
            CliErrorKind::ERpc => "the node answered with an error that has no Atoma name",
            CliErrorKind::EAddressInUse => "`atoma start` or `atoma backend` cannot listen on its address",
            CliErrorKind::EDemo => "the walkthrough found the chain in an unexpected state",
            CliErrorKind::EValidator => "a validator or testnet could not be created or started",
            CliErrorKind::EAgent => "a node agent could not start or stopped, or an agent refused a request",
        }
    }

    /// `312015000 + n`; numbers are never reused.
    pub fn code(self) -> u64 {
        let offset = match self {
            CliErrorKind::ENoNodeRunning => 0,
            CliErrorKind::EInvalidArgument => 1,
            CliErrorKind::EUnknownKey => 2,
            CliErrorKind::EKeystore => 3,
            CliErrorKind::ENoManagerBadge => 4,
            CliErrorKind::EFile => 5,
            CliErrorKind::ERpc => 6,
            CliErrorKind::EAddressInUse => 7,
            CliErrorKind::EDemo => 8,
            CliErrorKind::EValidator => 9,
            CliErrorKind::EAgent => 10,
        };
        CLI_ERROR_CODE_BASE + offset
    }
}

/// A failure, named and numbered, ready to print.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CliError {
    /// The stable name, such as `ETaskNotFound`.
    pub name: String,
    /// The stable number, such as `312012017`.
    pub code: u64,
    /// A sentence for humans.
    pub message: String,
    /// The digest of the transaction the chain stored as failed, when the failure is one: the
    /// nonce was used and `atoma tx DIGEST` shows it.
    pub digest: Option<String>,
}

/// What every command returns on failure.
pub type CliResult<T> = Result<T, CliError>;

impl CliError {
    /// A failure of the CLI itself.
    pub fn new(kind: CliErrorKind, message: impl Into<String>) -> Self {
        CliError { name: kind.name().to_string(), code: kind.code(), message: message.into(), digest: None }
    }

    /// A malformed argument.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(CliErrorKind::EInvalidArgument, message)
    }

    /// Nothing answers at `url`.
    pub fn no_node(url: &str) -> Self {
        Self::new(
            CliErrorKind::ENoNodeRunning,
            format!(
                "no Atoma node is running at {url}. Start a local network with `atoma start` \
                 (or `cargo run --release -- start` in the repository), or point --rpc / ATOMA_RPC \
                 at a running node"
            ),
        )
    }

    /// `ETaskNotFound (312012017): no task has this id`, and for a transaction the chain stored
    /// as failed a second line with its digest.
    pub fn human(&self) -> String {
        let line = format!("{} ({}): {}", self.name, self.code, self.message);
        match &self.digest {
            Some(digest) => format!("{line}\n  the failed transaction is stored: atoma tx {digest}"),
            None => line,
        }
    }

    /// `{"error": {"name": …, "code": …, "message": …}}`, with `"digest"` for a transaction
    /// the chain stored as failed.
    pub fn to_json(&self) -> Value {
        let mut error = json!({"name": self.name, "code": self.code, "message": self.message});
        if let Some(digest) = &self.digest {
            error["digest"] = json!(digest);
        }
        json!({ "error": error })
    }

    /// The same failure, naming the stored transaction it was.
    pub fn with_digest(self, digest: impl Into<String>) -> Self {
        CliError { digest: Some(digest.into()), ..self }
    }
}

impl From<ErrorView> for CliError {
    fn from(view: ErrorView) -> Self {
        CliError { name: view.name, code: view.code, message: view.message, digest: None }
    }
}

impl From<ContractError> for CliError {
    fn from(e: ContractError) -> Self {
        ErrorView::from(e).into()
    }
}

impl From<LedgerError> for CliError {
    fn from(e: LedgerError) -> Self {
        let text = e.to_string();
        let message = text.strip_prefix(e.name()).map_or(text.as_str(), |m| m.trim_start_matches(": "));
        CliError { name: e.name().to_string(), code: e.code(), message: message.to_string(), digest: None }
    }
}

impl From<ChainError> for CliError {
    /// The node's own failure, for the operator who runs it: named like the refusal a client
    /// would get, with the whole cause — files, remedies — in the message.
    fn from(e: ChainError) -> Self {
        let named = CliError::from(e.refusal());
        CliError { message: e.chain(), ..named }
    }
}

impl From<CommitmentError> for CliError {
    /// A party or slot count the stack cannot have is a bad argument; a request too long to
    /// commit to is a bad outputs file.
    fn from(e: CommitmentError) -> Self {
        let kind = match e {
            CommitmentError::TooLarge(_) => CliErrorKind::EFile,
            CommitmentError::TooManyAttesterSlots { .. } | CommitmentError::NoSuchParty { .. } => {
                CliErrorKind::EInvalidArgument
            }
        };
        CliError::new(kind, e.to_string())
    }
}

impl From<getrandom::Error> for CliError {
    fn from(e: getrandom::Error) -> Self {
        CliError::from(ChainError::NoRandomness(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn commitment_errors_name_the_argument_or_the_file() {
        let party = CliError::from(CommitmentError::NoSuchParty { party: 3, k: 2 });
        assert_eq!(party.name, "EInvalidArgument");
        assert_eq!(party.message, "there is no party 3 in a stack with 2 attester slots");
        let slots = CliError::from(CommitmentError::TooManyAttesterSlots { k: 17 });
        assert_eq!(slots.name, "EInvalidArgument");
        let file = CliError::from(CommitmentError::TooLarge(atoma_contract::commitment::TooLarge));
        assert_eq!(file.name, "EFile");
    }

    #[test]
    fn contract_errors_print_as_the_spec_shows() {
        let e = CliError::from(ContractError::ETaskNotFound);
        assert_eq!(e.human(), "ETaskNotFound (312012017): no task has this id");
        assert_eq!(
            e.to_json(),
            json!({"error": {"name": "ETaskNotFound", "code": 312_012_017u64, "message": "no task has this id"}})
        );
    }

    #[test]
    fn cli_codes_are_unique_and_in_their_own_range() {
        let codes: BTreeSet<u64> = CliErrorKind::ALL.iter().map(|k| k.code()).collect();
        assert_eq!(codes.len(), CliErrorKind::ALL.len());
        assert!(codes.iter().all(|c| (CLI_ERROR_CODE_BASE..CLI_ERROR_CODE_BASE + 1000).contains(c)));
        let ledger = CliError::from(LedgerError::EWrongChainId);
        assert_eq!((ledger.name.as_str(), ledger.code), ("EWrongChainId", 312_013_001));
        assert!(!ledger.message.starts_with("EWrongChainId"));
    }
}
