//! Mail from events: an order confirmation and a shipping notice reach the
//! customer through a real SMTP server, once each, even when the relay
//! takes an event again; a mail server that is down at first gets the
//! mail once it is up; a mail that never goes through ends `failed`.

use std::time::Duration;

use emporium::actors::orders::messages::MarkOrderPaid;
use emporium::config::Domain;
use serde_json::{json, Value};

use crate::helpers::{str_of, JsonBody as _, TestApp};
use crate::orders::{place, ORDERS};
use crate::smtp::SmtpServer;

const WAIT: Duration = Duration::from_secs(15);

async fn mail_rows(app: &TestApp, to: &str) -> Vec<(String, String, i32, Option<String>)> {
    let pool = app.database_pool(Domain::Notifications).await;
    sqlx::query_as("SELECT kind, status, attempts, last_error FROM mails WHERE recipient = $1 ORDER BY created_at")
        .bind(to)
        .fetch_all(&pool)
        .await
        .expect("mails")
}

#[tokio::test]
async fn an_order_confirmation_and_a_shipping_notice_are_mailed_once() {
    let smtp = SmtpServer::start().await;
    let app = smtp.app(|_| {}).await;
    let (_, admin) = app.admin().await;
    let (_, token, _) = app.customer("ann@example.com").await;
    let kettle = app
        .product(
            &admin,
            json!({"name": "Kettle <Pro>", "price": 2_500, "stock": 5}),
        )
        .await;
    let order = place(
        &app,
        &token,
        json!([{"product_id": kettle["id"], "quantity": 2}]),
    )
    .await;
    let order_id = str_of(&order["id"]);
    let reference = order_id.replace('-', "")[..8].to_uppercase();

    let mail = smtp
        .wait_for("ann@example.com", "Your Emporium order", 1, WAIT)
        .await;
    assert!(mail.subject.contains(&reference), "{}", mail.subject);
    assert!(mail.text.contains("2 x Kettle <Pro>"), "{}", mail.text);
    assert!(mail.text.contains("25.00 EUR"));
    assert!(mail.text.contains(&format!(
        "Total: {}",
        emporium::domain::notifications::money(order["total"].as_i64().expect("total"), "EUR")
    )));
    assert!(
        mail.text.contains("Ann Lee") && mail.text.contains("Lyon"),
        "the address: {}",
        mail.text
    );
    assert!(mail.html.contains("Kettle &lt;Pro&gt;"));
    assert!(mail
        .text
        .contains(&format!("https://shop.example/orders/{order_id}")));

    // The relay takes the event again (as after a crash between queueing
    // and acknowledging): still one mail.
    let orders = app.orders_pool().await;
    let retaken =
        sqlx::query("UPDATE event_outbox SET mail_relayed_at = NULL WHERE type = 'order.created'")
            .execute(&orders)
            .await
            .expect("un-ack")
            .rows_affected();
    assert_eq!(retaken, 1);
    for _ in 0..100 {
        let left: i64 =
            sqlx::query_scalar("SELECT count(*) FROM event_outbox WHERE mail_relayed_at IS NULL")
                .fetch_one(&orders)
                .await
                .expect("count");
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let confirmations = smtp
        .to("ann@example.com")
        .into_iter()
        .filter(|m| m.subject.contains("Your Emporium order"))
        .count();
    assert_eq!(confirmations, 1);

    // Paid, packed and shipped: the notice names the parcel and tracking.
    app.actors
        .orders
        .call(MarkOrderPaid {
            order_id: order_id.parse().expect("uuid"),
            payment_id: format!("pay_{order_id}"),
        })
        .await
        .expect("paid");
    let parcels = format!("{ORDERS}{order_id}/fulfilments/");
    let r = app
        .post(&parcels, Some(&admin), &json!({"lines": [{"variant_id": kettle["id"], "quantity": 2}], "carrier": "DHL", "tracking_number": "JD0001", "tracking_url": "https://track.example/JD0001"}))
        .await;
    assert_eq!(r.status(), 201);
    let parcel: Value = r.body_json().await;
    let r = app
        .post(
            &format!("{parcels}{}/ship/", str_of(&parcel["id"])),
            Some(&admin),
            &json!({}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let notice = smtp
        .wait_for("ann@example.com", "is on its way", 1, WAIT)
        .await;
    assert!(notice.text.contains("2 x Kettle <Pro>"), "{}", notice.text);
    assert!(notice.text.contains("Tracking number: JD0001"));
    assert!(notice.html.contains("https://track.example/JD0001"));
    let kinds: Vec<String> = mail_rows(&app, "ann@example.com")
        .await
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(kinds, ["welcome", "order_confirmation", "order_shipped"]);
}

#[tokio::test]
async fn a_mail_server_down_at_first_gets_the_mail_once_it_is_up() {
    let smtp = SmtpServer::reserve();
    let app = smtp.app(|_| {}).await;
    app.register("bob@example.com").await;
    // Refused connections: the mail waits, counting attempts.
    let mut rows = Vec::new();
    for _ in 0..100 {
        rows = mail_rows(&app, "bob@example.com").await;
        if rows.first().is_some_and(|r| r.2 >= 1 && r.3.is_some()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (kind, status, attempts, error) = rows.first().cloned().expect("a queued mail");
    assert_eq!((kind.as_str(), status.as_str()), ("welcome", "pending"));
    assert!(attempts >= 1 && error.is_some(), "{rows:?}");

    smtp.open().await;
    let mail = smtp.wait_for("bob@example.com", "Welcome", 1, WAIT).await;
    assert!(mail.text.contains("verify-email?token="));
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(smtp.to("bob@example.com").len(), 1, "sent once");
    let rows = mail_rows(&app, "bob@example.com").await;
    assert_eq!(rows[0].1, "sent");
}

#[tokio::test]
async fn a_mail_that_never_goes_through_ends_failed_after_max_attempts() {
    let smtp = SmtpServer::reserve();
    let app = smtp.app(|s| s.email.max_attempts = 2).await;
    app.register("cat@example.com").await;
    let mut rows = Vec::new();
    for _ in 0..200 {
        rows = mail_rows(&app, "cat@example.com").await;
        if rows.first().is_some_and(|r| r.1 == "failed") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, status, attempts, error) = rows.first().cloned().expect("a mail");
    assert_eq!((status.as_str(), attempts), ("failed", 2), "{rows:?}");
    assert!(error.is_some());
    // Its token is not kept in the queue.
    let pool = app.database_pool(Domain::Notifications).await;
    let body: String =
        sqlx::query_scalar("SELECT body_text FROM mails WHERE recipient = 'cat@example.com'")
            .fetch_one(&pool)
            .await
            .expect("body");
    assert!(body.is_empty());
}
