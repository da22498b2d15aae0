//! The one place a payment changes status: the status machine decides on a
//! locked row, and the change, its timeline entry and what the orders
//! service must hear (the outbox) are written in the caller's transaction.
//! Workers, webhooks, refunds and the relay all go through here.

use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::events::{Event, EventType, PaymentData, RefundData};
use crate::domain::payments::queue::PaymentNotice;
use crate::domain::payments::status::{next_status, PaymentEvent, PaymentStatus};
use crate::store::payments::{self as store, PaymentRow, StatusChange};

/// What the orders service hears after `event` took a payment from `from`.
/// A refund the shop made on its own (`auto_refund`) is not told: the
/// order was never paid by this payment.
fn outbox_kinds(
    event: PaymentEvent,
    from: PaymentStatus,
    auto_refund: bool,
) -> &'static [PaymentNotice] {
    use PaymentEvent::*;
    use PaymentNotice as N;
    match (event, auto_refund) {
        (ChargeSucceeded, _) => &[N::PaymentSucceeded],
        (_, true) => &[],
        (RefundRequested, false) => &[N::RefundStarted],
        (RefundSucceeded, false) => &[N::RefundSucceeded],
        (RefundFailed, false) => &[N::RefundFailed],
        (RefundedByProvider, false) if from == PaymentStatus::Succeeded => {
            &[N::RefundStarted, N::RefundSucceeded]
        }
        (RefundedByProvider, false) => &[N::RefundSucceeded],
        // The order refused the refund: it never left `paid`.
        (ChargeFailed | RefundDenied, false) => &[],
    }
}

/// The public event `event` emits once it moved a payment: only final
/// outcomes (a charge that succeeded or failed for good, a whole-payment
/// refund that went through or not). A refund being asked for emits
/// nothing: its outcome will.
fn public_event(event: PaymentEvent) -> Option<EventType> {
    use PaymentEvent::*;
    match event {
        ChargeSucceeded => Some(EventType::PaymentSucceeded),
        ChargeFailed => Some(EventType::PaymentFailed),
        RefundSucceeded | RefundedByProvider => Some(EventType::RefundSucceeded),
        RefundFailed | RefundDenied => Some(EventType::RefundFailed),
        RefundRequested => None,
    }
}

/// The public event of `event` having taken the payment from `before` to
/// `after`, if it has one.
fn public_event_of(event: PaymentEvent, before: &PaymentRow, after: &PaymentRow) -> Option<Event> {
    let event_type = public_event(event)?;
    Some(match event_type {
        EventType::PaymentSucceeded | EventType::PaymentFailed => {
            let data = PaymentData {
                payment_id: after.id,
                order_id: after.order_id,
                status: after.status.as_str().to_owned(),
                amount: after.amount,
                currency: after.currency.clone(),
                failure_code: after.failure_code.clone(),
            };
            Event::new(event_type, after.id, &data)
        }
        _ => {
            // A whole-payment refund gives back what partial refunds had
            // not (or, refused, would have).
            let data = RefundData {
                refund_id: after.refund_id,
                payment_id: after.id,
                order_id: after.order_id,
                amount: after.amount - before.refunded_amount,
                currency: after.currency.clone(),
                return_id: None,
            };
            let subject = after.refund_id.unwrap_or(after.id);
            Event::new(event_type, subject, &data)
        }
    })
}

/// Applies `event` to the payment, with `change` and a timeline entry
/// carrying `detail`. `None` (and a timeline note) when the payment's
/// status does not take the event: late and repeated events never move a
/// payment backwards.
pub async fn apply(
    conn: &mut PgConnection,
    payment_id: Uuid,
    event: PaymentEvent,
    change: &StatusChange<'_>,
    detail: serde_json::Value,
) -> Result<Option<PaymentRow>, sqlx::Error> {
    let Some(payment) = store::lock_payment(conn, payment_id).await? else {
        return Ok(None);
    };
    let current = payment.status;
    let next = match next_status(current, event) {
        Ok(next) => next,
        Err(refused) => {
            store::insert_event(
                conn,
                payment_id,
                "event_ignored",
                serde_json::json!({"event": event.as_str(), "status": current.as_str(), "why": refused.to_string()}),
            )
            .await?;
            return Ok(None);
        }
    };
    let updated = store::set_status(conn, payment_id, next.as_str(), change).await?;
    store::insert_event(conn, payment_id, event.as_str(), detail).await?;
    for kind in outbox_kinds(event, current, updated.auto_refund) {
        store::insert_outbox(conn, payment_id, updated.order_id, *kind).await?;
    }
    if let Some(public) = public_event_of(event, &payment, &updated) {
        crate::store::events::append(conn, &public).await?;
    }
    Ok(Some(updated))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_final_outcomes_are_public_events() {
        use PaymentEvent::*;
        assert_eq!(
            public_event(ChargeSucceeded),
            Some(EventType::PaymentSucceeded)
        );
        assert_eq!(public_event(ChargeFailed), Some(EventType::PaymentFailed));
        assert_eq!(public_event(RefundRequested), None);
        for event in [RefundSucceeded, RefundedByProvider] {
            assert_eq!(public_event(event), Some(EventType::RefundSucceeded));
        }
        for event in [RefundFailed, RefundDenied] {
            assert_eq!(public_event(event), Some(EventType::RefundFailed));
        }
    }

    #[test]
    fn orders_hear_of_every_change_of_an_order_payment_and_nothing_of_auto_refunds() {
        use PaymentEvent::*;
        use PaymentStatus::*;
        assert_eq!(
            outbox_kinds(ChargeSucceeded, Processing, false),
            [PaymentNotice::PaymentSucceeded]
        );
        assert!(outbox_kinds(ChargeFailed, Processing, false).is_empty());
        assert_eq!(
            outbox_kinds(RefundRequested, Succeeded, false),
            [PaymentNotice::RefundStarted]
        );
        assert_eq!(
            outbox_kinds(RefundedByProvider, Succeeded, false),
            [PaymentNotice::RefundStarted, PaymentNotice::RefundSucceeded]
        );
        assert_eq!(
            outbox_kinds(RefundedByProvider, RefundPending, false),
            [PaymentNotice::RefundSucceeded]
        );
        for event in [
            RefundRequested,
            RefundSucceeded,
            RefundFailed,
            RefundedByProvider,
        ] {
            assert!(outbox_kinds(event, Succeeded, true).is_empty());
        }
    }
}
