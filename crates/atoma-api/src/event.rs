//! Events as JSON (SPEC §10): the `parsedJson` object and the Sui-style envelope around it.

use atoma_contract::{Address, Event, EventValue, ObjectId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::digest::{DigestError, decode_digest, encode_digest};
use crate::wire;

/// The Move module every event of the contract belongs to, as in the deployed `atoma::db`.
pub const TRANSACTION_MODULE: &str = "db";

/// One field value in the `parsedJson` convention (SPEC §10).
///
/// `u64` → `"1500"`; `u8`/`u16` → `7`; bytes → `[1, 2, 3]`; ids and addresses → `"0x…"` (64
/// lowercase hex digits); small ids → `{"inner": "7"}`; echelon ids → `{"id": "1"}`; options →
/// `null` or the value; lists → arrays; bools and strings as themselves.
pub fn event_value_json(value: &EventValue) -> Value {
    match value {
        EventValue::U64(v) => Value::String(v.to_string()),
        EventValue::Small(v) => Value::from(*v),
        EventValue::Bool(v) => Value::Bool(*v),
        EventValue::Str(v) => Value::String(v.clone()),
        EventValue::Bytes(v) => Value::Array(v.iter().map(|b| Value::from(*b)).collect()),
        EventValue::Id(v) => Value::String(ObjectId(*v).to_string()),
        EventValue::SmallId(v) => object([("inner", Value::String(v.to_string()))]),
        EventValue::EchelonId(v) => object([("id", Value::String(v.to_string()))]),
        EventValue::Option(None) => Value::Null,
        EventValue::Option(Some(v)) => event_value_json(v),
        EventValue::List(items) => Value::Array(items.iter().map(event_value_json).collect()),
    }
}

fn object<const N: usize>(entries: [(&str, Value); N]) -> Value {
    Value::Object(entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

/// The event's `parsedJson` object: its fields, snake_case as the event declares them, in
/// [`Event::fields`] order.
pub fn event_json(event: &Event) -> Value {
    let fields: Map<String, Value> = event
        .fields()
        .into_iter()
        .map(|(name, value)| (name.to_string(), event_value_json(&value)))
        .collect();
    Value::Object(fields)
}

/// The envelope's `type`: `<packageId>::db::<EventName>`.
pub fn event_type(package_id: &ObjectId, event_name: &str) -> String {
    format!("{package_id}::{TRANSACTION_MODULE}::{event_name}")
}

/// Where an event sits in the log: its transaction and its index among that transaction's
/// events. It is also the cursor of `atoma_queryEvents`.
///
/// JSON: `{"txDigest": "<base58>", "eventSeq": "3"}`; `eventSeq` is also accepted as a number.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventId {
    /// The transaction digest in base58.
    pub tx_digest: String,
    /// The event's index within its transaction, from 0.
    #[serde(with = "wire::u64_str")]
    pub event_seq: u64,
}

impl EventId {
    /// The id of the `event_seq`-th event of the transaction with this digest.
    pub fn new(tx_digest: &[u8; 32], event_seq: u64) -> Self {
        EventId { tx_digest: encode_digest(tx_digest), event_seq }
    }

    /// The transaction digest as bytes.
    ///
    /// # Errors
    /// [`DigestError`] when `tx_digest` is not a base58 32-byte digest.
    pub fn tx_digest_bytes(&self) -> Result<[u8; 32], DigestError> {
        decode_digest(&self.tx_digest)
    }
}

/// One event as the RPC serves it (SPEC §10), field for field Sui's `SuiEvent`:
///
/// ```json
/// {"id": {"txDigest": "…", "eventSeq": "0"}, "packageId": "0x…", "transactionModule": "db",
///  "sender": "0x…", "type": "0x…::db::StackCreatedEvent", "parsedJson": {…}, "timestampMs": "…"}
/// ```
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventEnvelope {
    /// The event's transaction and index.
    pub id: EventId,
    /// The package id fixed at genesis.
    #[serde(with = "wire::text")]
    pub package_id: ObjectId,
    /// Always [`TRANSACTION_MODULE`].
    pub transaction_module: String,
    /// The address that signed the transaction.
    #[serde(with = "wire::text")]
    pub sender: Address,
    /// `<packageId>::db::<EventName>`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The event's fields; see [`event_json`].
    pub parsed_json: Value,
    /// The block's timestamp in milliseconds.
    #[serde(with = "wire::u64_str")]
    pub timestamp_ms: u64,
}

impl EventEnvelope {
    /// Wraps `event`, the `event_seq`-th event of transaction `tx_digest`.
    pub fn new(
        package_id: ObjectId,
        tx_digest: [u8; 32],
        event_seq: u64,
        sender: Address,
        timestamp_ms: u64,
        event: &Event,
    ) -> Self {
        EventEnvelope {
            id: EventId::new(&tx_digest, event_seq),
            package_id,
            transaction_module: TRANSACTION_MODULE.to_string(),
            sender,
            event_type: event_type(&package_id, event.name()),
            parsed_json: event_json(event),
            timestamp_ms,
        }
    }

    /// The event's name, such as `StackCreatedEvent`: the last segment of `type`.
    pub fn event_name(&self) -> &str {
        self.event_type.rsplit("::").next().unwrap_or(&self.event_type)
    }
}

#[cfg(test)]
mod tests {
    use atoma_contract::event::{NodeSubscribedToTaskEvent, PublishedEvent};
    use atoma_contract::{NodeSmallId, TaskSmallId};
    use serde_json::json;

    use super::*;

    fn render(v: EventValue) -> String {
        event_value_json(&v).to_string()
    }

    #[test]
    fn u64_is_a_decimal_string() {
        assert_eq!(render(EventValue::U64(1500)), r#""1500""#);
        assert_eq!(render(EventValue::U64(u64::MAX)), r#""18446744073709551615""#);
        assert_eq!(render(EventValue::U64(0)), r#""0""#);
    }

    #[test]
    fn small_integers_are_numbers() {
        assert_eq!(render(EventValue::Small(7)), "7");
        assert_eq!(render(EventValue::Small(u16::MAX)), "65535");
    }

    #[test]
    fn bools_and_strings_are_themselves() {
        assert_eq!(render(EventValue::Bool(true)), "true");
        assert_eq!(render(EventValue::Bool(false)), "false");
        assert_eq!(render(EventValue::Str("llama \"3\"".into())), r#""llama \"3\"""#);
    }

    #[test]
    fn bytes_are_arrays_of_numbers() {
        assert_eq!(render(EventValue::Bytes(vec![0, 1, 255])), "[0,1,255]");
        assert_eq!(render(EventValue::Bytes(vec![])), "[]");
    }

    #[test]
    fn ids_are_0x_and_64_lowercase_hex_digits() {
        let mut id = [0u8; 32];
        id[0] = 0xAB;
        id[31] = 0x0F;
        let text = event_value_json(&EventValue::Id(id));
        let expected = format!("0xab{}0f", "00".repeat(30));
        assert_eq!(text, Value::String(expected));
    }

    #[test]
    fn small_and_echelon_ids_are_wrapped() {
        assert_eq!(event_value_json(&EventValue::SmallId(7)), json!({"inner": "7"}));
        assert_eq!(event_value_json(&EventValue::EchelonId(1)), json!({"id": "1"}));
    }

    #[test]
    fn options_are_null_or_the_value() {
        assert_eq!(event_value_json(&EventValue::Option(None)), Value::Null);
        let some = EventValue::Option(Some(Box::new(EventValue::U64(9))));
        assert_eq!(event_value_json(&some), json!("9"));
        let some_id = EventValue::Option(Some(Box::new(EventValue::SmallId(3))));
        assert_eq!(event_value_json(&some_id), json!({"inner": "3"}));
    }

    #[test]
    fn lists_are_arrays() {
        let list = EventValue::List(vec![EventValue::SmallId(1), EventValue::SmallId(2)]);
        assert_eq!(event_value_json(&list), json!([{"inner": "1"}, {"inner": "2"}]));
        assert_eq!(event_value_json(&EventValue::List(vec![])), json!([]));
    }

    #[test]
    fn parsed_json_keeps_field_order() {
        let e = Event::from(NodeSubscribedToTaskEvent {
            task_small_id: TaskSmallId(3),
            node_small_id: NodeSmallId(4),
            price_per_compute_unit: 1500,
            max_num_compute_units: 6,
        });
        // Field order is not alphabetical here, so a sorted map would fail this.
        assert_eq!(
            event_json(&e).to_string(),
            r#"{"task_small_id":{"inner":"3"},"node_small_id":{"inner":"4"},"price_per_compute_unit":"1500","max_num_compute_units":"6"}"#
        );
    }

    #[test]
    fn event_id_round_trips_and_reads_numbers() {
        let id = EventId::new(&[42; 32], 3);
        let text = serde_json::to_string(&id).expect("serializes");
        assert_eq!(text, format!(r#"{{"txDigest":"{}","eventSeq":"3"}}"#, id.tx_digest));
        assert_eq!(serde_json::from_str::<EventId>(&text).ok(), Some(id.clone()));
        let numeric = format!(r#"{{"txDigest":"{}","eventSeq":3}}"#, id.tx_digest);
        assert_eq!(serde_json::from_str::<EventId>(&numeric).ok(), Some(id.clone()));
        assert_eq!(id.tx_digest_bytes(), Ok([42; 32]));
        let max = EventId { tx_digest: id.tx_digest.clone(), event_seq: u64::MAX };
        let back: Option<EventId> =
            serde_json::to_string(&max).ok().and_then(|t| serde_json::from_str(&t).ok());
        assert_eq!(back, Some(max));
    }

    #[test]
    fn event_id_rejects_bad_sequence_numbers() {
        for seq in
            [r#""-1""#, "-1", r#""""#, r#""+1""#, r#""1.0""#, "1.5", r#""18446744073709551616""#, "null"]
        {
            let text = format!(r#"{{"txDigest":"abc","eventSeq":{seq}}}"#);
            assert!(serde_json::from_str::<EventId>(&text).is_err(), "accepted eventSeq {seq}");
        }
    }

    #[test]
    fn envelope_has_sui_shape_and_round_trips() {
        let package = ObjectId([0x11; 32]);
        let sender = Address([0x22; 32]);
        let db = ObjectId([0x33; 32]);
        let event = Event::from(PublishedEvent { db, manager_badge: ObjectId([0x44; 32]) });
        let env = EventEnvelope::new(package, [0x55; 32], 0, sender, 1_700_000_000_123, &event);
        let v = serde_json::to_value(&env).expect("serializes");
        let keys: Vec<_> = v.as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default();
        assert_eq!(
            keys,
            ["id", "packageId", "transactionModule", "sender", "type", "parsedJson", "timestampMs"]
        );
        assert_eq!(v["packageId"], json!(package.to_string()));
        assert_eq!(v["transactionModule"], json!("db"));
        assert_eq!(v["sender"], json!(sender.to_string()));
        assert_eq!(v["type"], json!(format!("{package}::db::PublishedEvent")));
        assert_eq!(v["parsedJson"]["db"], json!(db.to_string()));
        assert_eq!(v["timestampMs"], json!("1700000000123"));
        assert_eq!(v["id"]["eventSeq"], json!("0"));
        assert_eq!(env.event_name(), "PublishedEvent");
        let back: EventEnvelope = serde_json::from_value(v).expect("parses back");
        assert_eq!(back, env);
    }

    #[test]
    fn envelope_rejects_malformed_ids() {
        let env = EventEnvelope::new(
            ObjectId([1; 32]),
            [2; 32],
            1,
            Address([3; 32]),
            4,
            &Event::from(PublishedEvent { db: ObjectId([5; 32]), manager_badge: ObjectId([6; 32]) }),
        );
        let mut v = serde_json::to_value(&env).expect("serializes");
        v["sender"] = json!("0x1234");
        assert!(serde_json::from_value::<EventEnvelope>(v).is_err());
    }
}
