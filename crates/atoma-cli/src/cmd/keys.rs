//! `atoma keys new|list|show|import`: the keystore, no node needed.

use atoma_types::Keypair;
use serde_json::{Value, json};

use crate::cli::KeysCmd;
use crate::context::Ctx;
use crate::error::{CliError, CliResult};
use crate::format::{Table, fields, hex, parse_hex32};
use crate::keys::{alias_kind, is_system_alias};
use crate::output::Report;

/// Runs a `keys` subcommand.
///
/// # Errors
/// `EKeystore`, `EUnknownKey`, `EInvalidArgument`.
pub fn run(ctx: &mut Ctx, cmd: KeysCmd) -> CliResult<Report> {
    match cmd {
        KeysCmd::New { alias } => {
            let key = Keypair::generate().map_err(CliError::from)?;
            ctx.keys()?.add(&alias, &key)?;
            Ok(key_report("Created", &alias, &key, false))
        }
        KeysCmd::Import { alias, private_key } => {
            let secret = parse_hex32(&private_key).map_err(CliError::invalid)?;
            let key = Keypair::from_secret_bytes(secret);
            ctx.keys()?.add(&alias, &key)?;
            Ok(key_report("Imported", &alias, &key, false))
        }
        KeysCmd::Show { who, private_key } => {
            let named = ctx.keys()?.find(&who)?;
            Ok(key_report("Key", &named.alias, &named.key, private_key))
        }
        KeysCmd::List => list(ctx),
    }
}

fn key_report(verb: &str, alias: &str, key: &Keypair, with_secret: bool) -> Report {
    let mut json = json!({
        "alias": alias,
        "address": key.address().to_string(),
        "publicKey": hex(&key.public_key()),
        "kind": alias_kind(alias),
    });
    let mut pairs = vec![
        ("alias", alias.to_string()),
        ("address", key.address().to_string()),
        ("public key", hex(&key.public_key())),
        ("kind", alias_kind(alias).to_string()),
    ];
    if with_secret {
        json["privateKey"] = Value::String(hex(&key.secret_bytes()));
        pairs.push(("private key", hex(&key.secret_bytes())));
    }
    Report::new(json, format!("{verb} {alias}\n{}", fields(&pairs)))
}

fn list(ctx: &mut Ctx) -> CliResult<Report> {
    let keys = ctx.keys()?;
    let default = keys.entries().iter().find(|e| !is_system_alias(&e.alias)).map(|e| e.alias.clone());
    let mut table = Table::new(&["ALIAS", "ADDRESS", "KIND"]);
    let mut items = Vec::new();
    for e in keys.entries() {
        let is_default = default.as_deref() == Some(e.alias.as_str());
        let kind = alias_kind(&e.alias);
        let marker = if is_default { format!("{kind}, default signer") } else { kind.to_string() };
        table.row(vec![e.alias.clone(), e.address.clone(), marker]);
        items.push(json!({"alias": e.alias, "address": e.address, "kind": kind, "default": is_default}));
    }
    let path = keys.path().display().to_string();
    let text = if table.is_empty() {
        format!("{path} has no keys yet: run `atoma start` or `atoma keys new NAME`")
    } else {
        format!("{}\n\nkeystore: {path}", table.render())
    };
    Ok(Report::new(json!({"keystore": path, "keys": items}), text))
}
