//! Money rules (SPEC §7): escrow, settlement shares and slashing amounts.
//!
//! Every product is computed in `u128` and checked; a result that does not fit in a `u64`
//! aborts the call with `EArithmeticOverflow`. Rounding is said in each name: charges to the
//! user round up (`_ceil`), fees paid out round down (`_floor`), and the user gets the exact
//! remainder of the escrow, so no base unit is ever created or lost.

use crate::enums::SecurityLevel;
use crate::error::ContractError;
use crate::state::StackTerms;

/// `value` as a `u64`, or `EArithmeticOverflow`.
fn fit(value: u128) -> Result<u64, ContractError> {
    u64::try_from(value).map_err(|_| ContractError::EArithmeticOverflow)
}

/// `price × units`: what the selected node earns for `units` (SPEC §7.1 `base`).
pub fn base_cost(price_per_compute_unit: u64, units: u64) -> Result<u64, ContractError> {
    fit(u128::from(price_per_compute_unit) * u128::from(units))
}

/// `⌈amount × permille / 1000⌉`.
pub fn permille_ceil(amount: u64, permille: u64) -> Result<u64, ContractError> {
    fit((u128::from(amount) * u128::from(permille)).div_ceil(1000))
}

/// `⌊amount × permille / 1000⌋`.
pub fn permille_floor(amount: u64, permille: u64) -> Result<u64, ContractError> {
    fit(u128::from(amount) * u128::from(permille) / 1000)
}

/// What a stack escrows at purchase (SPEC §7.1): `base(N)` for no security and confidential
/// compute; `base(N) + ⌈base(N)·S/1000⌉ + k·⌈base(N)·X/1000⌉` for sampling consensus.
pub fn escrow(
    level: SecurityLevel,
    price_per_compute_unit: u64,
    units: u64,
    terms: &StackTerms,
) -> Result<u64, ContractError> {
    let base = base_cost(price_per_compute_unit, units)?;
    if level != SecurityLevel::SamplingConsensus {
        return Ok(base);
    }
    let surcharge = permille_ceil(base, terms.sampling_consensus_charge_permille)?;
    let per_attester = permille_ceil(base, terms.cross_validation_extra_nodes_charge_permille)?;
    let attesters = u128::from(per_attester) * u128::from(terms.cross_validation_extra_nodes_count);
    fit(u128::from(base) + u128::from(surcharge) + attesters)
}

/// Who gets what when a stack settles at `units` (SPEC §7.2), before the owner's remainder.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Shares {
    /// `base(units)`, to the selected node.
    pub node: u64,
    /// `⌊base(units)·X/1000⌋`, to each attester that attested (sampling consensus only).
    pub per_attester: u64,
    /// `⌈base(units)·S/1000⌉`, to the fee treasury (sampling consensus only).
    pub surcharge: u64,
}

/// The settlement shares for `units` claimed units.
pub fn shares(
    level: SecurityLevel,
    price_per_compute_unit: u64,
    units: u64,
    terms: &StackTerms,
) -> Result<Shares, ContractError> {
    let node = base_cost(price_per_compute_unit, units)?;
    if level != SecurityLevel::SamplingConsensus {
        return Ok(Shares { node, per_attester: 0, surcharge: 0 });
    }
    Ok(Shares {
        node,
        per_attester: permille_floor(node, terms.cross_validation_extra_nodes_charge_permille)?,
        surcharge: permille_ceil(node, terms.sampling_consensus_charge_permille)?,
    })
}

/// The collateral a timeout costs (SPEC §9.1): `⌈collateral × permille / 1000⌉`.
pub fn timeout_slash(collateral: u64, permille: u64) -> Result<u64, ContractError> {
    permille_ceil(collateral, permille).map(|s| s.min(collateral))
}

/// How a dispute slash is divided (SPEC §9.2).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct DisputeSplit {
    /// To the oracle.
    pub oracle: u64,
    /// To each honest party.
    pub per_honest: u64,
    /// To the communal treasury: the rest, including every rounding remainder.
    pub communal: u64,
}

/// Splits `slashed` among the oracle, `honest` honest parties and the communal treasury.
pub fn split_dispute_slash(
    slashed: u64,
    oracle_permille: u64,
    honest_permille: u64,
    honest: u64,
) -> Result<DisputeSplit, ContractError> {
    let oracle = permille_floor(slashed, oracle_permille)?;
    let honest_pool = permille_floor(slashed, honest_permille)?;
    let per_honest = honest_pool.checked_div(honest).unwrap_or(0);
    let paid_honest = u128::from(per_honest) * u128::from(honest);
    let communal = u128::from(slashed)
        .checked_sub(u128::from(oracle) + paid_honest)
        .ok_or(ContractError::EArithmeticOverflow)?;
    Ok(DisputeSplit { oracle, per_honest, communal: fit(communal)? })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(s: u64, x: u64, k: u64) -> StackTerms {
        StackTerms {
            sampling_consensus_charge_permille: s,
            cross_validation_extra_nodes_charge_permille: x,
            cross_validation_extra_nodes_count: k,
            cross_validation_probability_permille: 10,
            stack_dispute_settlement_delay_epochs: 1,
            stack_expiration_epochs: 7,
            dispute_resolution_deadline_epochs: 7,
            settlement_timeout_ms: 60_000,
        }
    }

    #[test]
    fn escrow_covers_every_settlement() {
        let t = terms(200, 12, 3);
        let level = SecurityLevel::SamplingConsensus;
        // base(N) = 7 * 333 = 2331; surcharge ⌈466.2⌉ = 467; per attester ⌈27.972⌉ = 28.
        assert_eq!(escrow(level, 7, 333, &t), Ok(2331 + 467 + 3 * 28));
        for units in 0..=333 {
            let s = shares(level, 7, units, &t).unwrap();
            let paid = s.node + s.surcharge + 3 * s.per_attester;
            assert!(paid <= escrow(level, 7, 333, &t).unwrap());
        }
    }

    #[test]
    fn overflow_is_an_error() {
        assert_eq!(base_cost(u64::MAX, 2), Err(ContractError::EArithmeticOverflow));
        assert_eq!(base_cost(u64::MAX, 1), Ok(u64::MAX));
        let t = terms(1000, 1000, 16);
        assert_eq!(
            escrow(SecurityLevel::SamplingConsensus, u64::MAX / 2, 1, &t),
            Err(ContractError::EArithmeticOverflow)
        );
    }

    #[test]
    fn dispute_split_pays_out_every_unit() {
        let s = split_dispute_slash(1001, 100, 200, 3).unwrap();
        assert_eq!(s.oracle, 100);
        assert_eq!(s.per_honest, 66);
        assert_eq!(s.oracle + 3 * s.per_honest + s.communal, 1001);
        let none = split_dispute_slash(1001, 100, 200, 0).unwrap();
        assert_eq!(none.per_honest, 0);
        assert_eq!(none.oracle + none.communal, 1001);
    }

    #[test]
    fn timeout_slash_rounds_up_and_never_exceeds_collateral() {
        assert_eq!(timeout_slash(1001, 100), Ok(101));
        assert_eq!(timeout_slash(1, 1), Ok(1));
        assert_eq!(timeout_slash(0, 100), Ok(0));
        assert_eq!(timeout_slash(u64::MAX, 1000), Ok(u64::MAX));
    }
}
