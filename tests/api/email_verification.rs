//! Email verification: registration mails a single-use link (through a
//! real SMTP server); the token marks the email verified, once, and
//! appends `customer.email_verified`; a new link can be asked for; and the
//! shop may refuse orders from unverified customers.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{assert_problem, error_fields, TestApp};
use crate::orders::{order_body, ORDERS};
use crate::smtp::SmtpServer;

const VERIFY: &str = "/api/v1/auth/verify-email/";
const RESEND: &str = "/api/v1/auth/verify-email/resend/";
const ME: &str = "/api/v1/auth/me/";
const WAIT: Duration = Duration::from_secs(10);

async fn verified(app: &TestApp, token: &str) -> bool {
    let me: serde_json::Value = app.get(ME, Some(token)).await.json().await.expect("me");
    me["email_verified"].as_bool().expect("email_verified")
}

#[tokio::test]
async fn registration_mails_a_link_that_verifies_the_email_once() {
    let smtp = SmtpServer::start().await;
    let app = smtp.app(|_| {}).await;
    let (user_id, access, _) = app.customer("ann@example.com").await;
    assert!(!verified(&app, &access).await);
    let mail = smtp
        .wait_for("ann@example.com", "Welcome to Emporium", 1, WAIT)
        .await;
    assert!(mail
        .text
        .contains("https://shop.example/verify-email?token="));
    assert!(mail.text.contains("2 days"));
    assert!(mail.html.contains("Confirm my email"));
    let token = mail.link_token();

    assert_eq!(
        app.post(VERIFY, None, &json!({"token": token}))
            .await
            .status(),
        204
    );
    assert!(verified(&app, &access).await, "GET /me/ shows it at once");
    assert_problem(
        app.post(VERIFY, None, &json!({"token": token})).await,
        400,
        "invalid_verification_token",
    )
    .await;
    // One event, in auth's outbox, for the relays.
    let auth = app.database_pool(emporium::config::Domain::Auth).await;
    let events: Vec<serde_json::Value> = sqlx::query_scalar(
        "SELECT data FROM event_outbox WHERE type = 'customer.email_verified' AND subject = $1",
    )
    .bind(&user_id)
    .fetch_all(&auth)
    .await
    .expect("events");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["email_verified"], true);
    assert_eq!(events[0]["email"], "ann@example.com");
    // Resending to a verified account is a conflict.
    assert_problem(
        app.post(RESEND, Some(&access), &json!({})).await,
        409,
        "email_already_verified",
    )
    .await;
}

#[tokio::test]
async fn a_resent_link_replaces_the_old_one_and_forged_or_expired_tokens_fail() {
    let smtp = SmtpServer::start().await;
    let app = smtp.app(|_| {}).await;
    let (_, access, _) = app.customer("bob@example.com").await;
    let first = smtp
        .wait_for("bob@example.com", "Welcome", 1, WAIT)
        .await
        .link_token();
    let r = app.post(RESEND, Some(&access), &json!({})).await;
    assert_eq!(r.status(), 202);
    let second = smtp
        .wait_for("bob@example.com", "Confirm your email", 1, WAIT)
        .await
        .link_token();
    assert_problem(
        app.post(VERIFY, None, &json!({"token": first})).await,
        400,
        "invalid_verification_token",
    )
    .await;
    assert_problem(
        app.post(VERIFY, None, &json!({"token": "forged"})).await,
        400,
        "invalid_verification_token",
    )
    .await;
    let auth = app.database_pool(emporium::config::Domain::Auth).await;
    sqlx::query("UPDATE email_tokens SET expires_at = now() - interval '1 second'")
        .execute(&auth)
        .await
        .expect("expire");
    assert_problem(
        app.post(VERIFY, None, &json!({"token": second})).await,
        400,
        "invalid_verification_token",
    )
    .await;
    assert!(!verified(&app, &access).await);
    assert_problem(
        app.post(RESEND, None, &json!({})).await,
        401,
        "not_authenticated",
    )
    .await;
}

#[tokio::test]
async fn the_checkout_gate_refuses_unverified_customers_until_they_verify() {
    let smtp = SmtpServer::start().await;
    let app = smtp
        .app(|s| s.auth.require_verified_email_for_checkout = true)
        .await;
    let (_, admin) = app.admin().await;
    let product = app.product(&admin, json!({"stock": 5})).await;
    let (_, access, _) = app.customer("cat@example.com").await;
    let items = json!([{"product_id": product["id"], "quantity": 1}]);
    let r = app
        .post(ORDERS, Some(&access), &order_body(items.clone()))
        .await;
    let problem = assert_problem(r, 403, "email_unverified").await;
    assert!(problem["detail"]
        .as_str()
        .expect("detail")
        .contains("verify"));
    let r = app
        .post(
            "/api/v1/cart/items/",
            Some(&access),
            &json!({"product_id": product["id"], "quantity": 1}),
        )
        .await;
    assert!(
        r.status().is_success(),
        "adding to the cart: {}",
        r.status()
    );
    let r = app
        .post(
            "/api/v1/cart/checkout/",
            Some(&access),
            &json!({"shipping_address": crate::orders::address()}),
        )
        .await;
    assert_problem(r, 403, "email_unverified").await;
    // Admins (operator-made, verified) are not gated.
    assert!(verified(&app, &admin).await);

    let token = smtp
        .wait_for("cat@example.com", "Welcome", 1, WAIT)
        .await
        .link_token();
    assert_eq!(
        app.post(VERIFY, None, &json!({"token": token}))
            .await
            .status(),
        204
    );
    let r = app.post(ORDERS, Some(&access), &order_body(items)).await;
    assert_eq!(r.status(), 201);
    let r = app
        .post(
            "/api/v1/cart/checkout/",
            Some(&access),
            &json!({"shipping_address": crate::orders::address()}),
        )
        .await;
    assert_eq!(r.status(), 201, "checkout once verified");
}

#[tokio::test]
async fn without_the_setting_unverified_customers_order_as_before() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let product = app.product(&admin, json!({"stock": 5})).await;
    let (_, access, _) = app.customer("dan@example.com").await;
    assert!(!verified(&app, &access).await);
    let items = json!([{"product_id": product["id"], "quantity": 1}]);
    assert_eq!(
        app.post(ORDERS, Some(&access), &order_body(items))
            .await
            .status(),
        201
    );
}

#[tokio::test]
async fn malformed_verification_requests_are_refused() {
    let app = TestApp::spawn().await;
    for (body, field) in [
        (json!({}), "token"),
        (json!({"token": ["a"]}), "token"),
        (json!({"token": "a", "extra": 1}), "extra"),
    ] {
        let problem =
            assert_problem(app.post(VERIFY, None, &body).await, 422, "validation_error").await;
        assert_eq!(error_fields(&problem), [field], "{body}");
    }
    assert_problem(
        app.post(VERIFY, None, &json!({"token": ""})).await,
        400,
        "invalid_verification_token",
    )
    .await;
    let huge = json!({"token": "t".repeat(100_000)});
    assert_problem(
        app.post(VERIFY, None, &huge).await,
        413,
        "payload_too_large",
    )
    .await;
}
