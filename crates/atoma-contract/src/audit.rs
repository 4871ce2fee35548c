//! Conservation of supply (SPEC §7.4): every base unit is in exactly one place.

use serde::{Deserialize, Serialize};

use crate::state::AtomaDb;

/// Each term of SPEC §7.4, in base units.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Audit {
    /// Minted at genesis; never changes.
    pub total_supply: u128,
    /// Σ account balances.
    pub account_balances: u128,
    /// Sampling-consensus surcharges collected.
    pub fee_treasury: u128,
    /// Slashed collateral not paid to oracles or honest nodes.
    pub communal_treasury: u128,
    /// Σ node collateral.
    pub node_collateral: u128,
    /// Locked and unlocked together.
    pub node_fees: u128,
    /// Σ escrow of open stacks.
    pub stack_escrow: u128,
}

impl Audit {
    /// The sum of every place TOMA can be.
    pub fn accounted(&self) -> u128 {
        self.account_balances
            + self.fee_treasury
            + self.communal_treasury
            + self.node_collateral
            + self.node_fees
            + self.stack_escrow
    }

    /// Whether supply is conserved.
    pub fn holds(&self) -> bool {
        self.accounted() == self.total_supply
    }
}

impl AtomaDb {
    /// Sums every term of SPEC §7.4 by scanning the state.
    pub fn audit(&self) -> Audit {
        let g = self.globals.get();
        Audit {
            total_supply: g.total_supply,
            account_balances: self.balances.values().map(|b| u128::from(*b)).sum(),
            fee_treasury: u128::from(g.fee_treasury),
            communal_treasury: u128::from(g.communal_treasury),
            node_collateral: self.nodes.values().map(|n| u128::from(n.collateral)).sum(),
            node_fees: self.nodes.values().map(|n| n.fees.total()).sum(),
            stack_escrow: self.stacks.values().map(|s| u128::from(s.escrow)).sum(),
        }
    }
}
