//! The mail relay: reads each domain's public outbox for the mail sink,
//! queues the mails that events call for (order placed, parcel shipped,
//! refund made), and acknowledges the events only after those mails are
//! committed. Mails are unique per (event, kind), so an event taken twice
//! (a crash between commit and acknowledgement) mails once.

use std::time::Duration;

use chrono::Utc;
use uuid::Uuid;

use super::{MailLinks, NotificationsService};
use crate::actors::auth::messages::GetContact;
use crate::actors::auth::AuthError;
use crate::actors::runtime::CallError;
use crate::domain::events::{Event, EventType, FulfilmentData, OrderData, RefundData, Sink};
use crate::domain::notifications::{self as mail, Mail};
use crate::store::notifications as store;

/// An event whose order is still unknown (its `order.created` not yet
/// relayed, from another outbox) is retried this long, then dropped.
const ORPHAN_PATIENCE_SECS: i64 = 3600;

/// What one event calls for.
enum Step {
    /// Nothing to mail: acknowledge.
    Skip,
    /// Queue this mail to this recipient (and remember a placed order).
    Mail {
        to: String,
        mail: Box<Mail>,
        order: Option<(Uuid, serde_json::Value)>,
    },
    /// Not now (a lookup failed): leave unacknowledged, retry next pass.
    Later,
}

/// Relays until the actor stops; waits for the links first.
pub async fn run(service: NotificationsService) {
    let links = loop {
        if let Some(links) = service.links.get() {
            break links;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    loop {
        for source in &links.sources {
            loop {
                match pass(&service, links, source).await {
                    // A full batch, all taken, may have more behind it; one
                    // holding events back waits for the next interval
                    // (else it would read the same events in a tight loop).
                    Ok((n, acked)) if n >= service.relay_batch && acked == n => continue,
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(source = source.domain, error = %format!("{e:#}"), "mail relay pass failed; retrying");
                        break;
                    }
                }
            }
        }
        tokio::time::sleep(service.relay_interval).await;
    }
}

/// One batch from one outbox; answers how many events were read and how
/// many of them were acknowledged.
async fn pass(
    service: &NotificationsService,
    links: &MailLinks,
    source: &crate::actors::events::EventSource,
) -> anyhow::Result<(i64, i64)> {
    let events = source.take(Sink::Mail, service.relay_batch).await?;
    if events.is_empty() {
        return Ok((0, 0));
    }
    let taken = i64::try_from(events.len()).unwrap_or(i64::MAX);
    let mut done = Vec::with_capacity(events.len());
    let mut queued = 0;
    let mut tx = service.pool.begin().await?;
    for event in &events {
        match step(service, links, &mut tx, event).await? {
            Step::Skip => done.push(event.id),
            Step::Later => {}
            Step::Mail { to, mail, order } => {
                if let Some((order_id, data)) = &order {
                    store::remember_order(&mut tx, *order_id, &to, data).await?;
                }
                if service.queue(&mut tx, &to, event.id, &mail).await? {
                    queued += 1;
                }
                done.push(event.id);
            }
        }
    }
    tx.commit().await?;
    if queued > 0 {
        service.wake.notify_one();
    }
    let acked = i64::try_from(done.len()).unwrap_or(i64::MAX);
    if !done.is_empty() {
        source.ack(Sink::Mail, done).await?;
    }
    Ok((taken, acked))
}

/// Decides what `event` calls for.
async fn step(
    service: &NotificationsService,
    links: &MailLinks,
    conn: &mut sqlx::PgConnection,
    event: &Event,
) -> anyhow::Result<Step> {
    let brand = &service.brand;
    match event.event_type {
        EventType::OrderCreated => {
            let Some(order) = payload::<OrderData>(event) else {
                return Ok(Step::Skip);
            };
            let to = match (&order.email, order.customer_id) {
                (Some(email), _) if !email.is_empty() => email.clone(),
                (_, Some(user_id)) => match links.auth.call(GetContact { user_id }).await {
                    Ok(contact) => contact.email,
                    Err(CallError::Domain(AuthError::UserNotFound)) => {
                        tracing::warn!(order = %order.order_id, "order of an unknown customer; no confirmation mailed");
                        return Ok(Step::Skip);
                    }
                    Err(e) => {
                        tracing::warn!(order = %order.order_id, error = %e, "customer's address not found now; will retry");
                        return Ok(Step::Later);
                    }
                },
                _ => return Ok(Step::Skip),
            };
            Ok(Step::Mail {
                mail: Box::new(mail::order_confirmation(&order, brand)),
                order: Some((order.order_id, event.data.clone())),
                to,
            })
        }
        EventType::FulfilmentShipped => {
            let Some(parcel) = payload::<FulfilmentData>(event) else {
                return Ok(Step::Skip);
            };
            let Some((to, order)) = placed_order(conn, parcel.order_id).await? else {
                return Ok(orphan(event));
            };
            Ok(Step::Mail {
                mail: Box::new(mail::order_shipped(&parcel, &order, brand)),
                order: None,
                to,
            })
        }
        EventType::RefundSucceeded => {
            let Some(refund) = payload::<RefundData>(event) else {
                return Ok(Step::Skip);
            };
            let Some((to, _)) = placed_order(conn, refund.order_id).await? else {
                return Ok(orphan(event));
            };
            Ok(Step::Mail {
                mail: Box::new(mail::refund_issued(&refund, brand)),
                order: None,
                to,
            })
        }
        _ => Ok(Step::Skip),
    }
}

/// The recipient and order of `order_id`, as placed.
async fn placed_order(
    conn: &mut sqlx::PgConnection,
    order_id: Uuid,
) -> anyhow::Result<Option<(String, OrderData)>> {
    let Some((to, data)) = store::order_contact(conn, order_id).await? else {
        return Ok(None);
    };
    Ok(serde_json::from_value(data).ok().map(|order| (to, order)))
}

/// An event about an order this relay has not seen placed: retried for a
/// while (its `order.created` may come later from another outbox), then
/// dropped.
fn orphan(event: &Event) -> Step {
    if (Utc::now() - event.time).num_seconds() > ORPHAN_PATIENCE_SECS {
        tracing::warn!(event = %event.id, kind = event.event_type.as_str(), "no placed order known for this event; not mailed");
        Step::Skip
    } else {
        Step::Later
    }
}

fn payload<T: serde::de::DeserializeOwned>(event: &Event) -> Option<T> {
    match serde_json::from_value(event.data.clone()) {
        Ok(data) => Some(data),
        Err(e) => {
            tracing::error!(event = %event.id, kind = event.event_type.as_str(), error = %e, "event payload unreadable; not mailed");
            None
        }
    }
}
