//! Messages of the webhooks actor and the views it answers with.

use actix::Message;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::error::WebhooksError;
use crate::store::webhooks::{DeliveryRow, EndpointRow};

/// A subscription as admins see it (never its secret).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct EndpointView {
    pub id: Uuid,
    pub url: String,
    /// Event types delivered (`"*"`: every type).
    pub events: Vec<String>,
    pub description: String,
    pub is_active: bool,
    /// Why it was disabled (it failed for `webhooks.disable_after_hours`),
    /// until it is re-enabled.
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<DateTime<Utc>>,
    /// When the current run of failures began; `None` after a success.
    pub failing_since: Option<DateTime<Utc>>,
    /// Until when the secret before the last rotation still signs.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<EndpointRow> for EndpointView {
    fn from(r: EndpointRow) -> Self {
        let previous = r.previous_expires_at.filter(|at| *at > Utc::now());
        Self {
            id: r.id,
            url: r.url,
            events: r.events,
            description: r.description,
            is_active: r.is_active,
            disabled_reason: r.disabled_reason,
            disabled_at: r.disabled_at,
            failing_since: r.failing_since,
            previous_secret_expires_at: previous,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// A subscription with its signing secret: answered only at creation and
/// on a rotation.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct EndpointWithSecret {
    #[serde(flatten)]
    pub endpoint: EndpointView,
    /// `whsec_…`: verify `webhook-signature` with it (Standard Webhooks).
    /// Shown once.
    pub secret: String,
}

/// One delivery of one event to one endpoint, as its log shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DeliveryView {
    pub id: Uuid,
    /// Also the `webhook-id` header: de-duplicate by it.
    pub event_id: Uuid,
    pub event_type: String,
    /// `pending`, `succeeded` or `failed`.
    pub status: String,
    pub attempts: i32,
    /// When it is tried next (pending deliveries only).
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// The subscriber's last HTTP status, if it answered.
    pub last_status_code: Option<i32>,
    /// The start of its last answer (bounded).
    pub last_response: Option<String>,
    /// Why the last attempt failed without an answer (timeout, refused
    /// address, connection error).
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

impl From<DeliveryRow> for DeliveryView {
    fn from(r: DeliveryRow) -> Self {
        let pending = r.status == "pending";
        Self {
            id: r.id,
            event_id: r.event_id,
            event_type: r.event_type,
            status: r.status,
            attempts: r.attempts,
            next_attempt_at: pending.then_some(r.next_attempt_at),
            last_attempt_at: r.last_attempt_at,
            last_status_code: r.last_status_code,
            last_response: r.last_response,
            last_error: r.last_error,
            created_at: r.created_at,
            completed_at: r.completed_at,
        }
    }
}

/// Subscribe a URL (admins). Its secret is generated.
#[derive(Debug, Message)]
#[rtype(result = "Result<EndpointWithSecret, WebhooksError>")]
pub struct CreateEndpoint {
    pub url: String,
    pub events: Vec<String>,
    pub description: String,
    pub is_active: bool,
}

/// A page of subscriptions, oldest first, and the total.
#[derive(Debug, Message)]
#[rtype(result = "Result<(Vec<EndpointView>, i64), WebhooksError>")]
pub struct ListEndpoints {
    pub limit: i64,
    pub offset: i64,
}

/// One subscription.
#[derive(Debug, Message)]
#[rtype(result = "Result<EndpointView, WebhooksError>")]
pub struct GetEndpoint(pub Uuid);

/// Change a subscription; `None` keeps a field.
#[derive(Debug, Message)]
#[rtype(result = "Result<EndpointView, WebhooksError>")]
pub struct UpdateEndpoint {
    pub id: Uuid,
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub description: Option<String>,
    pub is_active: Option<bool>,
}

/// Remove a subscription and its delivery log.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), WebhooksError>")]
pub struct DeleteEndpoint(pub Uuid);

/// A new signing secret; the old one keeps signing for 24 hours.
#[derive(Debug, Message)]
#[rtype(result = "Result<EndpointWithSecret, WebhooksError>")]
pub struct RotateSecret(pub Uuid);

/// A page of an endpoint's deliveries, newest first, and the total.
#[derive(Debug, Message)]
#[rtype(result = "Result<(Vec<DeliveryView>, i64), WebhooksError>")]
pub struct ListDeliveries {
    pub endpoint_id: Uuid,
    pub status: Option<String>,
    pub limit: i64,
    pub offset: i64,
}

/// Send a delivery again, now, with a fresh schedule.
#[derive(Debug, Message)]
#[rtype(result = "Result<DeliveryView, WebhooksError>")]
pub struct Redeliver {
    pub endpoint_id: Uuid,
    pub delivery_id: Uuid,
}
