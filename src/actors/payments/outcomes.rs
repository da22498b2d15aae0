//! The one place a payment changes status: the status machine decides on a
//! locked row, and the change, its timeline entry and what the orders
//! service must hear (the outbox) are written in the caller's transaction.
//! Workers, webhooks, refunds and the relay all go through here.

use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::events::{Event, EventType, PaymentData, RefundData};
use crate::domain::payments::queue::PaymentNotice;
use crate::domain::payments::status::{next_status, PaymentEvent, PaymentStatus};
use crate::store::payments::{self as store, NewEvent, NewNotice, PaymentRow, StatusChange};

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

/// What one or more status changes write, gathered so that a batch of
/// outcomes (a worker's claimed jobs) costs a fixed number of statements:
/// the changed rows in one, the timeline, the outbox towards orders and
/// the public events in another.
#[derive(Debug, Default)]
pub struct Writes {
    rows: Vec<PaymentRow>,
    timeline: Vec<NewEvent>,
    outbox: Vec<NewNotice>,
    public: Vec<Event>,
}

impl Writes {
    /// Applies `event` to `payment` (locked by the caller, and changed in
    /// place), with `change` and a timeline entry carrying `detail`.
    /// `false` (and a timeline note) when the payment's status does not
    /// take the event: late and repeated events never move a payment
    /// backwards.
    pub fn apply(
        &mut self,
        payment: &mut PaymentRow,
        event: PaymentEvent,
        change: &StatusChange<'_>,
        detail: serde_json::Value,
    ) -> bool {
        let current = payment.status;
        let next = match next_status(current, event) {
            Ok(next) => next,
            Err(refused) => {
                self.note(
                    payment.id,
                    "event_ignored",
                    serde_json::json!({"event": event.as_str(), "status": current.as_str(), "why": refused.to_string()}),
                );
                return false;
            }
        };
        let before = payment.clone();
        change.apply_to(payment, next);
        self.changed(payment);
        self.note(payment.id, event.as_str(), detail);
        for kind in outbox_kinds(event, current, payment.auto_refund) {
            self.outbox.push(NewNotice {
                payment_id: payment.id,
                order_id: payment.order_id,
                kind: *kind,
            });
        }
        if let Some(public) = public_event_of(event, &before, payment) {
            self.public.push(public);
        }
        true
    }

    /// Records `payment`'s new state (a count of attempts) without a
    /// status change.
    pub fn changed(&mut self, payment: &PaymentRow) {
        match self.rows.iter_mut().find(|r| r.id == payment.id) {
            Some(row) => *row = payment.clone(),
            None => self.rows.push(payment.clone()),
        }
    }

    /// Adds an entry to a payment's timeline.
    pub fn note(&mut self, payment_id: Uuid, kind: &str, detail: serde_json::Value) {
        self.timeline.push(NewEvent {
            payment_id,
            kind: kind.to_owned(),
            detail,
        });
    }

    /// Writes everything gathered in the caller's transaction; returns the
    /// changed rows as stored.
    pub async fn flush(self, conn: &mut PgConnection) -> Result<Vec<PaymentRow>, sqlx::Error> {
        let rows = if self.rows.is_empty() {
            Vec::new()
        } else {
            store::write_payments(conn, &self.rows).await?
        };
        if !(self.timeline.is_empty() && self.outbox.is_empty() && self.public.is_empty()) {
            store::append_records(conn, &self.timeline, &self.outbox, &self.public).await?;
        }
        Ok(rows)
    }
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
    let Some(mut payment) = store::lock_payment(conn, payment_id).await? else {
        return Ok(None);
    };
    let mut writes = Writes::default();
    let moved = writes.apply(&mut payment, event, change, detail);
    let stored = writes.flush(conn).await?;
    Ok(if moved {
        stored.into_iter().next()
    } else {
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn processing() -> PaymentRow {
        let now = chrono::Utc::now();
        PaymentRow {
            id: Uuid::new_v4(),
            order_id: Uuid::new_v4(),
            user_id: None,
            status: PaymentStatus::Processing,
            amount: 1_000,
            currency: "EUR".into(),
            card_token: "tok".into(),
            card_brand: "visa".into(),
            card_last4: "4242".into(),
            attempts: 0,
            failure_code: None,
            failure_message: None,
            refund_id: None,
            refund_failure_code: None,
            auto_refund: false,
            refunded_amount: 0,
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn a_batch_gathers_one_row_per_payment_and_every_record_in_order() {
        let mut writes = Writes::default();
        let mut paid = processing();
        let change = StatusChange {
            attempts: Some(1),
            ..StatusChange::default()
        };
        assert!(writes.apply(
            &mut paid,
            PaymentEvent::ChargeSucceeded,
            &change,
            serde_json::json!({})
        ));
        assert_eq!((paid.status, paid.attempts), (PaymentStatus::Succeeded, 1));
        // The same outcome again is noted, and moves nothing.
        assert!(!writes.apply(
            &mut paid,
            PaymentEvent::ChargeSucceeded,
            &change,
            serde_json::json!({})
        ));
        let mut declined = processing();
        let failure = StatusChange {
            failure: Some(("card_declined", "declined")),
            ..StatusChange::default()
        };
        assert!(writes.apply(
            &mut declined,
            PaymentEvent::ChargeFailed,
            &failure,
            serde_json::json!({})
        ));
        assert_eq!(declined.failure_code.as_deref(), Some("card_declined"));

        assert_eq!(writes.rows.len(), 2, "one row per payment");
        let kinds: Vec<&str> = writes.timeline.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(
            kinds,
            ["charge_succeeded", "event_ignored", "charge_failed"]
        );
        assert_eq!(writes.outbox.len(), 1, "orders hear of the success only");
        assert_eq!(writes.public.len(), 2, "a success and a failure are public");
    }

    #[test]
    fn a_full_refund_gives_back_the_whole_amount() {
        let mut partly = processing();
        partly.refunded_amount = 300;
        let mut whole = partly.clone();
        StatusChange::default().apply_to(&mut partly, PaymentStatus::RefundPending);
        assert_eq!(
            partly.refunded_amount, 300,
            "only the refund's end moves it"
        );
        StatusChange::default().apply_to(&mut whole, PaymentStatus::Refunded);
        assert_eq!(whole.refunded_amount, whole.amount);
    }

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
