//! The work behind the webhooks messages: subscriptions and their delivery
//! logs.

use std::sync::Arc;

use sqlx::PgPool;
use uuid::Uuid;

use super::error::WebhooksError;
use super::messages::*;
use super::worker::DeliveryShared;
use crate::domain::validation::ValidationErrors;
use crate::domain::webhooks::{check_event_types, check_url, new_secret};
use crate::store::webhooks::{self as store, EndpointPatch, NewEndpoint};

/// How long the secret before a rotation keeps signing.
const ROTATION_OVERLAP_SECS: f64 = 24.0 * 3600.0;
/// Longest accepted URL.
const MAX_URL_LEN: usize = 2048;
/// Longest accepted description.
const MAX_DESCRIPTION_CHARS: usize = 500;

/// The webhooks domain's service: owns the webhooks pool.
#[derive(Clone)]
pub struct WebhooksService {
    pool: PgPool,
    shared: Arc<DeliveryShared>,
}

impl WebhooksService {
    /// A service over the webhooks database, waking `shared`'s workers.
    pub fn new(pool: PgPool, shared: Arc<DeliveryShared>) -> Self {
        Self { pool, shared }
    }

    /// The pool (the actor's own).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    fn checked_url(&self, url: &str, errors: &mut ValidationErrors) -> Option<String> {
        let url = url.trim();
        if url.len() > MAX_URL_LEN {
            errors.add(
                "url",
                "too_long",
                format!("at most {MAX_URL_LEN} characters"),
            );
            return None;
        }
        match url::Url::parse(url) {
            Err(_) => {
                errors.add("url", "invalid", "an absolute https:// URL");
                None
            }
            Ok(parsed) => match check_url(&parsed, self.shared.allow_loopback_http) {
                Ok(()) => Some(parsed.to_string()),
                Err(e) => {
                    errors.add("url", "refused", e.to_string());
                    None
                }
            },
        }
    }

    fn checked_events(
        &self,
        events: &[String],
        errors: &mut ValidationErrors,
    ) -> Option<Vec<String>> {
        match check_event_types(events) {
            Ok(events) => Some(events),
            Err(message) => {
                errors.add("events", "invalid", message);
                None
            }
        }
    }

    fn checked_description(description: &str, errors: &mut ValidationErrors) -> Option<String> {
        let description = description.trim();
        if description.chars().count() > MAX_DESCRIPTION_CHARS {
            errors.add(
                "description",
                "too_long",
                format!("at most {MAX_DESCRIPTION_CHARS} characters"),
            );
            return None;
        }
        Some(description.to_owned())
    }

    pub async fn create_endpoint(
        &self,
        msg: CreateEndpoint,
    ) -> Result<EndpointWithSecret, WebhooksError> {
        let mut errors = ValidationErrors::new();
        let url = self.checked_url(&msg.url, &mut errors);
        let events = self.checked_events(&msg.events, &mut errors);
        let description = Self::checked_description(&msg.description, &mut errors);
        errors.into_result().map_err(WebhooksError::Validation)?;
        let (Some(url), Some(events), Some(description)) = (url, events, description) else {
            return Err(WebhooksError::Unexpected(anyhow::anyhow!(
                "validation let a field through"
            )));
        };
        let secret = new_secret();
        let row = store::create_endpoint(
            &self.pool,
            &NewEndpoint {
                id: Uuid::new_v4(),
                url: &url,
                events: &events,
                description: &description,
                is_active: msg.is_active,
                secret: &secret,
            },
        )
        .await?;
        tracing::info!(endpoint = %row.id, url = %row.url, "webhook endpoint created");
        Ok(EndpointWithSecret {
            endpoint: row.into(),
            secret,
        })
    }

    pub async fn list_endpoints(
        &self,
        msg: ListEndpoints,
    ) -> Result<(Vec<EndpointView>, i64), WebhooksError> {
        let (rows, count) = store::list_endpoints(&self.pool, msg.limit, msg.offset).await?;
        Ok((rows.into_iter().map(EndpointView::from).collect(), count))
    }

    pub async fn get_endpoint(&self, msg: GetEndpoint) -> Result<EndpointView, WebhooksError> {
        store::get_endpoint(&self.pool, msg.0)
            .await?
            .map(EndpointView::from)
            .ok_or(WebhooksError::EndpointNotFound)
    }

    pub async fn update_endpoint(
        &self,
        msg: UpdateEndpoint,
    ) -> Result<EndpointView, WebhooksError> {
        let mut errors = ValidationErrors::new();
        let url = msg
            .url
            .as_deref()
            .and_then(|u| self.checked_url(u, &mut errors));
        let events = msg
            .events
            .as_deref()
            .and_then(|e| self.checked_events(e, &mut errors));
        let description = msg
            .description
            .as_deref()
            .and_then(|d| Self::checked_description(d, &mut errors));
        errors.into_result().map_err(WebhooksError::Validation)?;
        let patch = EndpointPatch {
            url,
            events,
            description,
            is_active: msg.is_active,
        };
        let row = store::update_endpoint(&self.pool, msg.id, &patch)
            .await?
            .ok_or(WebhooksError::EndpointNotFound)?;
        Ok(row.into())
    }

    pub async fn delete_endpoint(&self, msg: DeleteEndpoint) -> Result<(), WebhooksError> {
        if store::delete_endpoint(&self.pool, msg.0).await? {
            Ok(())
        } else {
            Err(WebhooksError::EndpointNotFound)
        }
    }

    pub async fn rotate_secret(
        &self,
        msg: RotateSecret,
    ) -> Result<EndpointWithSecret, WebhooksError> {
        let secret = new_secret();
        let row = store::rotate_secret(&self.pool, msg.0, &secret, ROTATION_OVERLAP_SECS)
            .await?
            .ok_or(WebhooksError::EndpointNotFound)?;
        Ok(EndpointWithSecret {
            endpoint: row.into(),
            secret,
        })
    }

    pub async fn list_deliveries(
        &self,
        msg: ListDeliveries,
    ) -> Result<(Vec<DeliveryView>, i64), WebhooksError> {
        if store::get_endpoint(&self.pool, msg.endpoint_id)
            .await?
            .is_none()
        {
            return Err(WebhooksError::EndpointNotFound);
        }
        let (rows, count) = store::list_deliveries(
            &self.pool,
            msg.endpoint_id,
            msg.status.as_deref(),
            msg.limit,
            msg.offset,
        )
        .await?;
        Ok((rows.into_iter().map(DeliveryView::from).collect(), count))
    }

    pub async fn redeliver(&self, msg: Redeliver) -> Result<DeliveryView, WebhooksError> {
        let endpoint = store::get_endpoint(&self.pool, msg.endpoint_id)
            .await?
            .ok_or(WebhooksError::EndpointNotFound)?;
        if !endpoint.is_active {
            return Err(WebhooksError::EndpointDisabled);
        }
        let row = store::redeliver(&self.pool, msg.endpoint_id, msg.delivery_id)
            .await?
            .ok_or(WebhooksError::DeliveryNotFound)?;
        self.shared.wake();
        Ok(row.into())
    }
}
