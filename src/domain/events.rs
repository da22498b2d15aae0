//! The public event catalogue: what Emporium tells the world outside
//! (webhook subscribers, the RabbitMQ exchange, mail) and the CloudEvents
//! 1.0 envelope it is told in.
//!
//! Each domain appends its events to its own outbox (`event_outbox`) in the
//! transaction of the change, so an event exists exactly when its change
//! committed. The payloads below are versioned by `SCHEMA_VERSION` (sent as
//! the `schemaversion` extension attribute): a change that is not purely
//! additive gets a new version.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::orders::fulfilment::FulfilmentStatus;
use crate::domain::orders::returns::ReturnStatus;
use crate::domain::orders::status::OrderStatus;

/// Version of every payload below; additive changes keep it.
pub const SCHEMA_VERSION: &str = "1";

/// The CloudEvents `specversion` sent.
pub const SPEC_VERSION: &str = "1.0";

/// One type of event. The wire name (`order.paid`) is the CloudEvents
/// `type`, the AMQP routing key and what webhook subscriptions name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    CustomerCreated,
    CustomerEmailVerified,
    ProductCreated,
    ProductUpdated,
    ProductDeleted,
    VariantStockChanged,
    OrderCreated,
    OrderPaid,
    OrderCancelled,
    OrderExpired,
    OrderFulfilled,
    OrderDelivered,
    OrderRefunded,
    FulfilmentCreated,
    FulfilmentShipped,
    FulfilmentDelivered,
    FulfilmentCancelled,
    PaymentSucceeded,
    PaymentFailed,
    RefundSucceeded,
    RefundFailed,
    ReturnRequested,
    ReturnApproved,
    ReturnRejected,
    ReturnReceived,
}

impl EventType {
    /// Every type, in catalogue order.
    pub const ALL: [EventType; 25] = [
        EventType::CustomerCreated,
        EventType::CustomerEmailVerified,
        EventType::ProductCreated,
        EventType::ProductUpdated,
        EventType::ProductDeleted,
        EventType::VariantStockChanged,
        EventType::OrderCreated,
        EventType::OrderPaid,
        EventType::OrderCancelled,
        EventType::OrderExpired,
        EventType::OrderFulfilled,
        EventType::OrderDelivered,
        EventType::OrderRefunded,
        EventType::FulfilmentCreated,
        EventType::FulfilmentShipped,
        EventType::FulfilmentDelivered,
        EventType::FulfilmentCancelled,
        EventType::PaymentSucceeded,
        EventType::PaymentFailed,
        EventType::RefundSucceeded,
        EventType::RefundFailed,
        EventType::ReturnRequested,
        EventType::ReturnApproved,
        EventType::ReturnRejected,
        EventType::ReturnReceived,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::CustomerCreated => "customer.created",
            EventType::CustomerEmailVerified => "customer.email_verified",
            EventType::ProductCreated => "product.created",
            EventType::ProductUpdated => "product.updated",
            EventType::ProductDeleted => "product.deleted",
            EventType::VariantStockChanged => "variant.stock_changed",
            EventType::OrderCreated => "order.created",
            EventType::OrderPaid => "order.paid",
            EventType::OrderCancelled => "order.cancelled",
            EventType::OrderExpired => "order.expired",
            EventType::OrderFulfilled => "order.fulfilled",
            EventType::OrderDelivered => "order.delivered",
            EventType::OrderRefunded => "order.refunded",
            EventType::FulfilmentCreated => "fulfilment.created",
            EventType::FulfilmentShipped => "fulfilment.shipped",
            EventType::FulfilmentDelivered => "fulfilment.delivered",
            EventType::FulfilmentCancelled => "fulfilment.cancelled",
            EventType::PaymentSucceeded => "payment.succeeded",
            EventType::PaymentFailed => "payment.failed",
            EventType::RefundSucceeded => "refund.succeeded",
            EventType::RefundFailed => "refund.failed",
            EventType::ReturnRequested => "return.requested",
            EventType::ReturnApproved => "return.approved",
            EventType::ReturnRejected => "return.rejected",
            EventType::ReturnReceived => "return.received",
        }
    }

    /// Parses a wire name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// What the subject of this type's events is (the CloudEvents
    /// `subject` is that resource's id).
    pub fn subject_kind(self) -> &'static str {
        self.as_str().split('.').next().unwrap_or("")
    }
}

impl Serialize for EventType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Self::parse(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown event type {name}")))
    }
}

/// One event as its domain records it: not yet in an envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unique forever: subscribers de-duplicate by it.
    pub id: Uuid,
    pub event_type: EventType,
    /// The id of the resource the event is about.
    pub subject: String,
    /// The payload (one of the `*Data` types below, as JSON).
    pub data: serde_json::Value,
    pub time: DateTime<Utc>,
}

impl Event {
    /// A new event about `subject` with `data`, now.
    pub fn new(event_type: EventType, subject: impl ToString, data: &impl Serialize) -> Self {
        Self {
            id: Uuid::new_v4(),
            event_type,
            subject: subject.to_string(),
            // The payload types are plain structs: they always serialise.
            data: serde_json::to_value(data).unwrap_or(serde_json::Value::Null),
            time: Utc::now(),
        }
    }

    /// The CloudEvents 1.0 structured-mode JSON envelope, with `source`
    /// naming the emitting domain (e.g. `/emporium/orders`).
    pub fn envelope(&self, source: &str) -> CloudEvent<'_> {
        CloudEvent {
            specversion: SPEC_VERSION,
            id: self.id,
            source: source.to_owned(),
            event_type: self.event_type,
            time: self.time.to_rfc3339_opts(SecondsFormat::Micros, true),
            subject: &self.subject,
            datacontenttype: "application/json",
            schemaversion: SCHEMA_VERSION,
            data: &self.data,
        }
    }
}

/// The CloudEvents 1.0 envelope, structured mode.
#[derive(Debug, Clone, Serialize)]
pub struct CloudEvent<'a> {
    pub specversion: &'static str,
    pub id: Uuid,
    pub source: String,
    #[serde(rename = "type")]
    pub event_type: EventType,
    pub time: String,
    pub subject: &'a str,
    pub datacontenttype: &'static str,
    /// Extension attribute: the payload's schema version.
    pub schemaversion: &'static str,
    pub data: &'a serde_json::Value,
}

// The schema of `CloudEvent` for the OpenAPI components: the same
// attributes `CloudEvent` serialises (a test holds them together).
/// The CloudEvents 1.0 envelope (structured-mode JSON) every public event
/// travels in; `data` is one of the `*Data` payloads, chosen by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = CloudEvent)]
pub struct CloudEventEnvelope {
    /// Always `1.0`.
    #[schema(example = "1.0")]
    pub specversion: String,
    /// Unique forever: de-duplicate by it.
    pub id: Uuid,
    /// The emitting domain: `/emporium/<domain>`.
    #[schema(example = "/emporium/orders")]
    pub source: String,
    /// The event type's wire name.
    #[serde(rename = "type")]
    #[schema(example = "order.paid")]
    pub event_type: String,
    /// When the change committed (RFC 3339, UTC).
    pub time: DateTime<Utc>,
    /// The id of the resource the event is about.
    pub subject: String,
    /// Always `application/json`.
    #[schema(example = "application/json")]
    pub datacontenttype: String,
    /// Extension attribute: the payload's schema version.
    #[schema(example = "1")]
    pub schemaversion: String,
    /// The payload: `CustomerData`, `ProductData`, `VariantStockData`,
    /// `OrderData`, `FulfilmentData`, `PaymentData`, `RefundData` or
    /// `ReturnData`, by `type`.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

/// `customer.created`, `customer.email_verified`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CustomerData {
    pub customer_id: Uuid,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub email_verified: bool,
    pub created_at: DateTime<Utc>,
}

impl CustomerData {
    /// The payload of a new account, whose single `name` is split at its
    /// first whitespace into first and last name (`"Ada"` has an empty last
    /// name; `"Mary Ann Lee"` is `"Mary"` and `"Ann Lee"`).
    pub fn from_name(
        customer_id: Uuid,
        email: &str,
        name: &str,
        created_at: DateTime<Utc>,
    ) -> Self {
        let (first_name, last_name) = split_name(name);
        Self {
            customer_id,
            email: email.to_owned(),
            first_name,
            last_name,
            email_verified: false,
            created_at,
        }
    }
}

/// Splits a full name at its first run of whitespace into first and last
/// name, both trimmed.
pub fn split_name(name: &str) -> (String, String) {
    let name = name.trim();
    match name.split_once(char::is_whitespace) {
        Some((first, last)) => (first.to_owned(), last.trim().to_owned()),
        None => (name.to_owned(), String::new()),
    }
}

/// `product.created`, `product.updated`, `product.deleted`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProductData {
    pub product_id: Uuid,
    pub name: String,
    pub slug: String,
    /// Price of the default variant, in minor units.
    pub price: i64,
    pub currency: String,
    pub category_id: Option<Uuid>,
    pub is_active: bool,
}

/// `variant.stock_changed`: the variant's stock over every location after
/// the change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VariantStockData {
    pub variant_id: Uuid,
    pub product_id: Uuid,
    pub sku: Option<String>,
    /// Units on hand, every location.
    pub stock_quantity: i64,
    /// Units on hand and not held for an order.
    pub available: i64,
    /// Why it moved: `reservation`, `release`, `sale`, `return`, `adjustment`.
    pub reason: String,
}

/// Why a variant's stock moved (`VariantStockData::reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StockReason {
    /// Units held for a new order.
    Reservation,
    /// Held units given back (an order cancelled, expired or refunded
    /// before it shipped).
    Release,
    /// Held units sold off the shelves when a parcel shipped.
    Sale,
    /// Returned units put back on the shelves.
    Return,
    /// An admin's change: opening stock, a level set, a location switched
    /// on or off.
    Adjustment,
}

impl StockReason {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            StockReason::Reservation => "reservation",
            StockReason::Release => "release",
            StockReason::Sale => "sale",
            StockReason::Return => "return",
            StockReason::Adjustment => "adjustment",
        }
    }
}

/// One line of an order in an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderLineData {
    pub line_id: Uuid,
    pub product_id: Uuid,
    pub variant_id: Uuid,
    pub sku: Option<String>,
    pub name: String,
    pub quantity: i32,
    pub unit_price: i64,
    pub line_total: i64,
}

/// `order.*`: the order after the change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderData {
    pub order_id: Uuid,
    /// `None` for a guest order.
    pub customer_id: Option<Uuid>,
    /// A guest order's email (a customer's is on the customer).
    pub email: Option<String>,
    pub status: String,
    pub currency: String,
    pub subtotal: i64,
    pub discount: i64,
    pub shipping: i64,
    pub tax: i64,
    pub total: i64,
    pub refunded_amount: i64,
    pub lines: Vec<OrderLineData>,
    pub shipping_address: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// Units of one order line in a parcel or a return.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LineQuantityData {
    pub line_id: Uuid,
    pub quantity: i32,
}

/// `fulfilment.*`: the parcel after the change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FulfilmentData {
    pub fulfilment_id: Uuid,
    pub order_id: Uuid,
    pub status: String,
    /// The stock location it leaves from; the nil UUID only for parcels of
    /// orders whose stock was sold when paid (before per-location stock).
    pub location_id: Uuid,
    pub carrier: Option<String>,
    pub tracking_number: Option<String>,
    pub tracking_url: Option<String>,
    pub lines: Vec<LineQuantityData>,
}

/// `payment.succeeded`, `payment.failed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PaymentData {
    pub payment_id: Uuid,
    pub order_id: Uuid,
    pub status: String,
    pub amount: i64,
    pub currency: String,
    /// Why it failed (a decline code), for `payment.failed`.
    pub failure_code: Option<String>,
}

/// `refund.succeeded`, `refund.failed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RefundData {
    /// `None` for a whole-payment refund made before refunds had ids.
    pub refund_id: Option<Uuid>,
    pub payment_id: Uuid,
    pub order_id: Uuid,
    pub amount: i64,
    pub currency: String,
    pub return_id: Option<Uuid>,
}

/// `return.*`: the return after the change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReturnData {
    pub return_id: Uuid,
    pub order_id: Uuid,
    pub status: String,
    /// The customer's note on why they return (`None` when they left none;
    /// each line's own reason is on the order's return view).
    pub reason: Option<String>,
    pub lines: Vec<LineQuantityData>,
    /// Why the shop refused it, for `return.rejected`.
    #[serde(default)]
    pub reject_reason: Option<String>,
}

/// The `order.*` event a status change of an order emits, if any: each
/// event names the order's arrival in one status. Paid is `order.paid`
/// only coming from pending (a failed refund returns an order to paid
/// without it being paid again); partial fulfilment and a refund in flight
/// emit nothing.
pub fn order_event(from: Option<OrderStatus>, to: OrderStatus) -> Option<EventType> {
    match to {
        OrderStatus::Pending if from.is_none() => Some(EventType::OrderCreated),
        OrderStatus::Paid if from == Some(OrderStatus::Pending) => Some(EventType::OrderPaid),
        OrderStatus::Cancelled => Some(EventType::OrderCancelled),
        OrderStatus::Expired => Some(EventType::OrderExpired),
        OrderStatus::Fulfilled => Some(EventType::OrderFulfilled),
        OrderStatus::Delivered => Some(EventType::OrderDelivered),
        OrderStatus::Refunded => Some(EventType::OrderRefunded),
        _ => None,
    }
}

/// The `fulfilment.*` event a parcel moving to `to` emits (a new parcel
/// is `pending`: `fulfilment.created`).
pub fn fulfilment_event(to: FulfilmentStatus) -> EventType {
    match to {
        FulfilmentStatus::Pending => EventType::FulfilmentCreated,
        FulfilmentStatus::Shipped => EventType::FulfilmentShipped,
        FulfilmentStatus::Delivered => EventType::FulfilmentDelivered,
        FulfilmentStatus::Cancelled => EventType::FulfilmentCancelled,
    }
}

/// The `return.*` event a return moving to `to` emits, if any (a new
/// return is `requested`); refunded returns are told by `refund.succeeded`
/// (which names the return) and closed ones by nothing.
pub fn return_event(to: ReturnStatus) -> Option<EventType> {
    match to {
        ReturnStatus::Requested => Some(EventType::ReturnRequested),
        ReturnStatus::Approved => Some(EventType::ReturnApproved),
        ReturnStatus::Rejected => Some(EventType::ReturnRejected),
        ReturnStatus::Received => Some(EventType::ReturnReceived),
        ReturnStatus::Refunded | ReturnStatus::Closed => None,
    }
}

/// Where a domain's outbox events go. Each sink takes and acknowledges
/// events on its own, so one being down never holds back another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sink {
    /// Fanned out into webhook deliveries.
    Webhooks,
    /// Published to the RabbitMQ exchange.
    Amqp,
    /// Turned into customer mail.
    Mail,
}

impl Sink {
    /// The outbox column recording when this sink took an event.
    pub fn column(self) -> &'static str {
        match self {
            Sink::Webhooks => "webhooks_relayed_at",
            Sink::Amqp => "amqp_relayed_at",
            Sink::Mail => "mail_relayed_at",
        }
    }
}

/// Whether a subscription's list of types (names or `"*"`) takes `event`.
pub fn subscribed(types: &[String], event: EventType) -> bool {
    types.iter().any(|t| t == "*" || t == event.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_reads_back_from_its_wire_name() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
            let json = serde_json::to_value(t).expect("json");
            assert_eq!(json, t.as_str());
        }
        assert_eq!(EventType::parse("order.shipped"), None);
        assert_eq!(EventType::OrderPaid.subject_kind(), "order");
    }

    #[test]
    fn the_envelope_has_every_required_cloudevents_attribute() {
        let event = Event::new(
            EventType::OrderPaid,
            "8d0b",
            &serde_json::json!({"order_id": "8d0b"}),
        );
        let json = serde_json::to_value(event.envelope("/emporium/orders")).expect("json");
        for key in [
            "specversion",
            "id",
            "source",
            "type",
            "time",
            "subject",
            "datacontenttype",
            "data",
        ] {
            assert!(json.get(key).is_some(), "{key} missing from {json}");
        }
        assert_eq!(json["specversion"], "1.0");
        assert_eq!(json["type"], "order.paid");
        assert_eq!(json["id"], event.id.to_string());
        assert!(json["time"].as_str().expect("time").ends_with('Z'));
    }

    #[test]
    fn names_split_at_the_first_whitespace() {
        let pair = |a: &str, b: &str| (a.to_owned(), b.to_owned());
        assert_eq!(split_name("Ada Lovelace"), pair("Ada", "Lovelace"));
        assert_eq!(split_name("  Mary  Ann Lee "), pair("Mary", "Ann Lee"));
        assert_eq!(split_name("Cher"), pair("Cher", ""));
        assert_eq!(split_name(""), pair("", ""));
        let data = CustomerData::from_name(Uuid::nil(), "a@b.c", "Ada Lovelace", Utc::now());
        assert_eq!(data.first_name, "Ada");
        assert_eq!(data.last_name, "Lovelace");
        assert!(!data.email_verified);
    }

    #[test]
    fn order_status_changes_map_to_their_events() {
        use OrderStatus as S;
        assert_eq!(order_event(None, S::Pending), Some(EventType::OrderCreated));
        assert_eq!(
            order_event(Some(S::Pending), S::Paid),
            Some(EventType::OrderPaid)
        );
        // A failed refund puts the order back to paid: not paid again.
        assert_eq!(order_event(Some(S::RefundPending), S::Paid), None);
        assert_eq!(order_event(Some(S::Paid), S::PartiallyFulfilled), None);
        assert_eq!(order_event(Some(S::Paid), S::RefundPending), None);
        for (to, event) in [
            (S::Cancelled, EventType::OrderCancelled),
            (S::Expired, EventType::OrderExpired),
            (S::Fulfilled, EventType::OrderFulfilled),
            (S::Delivered, EventType::OrderDelivered),
            (S::Refunded, EventType::OrderRefunded),
        ] {
            assert_eq!(order_event(Some(S::Paid), to), Some(event));
        }
        for to in S::ALL {
            if let Some(event) = order_event(Some(S::Pending), to) {
                assert_eq!(event.subject_kind(), "order");
            }
        }
    }

    #[test]
    fn parcel_and_return_changes_map_to_their_events() {
        for to in FulfilmentStatus::ALL {
            let event = fulfilment_event(to);
            assert_eq!(event.subject_kind(), "fulfilment");
            assert!(event.as_str().ends_with(match to {
                FulfilmentStatus::Pending => "created",
                other => other.as_str(),
            }));
        }
        for to in ReturnStatus::ALL {
            match return_event(to) {
                Some(event) => assert_eq!(event.as_str(), format!("return.{}", to.as_str())),
                None => assert!(matches!(to, ReturnStatus::Refunded | ReturnStatus::Closed)),
            }
        }
    }

    #[test]
    fn stock_reasons_have_the_documented_wire_values() {
        let all = [
            StockReason::Reservation,
            StockReason::Release,
            StockReason::Sale,
            StockReason::Return,
            StockReason::Adjustment,
        ];
        let names: Vec<_> = all.iter().map(|r| r.as_str()).collect();
        assert_eq!(
            names,
            ["reservation", "release", "sale", "return", "adjustment"]
        );
    }

    #[test]
    fn the_documented_envelope_reads_what_is_sent() {
        let event = Event::new(
            EventType::OrderPaid,
            "8d0b",
            &serde_json::json!({"order_id": "8d0b"}),
        );
        let json = serde_json::to_value(event.envelope("/emporium/orders")).expect("json");
        let read: CloudEventEnvelope = serde_json::from_value(json.clone()).expect("reads");
        assert_eq!(read.id, event.id);
        assert_eq!(read.event_type, "order.paid");
        assert_eq!(read.schemaversion, SCHEMA_VERSION);
        assert_eq!(
            serde_json::to_value(&read)
                .expect("json")
                .as_object()
                .expect("object")
                .keys()
                .collect::<Vec<_>>(),
            json.as_object().expect("object").keys().collect::<Vec<_>>(),
            "the same attributes, in the same order"
        );
    }

    #[test]
    fn subscriptions_take_named_types_or_everything() {
        let some = vec!["order.paid".to_owned()];
        assert!(subscribed(&some, EventType::OrderPaid));
        assert!(!subscribed(&some, EventType::OrderCreated));
        assert!(subscribed(&["*".to_owned()], EventType::ReturnReceived));
        assert!(!subscribed(&[], EventType::OrderPaid));
    }
}
