//! The validator set and its keys: who the validators are, the threshold key they share, and the
//! files one validator runs from (docs/VALIDATORS.md §5).
//!
//! Public, the same on every validator ([`NetworkFile`], `network.json`): the chain's genesis, the
//! participants (ed25519 public keys, sorted: a validator's place in that order is its signer
//! index), their p2p and RPC addresses, and the public polynomial of the threshold key — its
//! constant term, the group public key, verifies every certificate and every seed. Secret, one
//! per validator ([`ValidatorSecrets`], `identity.key` and `share.key`): its ed25519 identity and
//! its BLS share. A trusted dealer ([`deal`]) makes them all at genesis.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::Path;

use atoma_contract::hash::blake2b256;
use atoma_ledger::GenesisConfig;
use commonware_codec::{Decode, DecodeExt, Encode};
use commonware_cryptography::bls12381::dkg::feldman_desmedt::deal as deal_shares;
use commonware_cryptography::bls12381::primitives::group::Share;
use commonware_cryptography::bls12381::primitives::sharing::{Mode, ModeVersion, Sharing};
use commonware_cryptography::{Signer, ed25519};
use commonware_math::algebra::Random;
use commonware_utils::N3f1;
use commonware_utils::ordered::Set;
use rand_core::{CryptoRng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::{PublicKey, Scheme, V};

/// The most validators a set may have.
pub const MAX_VALIDATORS: usize = 100;
/// The public file every validator of a set holds.
pub const NETWORK_FILE: &str = "network.json";
/// A validator's ed25519 identity key (secret).
pub const IDENTITY_FILE: &str = "identity.key";
/// A validator's BLS threshold share (secret).
pub const SHARE_FILE: &str = "share.key";

/// Why a validator set's keys or files are not usable.
#[derive(Debug, thiserror::Error)]
pub enum CommitteeError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A file does not hold what it should.
    #[error("{path}: {what}")]
    Malformed {
        /// The file.
        path: String,
        /// What is wrong.
        what: String,
    },
    /// The set itself is wrong: too few or too many validators, a duplicate key, a share that
    /// is not this polynomial's.
    #[error("invalid validator set: {0}")]
    Invalid(String),
    /// The operating system gave no randomness for new keys.
    #[error("the operating system gave no randomness for new keys: {0}")]
    NoRandomness(getrandom::Error),
}

/// One validator as everyone knows it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidatorEntry {
    /// Its ed25519 public key, hex.
    pub public_key: String,
    /// Where it listens for its peers.
    pub p2p_address: SocketAddr,
    /// Where it serves JSON-RPC.
    pub rpc_address: SocketAddr,
}

/// `network.json`: what every validator of a set holds, the same everywhere.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkFile {
    /// The chain's genesis; its digest is the chain id.
    pub genesis: GenesisConfig,
    /// Whether the faucet and time controls are on (a local testnet).
    pub local_network: bool,
    /// The public polynomial of the threshold key, hex of its codec encoding.
    pub polynomial: String,
    /// The validators, in the order of their public keys.
    pub validators: Vec<ValidatorEntry>,
}

/// The validator set: its participants, in signer order, and the threshold key's polynomial.
#[derive(Clone, Debug)]
pub struct ValidatorSet {
    /// The ed25519 public keys, sorted; a validator's index here is its signer index.
    pub participants: Set<PublicKey>,
    /// The public polynomial; `polynomial.public()` is the group key.
    pub polynomial: Sharing<V>,
}

/// One validator's secrets.
#[derive(Clone)]
pub struct ValidatorSecrets {
    /// Its identity: p2p authentication and its place in the set.
    pub identity: ed25519::PrivateKey,
    /// Its share of the threshold key.
    pub share: Share,
}

impl core::fmt::Debug for ValidatorSecrets {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Never print a secret.
        write!(f, "ValidatorSecrets({})", self.identity.public_key())
    }
}

/// How many of `n` validators may fail: the largest `f` with `n ≥ 3f + 1`.
pub fn max_faulty(n: usize) -> usize {
    n.saturating_sub(1) / 3
}

impl ValidatorSet {
    /// How many validators.
    pub fn len(&self) -> usize {
        self.participants.len()
    }

    /// Whether the set is empty (never, for a set made by [`deal`] or read from a file).
    pub fn is_empty(&self) -> bool {
        self.participants.is_empty()
    }

    /// How many may fail: the largest `f` with `n ≥ 3f + 1`.
    pub fn max_faulty(&self) -> usize {
        max_faulty(self.len())
    }

    /// The namespace every signature of this chain's consensus is made in: the chain id keeps
    /// two chains' votes apart.
    pub fn namespace(chain_id: &[u8; 32]) -> Vec<u8> {
        [&b"atoma-consensus:"[..], &chain_id[..]].concat()
    }

    /// The commitment a validator set's genesis carries as its `validator_public_key`:
    /// `blake2b-256("atoma-validator-set" ‖ group key ‖ participants)`. No one holds a private key
    /// for it, so no single sequencer can run the chain.
    pub fn commitment(&self) -> [u8; 32] {
        let group = self.polynomial.public().encode();
        let participants: Vec<u8> = self.participants.iter().flat_map(|pk| pk.encode().to_vec()).collect();
        blake2b256(&[b"atoma-validator-set", &group, &participants])
    }

    /// The signing scheme of the validator holding `secrets`.
    ///
    /// # Errors
    /// [`CommitteeError::Invalid`] when the share is not this polynomial's or the identity is not
    /// a participant.
    pub fn signer(&self, chain_id: &[u8; 32], secrets: &ValidatorSecrets) -> Result<Scheme, CommitteeError> {
        if self.participants.position(&secrets.identity.public_key()).is_none() {
            return Err(CommitteeError::Invalid("this validator's identity is not in the set".into()));
        }
        Scheme::signer(
            &Self::namespace(chain_id),
            self.participants.clone(),
            self.polynomial.clone(),
            secrets.share.clone(),
        )
        .ok_or_else(|| CommitteeError::Invalid("the share does not belong to the set's polynomial".into()))
    }

    /// A scheme that verifies certificates and seeds only: what a validator needs to check the
    /// seeds blocks carry.
    pub fn verifier(&self, chain_id: &[u8; 32]) -> Scheme {
        Scheme::certificate_verifier(&Self::namespace(chain_id), *self.polynomial.public())
    }
}

/// A trusted dealer's validator set of `n` validators (threshold `2f + 1` of `n = 3f + 1`), from
/// randomness `rng`: the set and each validator's secrets, in signer order.
///
/// # Errors
/// [`CommitteeError::Invalid`] for fewer than 1 or more than [`MAX_VALIDATORS`] validators.
pub fn deal(
    n: usize,
    mut rng: impl CryptoRng,
) -> Result<(ValidatorSet, Vec<ValidatorSecrets>), CommitteeError> {
    if n == 0 || n > MAX_VALIDATORS {
        return Err(CommitteeError::Invalid(format!("a set has 1 to {MAX_VALIDATORS} validators, not {n}")));
    }
    let mut identities: Vec<ed25519::PrivateKey> =
        (0..n).map(|_| ed25519::PrivateKey::random(&mut rng)).collect();
    identities.sort_by_key(Signer::public_key);
    let participants = Set::try_from(identities.iter().map(Signer::public_key).collect::<Vec<_>>())
        .map_err(|_| CommitteeError::Invalid("two identities collide".into()))?;
    let (output, shares) =
        deal_shares::<V, PublicKey, N3f1>(&mut rng, Mode::NonZeroCounter, participants.clone())
            .map_err(|e| CommitteeError::Invalid(format!("dealing shares: {e:?}")))?;
    let polynomial = output.public().clone();
    let secrets = identities
        .into_iter()
        .map(|identity| {
            let share = shares
                .get_value(&identity.public_key())
                .cloned()
                .ok_or_else(|| CommitteeError::Invalid("a participant got no share".into()))?;
            Ok(ValidatorSecrets { identity, share })
        })
        .collect::<Result<Vec<_>, CommitteeError>>()?;
    Ok((ValidatorSet { participants, polynomial }, secrets))
}

/// [`deal`] with the operating system's randomness.
///
/// # Errors
/// As [`deal`]; [`CommitteeError::NoRandomness`].
pub fn deal_from_os(n: usize) -> Result<(ValidatorSet, Vec<ValidatorSecrets>), CommitteeError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(CommitteeError::NoRandomness)?;
    deal(n, rand_chacha::ChaCha20Rng::from_seed(seed))
}

impl NetworkFile {
    /// The file of `set` with this genesis and these addresses (by signer index).
    pub fn new(
        set: &ValidatorSet,
        genesis: GenesisConfig,
        local_network: bool,
        addresses: &[(SocketAddr, SocketAddr)],
    ) -> Self {
        let validators = set
            .participants
            .iter()
            .zip(addresses)
            .map(|(pk, (p2p, rpc))| ValidatorEntry {
                public_key: hex(&pk.encode()),
                p2p_address: *p2p,
                rpc_address: *rpc,
            })
            .collect();
        NetworkFile { genesis, local_network, polynomial: hex(&set.polynomial.encode()), validators }
    }

    /// The validator set it describes.
    ///
    /// # Errors
    /// [`CommitteeError::Malformed`] naming what does not decode; [`CommitteeError::Invalid`] when
    /// the keys are not sorted and distinct, the polynomial does not fit them, or the genesis does
    /// not commit to this set.
    pub fn validator_set(&self) -> Result<ValidatorSet, CommitteeError> {
        let bad = |what: String| CommitteeError::Malformed { path: NETWORK_FILE.into(), what };
        let n = self.validators.len();
        if n == 0 || n > MAX_VALIDATORS {
            return Err(CommitteeError::Invalid(format!("{n} validators; a set has 1 to {MAX_VALIDATORS}")));
        }
        let keys = self
            .validators
            .iter()
            .map(|v| {
                let bytes =
                    unhex(&v.public_key).map_err(|e| bad(format!("public key {}: {e}", v.public_key)))?;
                PublicKey::decode(bytes).map_err(|e| bad(format!("public key {}: {e}", v.public_key)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if keys.windows(2).any(|w| w[0] >= w[1]) {
            return Err(CommitteeError::Invalid("the validators' keys are not sorted and distinct".into()));
        }
        let participants =
            Set::try_from(keys).map_err(|_| CommitteeError::Invalid("two validators share a key".into()))?;
        let bytes = unhex(&self.polynomial).map_err(|e| bad(format!("polynomial: {e}")))?;
        let max = NonZeroU32::new(n as u32).ok_or_else(|| CommitteeError::Invalid("no validators".into()))?;
        let polynomial = Sharing::<V>::decode_cfg(bytes, &(max, ModeVersion::v0()))
            .map_err(|e| bad(format!("polynomial: {e}")))?;
        if polynomial.total().get() as usize != n {
            return Err(CommitteeError::Invalid("the polynomial is for another number of validators".into()));
        }
        let set = ValidatorSet { participants, polynomial };
        if set.commitment() != self.genesis.validator_public_key {
            return Err(CommitteeError::Invalid("the genesis does not name this validator set".into()));
        }
        Ok(set)
    }

    /// Reads `network.json` from `dir`.
    ///
    /// # Errors
    /// [`CommitteeError::Io`], [`CommitteeError::Malformed`].
    pub fn load(dir: &Path) -> Result<Self, CommitteeError> {
        let path = dir.join(NETWORK_FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| io(&path, source))?;
        serde_json::from_str(&text)
            .map_err(|e| CommitteeError::Malformed { path: path.display().to_string(), what: e.to_string() })
    }

    /// Writes `network.json` into `dir`.
    ///
    /// # Errors
    /// [`CommitteeError::Io`].
    pub fn save(&self, dir: &Path) -> Result<(), CommitteeError> {
        let path = dir.join(NETWORK_FILE);
        let text = serde_json::to_string_pretty(self).map_err(|e| CommitteeError::Malformed {
            path: path.display().to_string(),
            what: e.to_string(),
        })?;
        std::fs::write(&path, text + "\n").map_err(|source| io(&path, source))
    }
}

impl ValidatorSecrets {
    /// Writes `identity.key` and `share.key` into `dir`, readable by their owner only.
    ///
    /// # Errors
    /// [`CommitteeError::Io`].
    pub fn save(&self, dir: &Path) -> Result<(), CommitteeError> {
        write_secret(&dir.join(IDENTITY_FILE), &hex(&self.identity.encode()))?;
        write_secret(&dir.join(SHARE_FILE), &hex(&self.share.encode()))
    }

    /// Reads `identity.key` and `share.key` from `dir`.
    ///
    /// # Errors
    /// [`CommitteeError::Io`], [`CommitteeError::Malformed`].
    pub fn load(dir: &Path) -> Result<Self, CommitteeError> {
        let identity = read_hex(&dir.join(IDENTITY_FILE))?;
        let share = read_hex(&dir.join(SHARE_FILE))?;
        let malformed = |file: &str, e: commonware_codec::Error| CommitteeError::Malformed {
            path: dir.join(file).display().to_string(),
            what: e.to_string(),
        };
        Ok(ValidatorSecrets {
            identity: ed25519::PrivateKey::decode(identity).map_err(|e| malformed(IDENTITY_FILE, e))?,
            share: Share::decode(share).map_err(|e| malformed(SHARE_FILE, e))?,
        })
    }
}

fn io(path: &Path, source: std::io::Error) -> CommitteeError {
    CommitteeError::Io { path: path.display().to_string(), source }
}

fn write_secret(path: &Path, text: &str) -> Result<(), CommitteeError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|source| io(path, source))?;
    std::io::Write::write_all(&mut file, format!("{text}\n").as_bytes()).map_err(|source| io(path, source))
}

fn read_hex(path: &Path) -> Result<Vec<u8>, CommitteeError> {
    let text = std::fs::read_to_string(path).map_err(|source| io(path, source))?;
    unhex(text.trim()).map_err(|what| CommitteeError::Malformed { path: path.display().to_string(), what })
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes of lowercase or uppercase hex.
///
/// # Errors
/// A message for an odd length or a character that is not a hex digit.
pub fn unhex(text: &str) -> Result<Vec<u8>, String> {
    if !text.len().is_multiple_of(2) {
        return Err("odd number of hex digits".into());
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(text.get(i..i + 2).unwrap_or("zz"), 16).map_err(|_| "not hex".to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use atoma_ledger::genesis::{LocalKeys, LocalNetworkOptions};

    fn set_of(n: usize) -> (ValidatorSet, Vec<ValidatorSecrets>) {
        deal(n, rand_chacha::ChaCha20Rng::from_seed([7; 32])).expect("deal")
    }

    #[test]
    fn a_dealt_set_signs_and_round_trips_through_its_files() {
        let (set, secrets) = set_of(4);
        assert_eq!((set.len(), set.max_faulty(), set.polynomial.required()), (4, 1, 3));
        let mut genesis = LocalKeys::generate(1).unwrap().genesis(&LocalNetworkOptions::default(), 1_000);
        genesis.validator_public_key = set.commitment();
        let chain = genesis.digest().0;
        for s in &secrets {
            set.signer(&chain, s).expect("every share fits");
        }
        let addresses: Vec<_> = (0..4)
            .map(|i| {
                (SocketAddr::from(([127, 0, 0, 1], 9100 + i)), SocketAddr::from(([127, 0, 0, 1], 9000 + i)))
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        NetworkFile::new(&set, genesis.clone(), true, &addresses).save(dir.path()).unwrap();
        secrets[2].save(dir.path()).unwrap();
        let file = NetworkFile::load(dir.path()).unwrap();
        assert_eq!(file.genesis, genesis);
        let read = file.validator_set().unwrap();
        assert_eq!(read.commitment(), set.commitment());
        let loaded = ValidatorSecrets::load(dir.path()).unwrap();
        assert_eq!(loaded.identity.public_key(), secrets[2].identity.public_key());
        read.signer(&chain, &loaded).expect("the loaded share fits the loaded set");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(SHARE_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "secrets are private");
        }
    }

    #[test]
    fn a_share_or_a_genesis_of_another_set_is_refused() {
        let (set, _) = set_of(4);
        let (_, other) = set_of(4);
        let (_, mine) = deal(4, rand_chacha::ChaCha20Rng::from_seed([8; 32])).unwrap();
        assert!(set.signer(&[0; 32], &mine[0]).is_err(), "another set's identity and share");
        let _ = other;
        let mut genesis = LocalKeys::generate(1).unwrap().genesis(&LocalNetworkOptions::default(), 1_000);
        genesis.validator_public_key = [9; 32];
        let addresses =
            vec![(SocketAddr::from(([127, 0, 0, 1], 1)), SocketAddr::from(([127, 0, 0, 1], 2))); 4];
        let file = NetworkFile::new(&set, genesis, true, &addresses);
        assert!(matches!(file.validator_set(), Err(CommitteeError::Invalid(_))));
        assert!(deal(0, rand_chacha::ChaCha20Rng::from_seed([0; 32])).is_err());
        assert_eq!(unhex("0aFf"), Ok(vec![10, 255]));
        assert!(unhex("0g").is_err() && unhex("abc").is_err());
    }
}
