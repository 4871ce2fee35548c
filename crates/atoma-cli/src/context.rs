//! What every command handler needs: the global flags, the output mode, the keystore and a
//! connection to the node, each made when first needed.

use atoma_api::BadgeKindView;
use atoma_api::rpc::TransactionResult;
use atoma_contract::{Address, Call, ObjectId};
use atoma_ledger::genesis::ADMIN_ALIAS;

use crate::cli::Global;
use crate::error::{CliError, CliErrorKind, CliResult};
use crate::keys::{Keys, Named};
use crate::output::Output;
use crate::rpc::Rpc;

/// The global flags and lazily opened resources.
pub struct Ctx {
    /// `--rpc`, `--as`, `--json`.
    pub global: Global,
    /// Where results go.
    pub out: Output,
    /// Made at once: the client connects lazily, so this costs nothing until used.
    rpc: CliResult<Rpc>,
    keys: Option<Keys>,
}

impl Ctx {
    /// A context for these flags.
    pub fn new(global: Global, out: Output) -> Self {
        let rpc = Rpc::new(&global.rpc);
        Ctx { global, out, rpc, keys: None }
    }

    /// The node connection.
    ///
    /// # Errors
    /// `EInvalidArgument` for a bad `--rpc` URL.
    pub fn rpc(&self) -> CliResult<&Rpc> {
        self.rpc.as_ref().map_err(Clone::clone)
    }

    /// The keystore.
    ///
    /// # Errors
    /// `EKeystore` when it cannot be read.
    pub fn keys(&mut self) -> CliResult<&mut Keys> {
        if self.keys.is_none() {
            self.keys = Some(Keys::load_default()?);
        }
        self.keys.as_mut().ok_or_else(|| CliError::new(CliErrorKind::EKeystore, "no keystore"))
    }

    /// The key that signs: `--as`, else the first user account.
    ///
    /// # Errors
    /// `EUnknownKey`.
    pub fn signer(&mut self) -> CliResult<Named> {
        let who = self.global.signer.clone();
        self.keys()?.signer(who.as_deref(), None)
    }

    /// The key that signs admin calls: `--as`, else `admin`.
    ///
    /// # Errors
    /// `EUnknownKey`.
    pub fn admin_signer(&mut self) -> CliResult<Named> {
        let who = self.global.signer.clone();
        self.keys()?.signer(who.as_deref(), Some(ADMIN_ALIAS))
    }

    /// An address from an alias or `0x…`; the signer's when `None`.
    ///
    /// # Errors
    /// `EUnknownKey`, `EInvalidArgument`.
    pub fn address_or_signer(&mut self, who: Option<&str>) -> CliResult<Address> {
        match who {
            Some(who) => self.keys()?.address(who),
            None => Ok(self.signer()?.key.address()),
        }
    }

    /// The alias of an address, or the address shortened.
    pub fn label(&mut self, address: &Address) -> String {
        let alias = self.keys().ok().and_then(|k| k.alias_of(address).map(str::to_string));
        alias.unwrap_or_else(|| crate::format::short_id(&address.to_string()))
    }

    /// Every keystore alias by address, for naming accounts in events (empty without a keystore).
    pub fn labels(&mut self) -> crate::render::Labels {
        match self.keys() {
            Ok(keys) => keys.entries().iter().map(|e| (e.address.clone(), e.alias.clone())).collect(),
            Err(_) => crate::render::Labels::new(),
        }
    }

    /// Signs `call` as the signer and submits it.
    ///
    /// # Errors
    /// The contract's or ledger's named error.
    pub async fn submit(&mut self, call: Call) -> CliResult<(Named, TransactionResult)> {
        let signer = self.signer()?;
        let result = self.rpc()?.submit(&signer.key, call).await?;
        Ok((signer, result))
    }

    /// Signs an admin operation with the admin signer and its manager badge (`--badge`, else the
    /// first one it owns).
    ///
    /// # Errors
    /// `ENoManagerBadge` when the signer owns none; the contract's named errors.
    pub async fn submit_admin(
        &mut self,
        badge: Option<&str>,
        op: atoma_contract::AdminOp,
    ) -> CliResult<(Named, TransactionResult)> {
        let signer = self.admin_signer()?;
        let manager_badge = match badge {
            Some(text) => text.parse::<ObjectId>().map_err(|e| CliError::invalid(format!("--badge: {e}")))?,
            None => self.manager_badge(&signer).await?,
        };
        let call = Call::Admin { manager_badge, op };
        let result = self.rpc()?.submit(&signer.key, call).await?;
        Ok((signer, result))
    }

    /// The first manager badge `signer` owns.
    async fn manager_badge(&mut self, signer: &Named) -> CliResult<ObjectId> {
        let rpc = self.rpc()?;
        let badges = rpc.check(rpc.client().get_owned_badges(&signer.key.address()).await)?;
        badges.iter().find(|b| b.kind == BadgeKindView::AtomaManagerBadge).map(|b| b.id).ok_or_else(|| {
            CliError::new(
                CliErrorKind::ENoManagerBadge,
                format!(
                    "{} ({}) owns no manager badge; sign with --as admin, or have an admin run \
                     `atoma admin new-manager-badge --to {}`",
                    signer.alias,
                    signer.key.address(),
                    signer.alias
                ),
            )
        })
    }
}
