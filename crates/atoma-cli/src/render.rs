//! Views and transaction results as [`Report`]s: the JSON the RPC served, and text for people.

use atoma_api::rpc::TransactionResult;
use atoma_api::{
    AuditView, BadgeView, ClosedStackView, EventEnvelope, ModelView, NodeView, StackLookup, StackView,
    TaskView, TicketView,
};
use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::format::{Table, fields, hex, short_id, thousands, toma};
use crate::names::{modality_name, optimizations_name, role_name, security_name};
use crate::output::Report;

/// Aliases of known addresses (`0x…` → `account-0`), so events name accounts as the keystore
/// does.
pub type Labels = BTreeMap<String, String>;

/// Any serializable view as JSON (views always serialize).
pub fn to_json<T: Serialize>(view: &T) -> Value {
    serde_json::to_value(view).unwrap_or(Value::Null)
}

/// What a transaction created or selected, by kind: `{"node": "3"}`, `{"stack": "7",
/// "selectedNode": "2"}`, … read from its events, so scripts need not dig through them.
pub fn created(events: &[EventEnvelope]) -> Map<String, Value> {
    let mut out = Map::new();
    for e in events {
        let p = &e.parsed_json;
        let mut put = |key: &str, field: &str| {
            if let Some(v) = plain(p.get(field)) {
                out.insert(key.to_string(), Value::String(v));
            }
        };
        match e.event_name() {
            "NodeRegisteredEvent" => {
                put("node", "node_small_id");
                put("badge", "badge_id");
            }
            "TaskRegisteredEvent" => put("task", "task_small_id"),
            "StackCreatedEvent" => {
                put("stack", "small_id");
                put("selectedNode", "selected_node");
                put("price", "price");
            }
            "ManagerBadgeCreatedEvent" => put("badge", "badge_id"),
            "StackSettlementTicketClaimedEvent" => put("userRefund", "user_refund_amount"),
            _ => {}
        }
    }
    out
}

/// A small id, echelon id, number or string as plain text.
fn plain(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Object(map) => map.get("inner").or_else(|| map.get("id")).and_then(|v| plain(Some(v))),
        _ => None,
    }
}

/// A transaction's result: its JSON plus `signer` and `created`, and a headline with its events.
pub fn transaction(headline: &str, signer: &str, result: &TransactionResult, labels: &Labels) -> Report {
    let mut json = to_json(result);
    if let Value::Object(map) = &mut json {
        map.insert("signer".into(), Value::String(signer.to_string()));
        map.insert("created".into(), Value::Object(created(&result.events)));
    }
    let mut text = format!(
        "{headline}\n  tx {}  block {}  epoch {}  signed by {signer}",
        result.digest, result.block_height, result.epoch
    );
    for event in &result.events {
        text.push_str("\n  ");
        text.push_str(&event_line(event, labels));
    }
    Report::new(json, text)
}

/// `StackCreatedEvent  small_id=3 selected_node=1 …`
pub fn event_line(event: &EventEnvelope, labels: &Labels) -> String {
    let fields: Vec<String> = match &event.parsed_json {
        Value::Object(map) => map.iter().map(|(k, v)| format!("{k}={}", value_text(k, v, labels))).collect(),
        other => vec![other.to_string()],
    };
    format!("{}  {}", event.event_name(), fields.join(" "))
}

/// One event field as text: small ids unwrapped, byte strings in short hex, amounts in TOMA.
fn value_text(key: &str, value: &Value, labels: &Labels) -> String {
    let is_money = ["amount", "collateral", "reward", "fees_returned"].iter().any(|m| key.contains(m));
    match value {
        Value::String(s) if s.starts_with("0x") => labels.get(s).cloned().unwrap_or_else(|| short_id(s)),
        Value::String(s) if is_money => s.parse::<u128>().map_or_else(|_| s.clone(), toma),
        Value::String(s) => s.clone(),
        Value::Array(items) if items.iter().all(Value::is_u64) && !items.is_empty() => {
            let bytes: Vec<u8> =
                items.iter().filter_map(|v| v.as_u64().and_then(|b| u8::try_from(b).ok())).collect();
            if bytes.len() == items.len() {
                short_id(&format!("0x{}", hex(&bytes)))
            } else {
                items.iter().map(|v| value_text(key, v, labels)).collect::<Vec<_>>().join(",")
            }
        }
        Value::Array(items) => {
            format!("[{}]", items.iter().map(|v| value_text(key, v, labels)).collect::<Vec<_>>().join(","))
        }
        Value::Object(_) => plain(Some(value)).unwrap_or_else(|| value.to_string()),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// A page of events as a table.
pub fn events_table(events: &[EventEnvelope], labels: &Labels) -> String {
    if events.is_empty() {
        return "no events".into();
    }
    events.iter().map(|e| event_line(e, labels)).collect::<Vec<_>>().join("\n")
}

fn money(v: u64) -> String {
    toma(u128::from(v))
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

/// A node.
pub fn node(view: &NodeView) -> Report {
    let mut text = fields(&[
        ("node", view.small_id.to_string()),
        ("owner", opt(view.owner.map(|a| a.to_string()))),
        ("endpoint", opt(view.endpoint.clone())),
        ("badge", view.badge_id.to_string()),
        ("collateral", money(view.collateral)),
        ("reputation", view.reputation.to_string()),
        ("optimizations", optimizations_name(view.supported_optimizations)),
        ("fees", format!("{} unlocked, {} locked", money(view.unlocked_fees), money(view.locked_fees))),
        ("registered", format!("epoch {}", view.registered_epoch)),
        ("disabled", opt(view.disabled_at_epoch.map(|e| format!("at epoch {e}")))),
        ("open work", view.open_work.to_string()),
        ("enclave key", opt(view.tee_key.as_ref().map(|k| format!("rotation {}", k.key_rotation_counter)))),
    ]);
    let mut subs = Table::new(&["TASK", "PRICE/UNIT (base)", "MAX UNITS"]);
    for s in &view.subscriptions {
        subs.row(vec![
            s.task_small_id.to_string(),
            thousands(u128::from(s.price_per_compute_unit)),
            thousands(u128::from(s.max_num_compute_units)),
        ]);
    }
    if !subs.is_empty() {
        text.push_str("\n\nsubscriptions:\n");
        text.push_str(&subs.render());
    }
    if !view.models.is_empty() {
        let models: Vec<String> =
            view.models.iter().map(|m| format!("{} (echelon {})", m.model_name, m.echelon_id)).collect();
        text.push_str(&format!("\n\nmodels: {}", models.join(", ")));
    }
    Report::new(to_json(view), text)
}

/// A task.
pub fn task(view: &TaskView) -> Report {
    let text = fields(&[
        ("task", view.small_id.to_string()),
        ("id", view.id.to_string()),
        ("owner", opt(view.owner.map(|a| a.to_string()))),
        ("role", role_name(view.role)),
        ("model", opt(view.model_name.clone())),
        ("security", security_name(view.security_level)),
        ("min reputation", opt(view.minimum_reputation_score)),
        ("optimizations", optimizations_name(view.required_optimizations)),
        ("created", format!("epoch {}", view.created_epoch)),
        ("deprecated", opt(view.deprecated_at_epoch.map(|e| format!("at epoch {e}")))),
        ("subscribers", view.num_subscribers.to_string()),
        ("open stacks", view.open_stacks.to_string()),
    ]);
    Report::new(to_json(view), text)
}

/// A table of tasks.
pub fn task_table(tasks: &[TaskView]) -> String {
    let mut table =
        Table::new(&["TASK", "ROLE", "MODEL", "SECURITY", "SUBSCRIBERS", "OPEN STACKS", "STATUS"]);
    for t in tasks {
        table.row(vec![
            t.small_id.to_string(),
            role_name(t.role),
            opt(t.model_name.clone()),
            security_name(t.security_level),
            t.num_subscribers.to_string(),
            t.open_stacks.to_string(),
            if t.deprecated_at_epoch.is_some() { "deprecated".into() } else { "active".into() },
        ]);
    }
    if table.is_empty() { "no tasks".into() } else { table.render() }
}

/// A stack, open or closed.
pub fn stack(lookup: &StackLookup) -> Report {
    let text = match lookup {
        StackLookup::Open(s) => open_stack(s),
        StackLookup::Closed(c) => closed_stack(c),
    };
    Report::new(to_json(lookup), text)
}

fn closed_stack(c: &ClosedStackView) -> String {
    fields(&[
        ("stack", format!("{} (closed: {:?}, epoch {})", c.small_id, c.closed, c.closed_epoch)),
        ("owner", c.owner.to_string()),
        ("task", c.task_small_id.to_string()),
        ("selected node", c.selected_node.to_string()),
        ("units", thousands(u128::from(c.num_compute_units))),
        ("price/unit", format!("{} base units", thousands(u128::from(c.price_per_compute_unit)))),
        ("claimed units", opt(c.claimed_units.map(|u| thousands(u128::from(u))))),
        ("paid units", thousands(u128::from(c.paid_units))),
        ("escrow", money(c.escrow)),
        ("to the node", money(c.paid_to_node)),
        ("to attesters", money(c.paid_to_attesters)),
        ("surcharge", money(c.surcharge)),
        ("refund", money(c.refund)),
    ])
}

fn open_stack(s: &StackView) -> String {
    let mut text = fields(&[
        ("stack", s.small_id.to_string()),
        ("owner", opt(s.owner.map(|a| a.to_string()))),
        ("task", s.task_small_id.to_string()),
        ("selected node", s.selected_node.to_string()),
        ("units", thousands(u128::from(s.num_compute_units))),
        ("price/unit", format!("{} base units", thousands(u128::from(s.price_per_compute_unit)))),
        ("security", security_name(s.security_level)),
        ("escrow", money(s.escrow)),
        ("bought", format!("epoch {}", s.created_epoch)),
    ]);
    match &s.settlement_ticket {
        Some(t) => text.push_str(&format!("\n\nsettlement ticket:\n{}", ticket_text(t))),
        None => text.push_str("\n\nnot settled yet"),
    }
    text
}

/// A settlement ticket.
pub fn ticket(view: &TicketView) -> Report {
    Report::new(to_json(view), ticket_text(view))
}

fn ticket_text(t: &TicketView) -> String {
    let attesters: Vec<String> = t
        .requested_attestation_nodes
        .iter()
        .zip(&t.attestations)
        .map(|(n, a)| format!("{n}{}", if a.is_some() { " (attested)" } else { "" }))
        .collect();
    fields(&[
        ("status", format!("{:?}", t.status)),
        ("claimed units", thousands(u128::from(t.num_claimed_compute_units))),
        ("settled units", thousands(u128::from(t.settled_units))),
        ("contested units", opt(t.contested_units)),
        ("proof", format!("0x{}", hex(&t.committed_stack_proof))),
        ("leaf", format!("0x{}", hex(&t.stack_merkle_leaf))),
        ("attesters", if attesters.is_empty() { "none".into() } else { attesters.join(", ") }),
        (
            "window closes",
            format!(
                "at epoch {} or at time {} ms, whichever is later",
                t.dispute_settled_at_epoch, t.window_floor_ms
            ),
        ),
    ])
}

/// A model.
pub fn model(view: &ModelView) -> Report {
    let mut text = fields(&[
        ("model", view.name.clone()),
        ("modality", modality_name(view.modality)),
        ("enabled", view.enabled.to_string()),
    ]);
    let mut table =
        Table::new(&["ECHELON", "IN FEE/TOKEN", "OUT FEE/TOKEN", "PERFORMANCE", "TIMEOUT MS", "ORACLES"]);
    for e in &view.echelons {
        let oracles: Vec<String> = e.oracles.iter().map(ToString::to_string).collect();
        table.row(vec![
            e.id.to_string(),
            thousands(u128::from(e.input_fee_per_token)),
            thousands(u128::from(e.output_fee_per_token)),
            e.relative_performance.to_string(),
            thousands(u128::from(e.settlement_timeout_ms)),
            if oracles.is_empty() { "-".into() } else { oracles.join(",") },
        ]);
    }
    if !table.is_empty() {
        text.push_str("\n\n");
        text.push_str(&table.render());
    }
    Report::new(to_json(view), text)
}

/// The conservation audit.
pub fn audit(view: &AuditView) -> Report {
    let mut text = fields(&[
        ("account balances", toma(view.account_balances)),
        ("fee treasury", toma(view.fee_treasury)),
        ("communal treasury", toma(view.communal_treasury)),
        ("node collateral", toma(view.node_collateral)),
        ("node fees", toma(view.node_fees)),
        ("stack escrow", toma(view.stack_escrow)),
        ("accounted", toma(view.accounted)),
        ("total supply", toma(view.total_supply)),
    ]);
    text.push_str(if view.holds {
        "\n\nholds: every base unit is accounted for"
    } else {
        "\n\nDOES NOT HOLD: accounted differs from the total supply"
    });
    Report::new(to_json(view), text)
}

/// Badges as a table.
pub fn badges(owner: &str, views: &[BadgeView]) -> Report {
    let mut table = Table::new(&["KIND", "FOR", "BADGE ID"]);
    for b in views {
        table.row(vec![format!("{:?}", b.kind), opt(b.small_id), b.id.to_string()]);
    }
    let text = if table.is_empty() { format!("{owner} owns no badges") } else { table.render() };
    Report::new(json!({"owner": owner, "badges": to_json(&views)}), text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(name: &str, parsed: Value) -> EventEnvelope {
        EventEnvelope {
            id: atoma_api::EventId::new(&[1; 32], 0),
            package_id: atoma_contract::ObjectId([2; 32]),
            transaction_module: "db".into(),
            sender: atoma_contract::Address([3; 32]),
            event_type: format!("0x02::db::{name}"),
            parsed_json: parsed,
            timestamp_ms: 5,
        }
    }

    #[test]
    fn created_objects_are_read_from_events() {
        let events = [
            envelope(
                "StackCreatedEvent",
                json!({"small_id": {"inner": "7"}, "selected_node": {"inner": "2"}, "price": "10"}),
            ),
            envelope("StackSettlementTicketClaimedEvent", json!({"user_refund_amount": "500"})),
        ];
        let c = created(&events);
        assert_eq!(c.get("stack"), Some(&json!("7")));
        assert_eq!(c.get("selectedNode"), Some(&json!("2")));
        assert_eq!(c.get("userRefund"), Some(&json!("500")));
    }

    #[test]
    fn event_lines_unwrap_ids_and_show_money() {
        let e = envelope(
            "StackSettlementTicketClaimedEvent",
            json!({"stack_small_id": {"inner": "3"}, "attestation_nodes": [{"inner": "4"}], "user_refund_amount": "1500000000", "proof": [1, 2]}),
        );
        assert_eq!(
            event_line(&e, &Labels::new()),
            "StackSettlementTicketClaimedEvent  stack_small_id=3 attestation_nodes=[4] user_refund_amount=1.5 TOMA proof=0x0102"
        );
    }
}
