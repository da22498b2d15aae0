//! Password reset by mail: `POST /auth/password-reset/` answers 202 alike
//! (and in about the same time) for every email, mails a single-use link
//! to an account's owner through a real SMTP server, and the token sets a
//! new password once, revoking every session.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{assert_problem, error_fields, patient_redis, TestApp, PASSWORD};
use crate::smtp::SmtpServer;

const RESET: &str = "/api/v1/auth/password-reset/";
const CONFIRM: &str = "/api/v1/auth/password-reset/confirm/";
const NEW_PASSWORD: &str = "a whole new secret";
const WAIT: Duration = Duration::from_secs(10);

async fn request_reset(app: &TestApp, email: &str) -> (u16, Value, Duration) {
    let started = Instant::now();
    let r = app.post(RESET, None, &json!({"email": email})).await;
    let took = started.elapsed();
    let status = r.status().as_u16();
    (status, r.json().await.expect("json"), took)
}

async fn confirm(app: &TestApp, token: &str, password: &str) -> reqwest::Response {
    app.post(
        CONFIRM,
        None,
        &json!({"token": token, "new_password": password}),
    )
    .await
}

/// The code the mail's text gives besides the link.
fn code_of(text: &str) -> String {
    let start = text.find("enter this code: ").expect("a code") + "enter this code: ".len();
    text[start..]
        .split_whitespace()
        .next()
        .expect("code")
        .to_owned()
}

#[tokio::test]
async fn a_mailed_token_sets_a_new_password_once_and_revokes_every_session() {
    let smtp = SmtpServer::start().await;
    let app = smtp.app(|_| {}).await;
    let (_, access, refresh) = app.customer("ann@example.com").await;
    let other = app.login("ann@example.com", PASSWORD).await;

    let (status, body, _) = request_reset(&app, " Ann@Example.com ").await;
    assert_eq!(status, 202);
    assert!(body["detail"]
        .as_str()
        .expect("detail")
        .contains("If an account"));
    let mail = smtp
        .wait_for("ann@example.com", "Reset your", 1, WAIT)
        .await;
    assert_eq!(mail.from_header, "no-reply@emporium.test");
    assert_eq!(mail.mail_from, "no-reply@emporium.test");
    assert!(!mail.message_id.is_empty());
    let token = mail.link_token();
    assert!(token.len() >= 43, "at least 256 bits, URL-safe: {token}");
    assert_eq!(code_of(&mail.text), token, "the link and the code agree");
    assert!(mail
        .text
        .contains("https://shop.example/reset-password?token="));
    assert!(mail.html.contains("reset-password?token="), "{}", mail.html);
    assert!(mail.text.contains("30 minutes"));

    assert_eq!(confirm(&app, &token, NEW_PASSWORD).await.status(), 204);
    // The old password is refused, the new one works.
    let r = app
        .post(
            "/api/v1/auth/login/",
            None,
            &json!({"email": "ann@example.com", "password": PASSWORD}),
        )
        .await;
    assert_problem(r, 401, "invalid_credentials").await;
    app.login("ann@example.com", NEW_PASSWORD).await;
    // Every refresh token and access token of before is dead.
    for old in [
        refresh.as_str(),
        other["refresh"].as_str().expect("refresh"),
    ] {
        let r = app
            .post("/api/v1/auth/refresh/", None, &json!({"refresh": old}))
            .await;
        assert_eq!(r.status(), 401, "refresh token {old} still works");
    }
    assert_problem(
        app.get("/api/v1/auth/me/", Some(&access)).await,
        401,
        "invalid_token",
    )
    .await;
    // The token works once.
    assert_problem(
        confirm(&app, &token, "yet another secret").await,
        400,
        "invalid_reset_token",
    )
    .await;
    // Only the digest is stored.
    let auth = app.database_pool(emporium::config::Domain::Auth).await;
    let stored: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM email_tokens WHERE token_hash = sha256(convert_to($1, 'UTF8'))",
    )
    .bind(&token)
    .fetch_one(&auth)
    .await
    .expect("count");
    assert_eq!(stored, 1);
    let plain: i64 = sqlx::query_scalar("SELECT count(*) FROM email_tokens WHERE encode(token_hash, 'escape') LIKE '%' || $1 || '%'")
        .bind(&token)
        .fetch_one(&auth)
        .await
        .expect("count");
    assert_eq!(plain, 0);
    // The mail queue keeps no copy of the token once the mail is sent.
    let notifications = app
        .database_pool(emporium::config::Domain::Notifications)
        .await;
    let kept: i64 = sqlx::query_scalar("SELECT count(*) FROM mails WHERE body_text LIKE '%' || $1 || '%' OR body_html LIKE '%' || $1 || '%'")
        .bind(&token)
        .fetch_one(&notifications)
        .await
        .expect("count");
    assert_eq!(kept, 0);
}

#[tokio::test]
async fn expired_forged_superseded_and_foreign_tokens_are_refused() {
    let smtp = SmtpServer::start().await;
    let app = smtp.app(|_| {}).await;
    app.register("bob@example.com").await;
    let welcome = smtp.wait_for("bob@example.com", "Welcome", 1, WAIT).await;

    request_reset(&app, "bob@example.com").await;
    let first = smtp
        .wait_for("bob@example.com", "Reset your", 1, WAIT)
        .await
        .link_token();
    // A newer request voids the older link.
    request_reset(&app, "bob@example.com").await;
    let second = smtp
        .wait_for("bob@example.com", "Reset your", 2, WAIT)
        .await
        .link_token();
    assert_ne!(first, second);
    assert_problem(
        confirm(&app, &first, NEW_PASSWORD).await,
        400,
        "invalid_reset_token",
    )
    .await;

    // Expired.
    let auth = app.database_pool(emporium::config::Domain::Auth).await;
    sqlx::query("UPDATE email_tokens SET expires_at = now() - interval '1 second' WHERE purpose = 'password_reset'")
        .execute(&auth)
        .await
        .expect("expire");
    let r = assert_problem(
        confirm(&app, &second, NEW_PASSWORD).await,
        400,
        "invalid_reset_token",
    )
    .await;
    assert_eq!(r["type"], "urn:emporium:problem:invalid_reset_token");

    // Forged, and a verification token at the reset endpoint.
    assert_problem(
        confirm(&app, "x".repeat(43).as_str(), NEW_PASSWORD).await,
        400,
        "invalid_reset_token",
    )
    .await;
    assert_problem(
        confirm(&app, &welcome.link_token(), NEW_PASSWORD).await,
        400,
        "invalid_reset_token",
    )
    .await;
    assert_problem(
        confirm(&app, &"y".repeat(5000), NEW_PASSWORD).await,
        400,
        "invalid_reset_token",
    )
    .await;
    // The password never changed.
    app.login("bob@example.com", PASSWORD).await;
}

#[tokio::test]
async fn an_unknown_email_gets_the_same_answer_in_about_the_same_time_and_no_mail() {
    let smtp = SmtpServer::start().await;
    let app = smtp.app(|_| {}).await;
    app.register("cat@example.com").await;
    let (known_status, known_body, known_took) = request_reset(&app, "cat@example.com").await;
    let (unknown_status, unknown_body, unknown_took) =
        request_reset(&app, "nobody@example.com").await;
    assert_eq!((known_status, &known_body), (unknown_status, &unknown_body));
    assert_eq!(known_status, 202);
    // Both wait out the same floor (400 ms), so neither is told apart by
    // being quick.
    for took in [known_took, unknown_took] {
        assert!(took >= Duration::from_millis(390), "answered in {took:?}");
    }
    smtp.wait_for("cat@example.com", "Reset your", 1, WAIT)
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(smtp.to("nobody@example.com").is_empty());
    let notifications = app
        .database_pool(emporium::config::Domain::Notifications)
        .await;
    let queued: i64 =
        sqlx::query_scalar("SELECT count(*) FROM mails WHERE recipient = 'nobody@example.com'")
            .fetch_one(&notifications)
            .await
            .expect("count");
    assert_eq!(queued, 0);
}

#[tokio::test]
async fn reset_requests_are_rate_limited_per_email_and_per_client() {
    let smtp = SmtpServer::start().await;
    let app = smtp
        .app(|s| {
            patient_redis(s);
            s.rate_limit.password_reset_per_email = 2;
            s.rate_limit.password_reset_per_client = 3;
        })
        .await;
    for _ in 0..2 {
        assert_eq!(request_reset(&app, "dan@example.com").await.0, 202);
    }
    let r = app
        .post(RESET, None, &json!({"email": "dan@example.com"}))
        .await;
    assert!(r.headers().contains_key("retry-after"));
    assert_problem(r, 429, "rate_limited").await;
    // The client's own ceiling: a fourth request, for any email.
    let r = app
        .post(RESET, None, &json!({"email": "eve@example.com"}))
        .await;
    assert_problem(r, 429, "rate_limited").await;
}

#[tokio::test]
async fn malformed_reset_requests_are_refused_field_by_field() {
    let app = TestApp::spawn().await;
    for (body, field) in [
        (json!({}), "email"),
        (json!({"email": 42}), "email"),
        (json!({"email": "not-an-email"}), "email"),
        (json!({"email": "a@example.com", "role": "admin"}), "role"),
    ] {
        let r = app.post(RESET, None, &body).await;
        assert_eq!(r.status(), 422, "{body}");
        let problem = assert_problem(r, 422, "validation_error").await;
        assert_eq!(error_fields(&problem), [field], "{body}");
    }
    for (body, field) in [
        (json!({"new_password": NEW_PASSWORD}), "token"),
        (json!({"token": "abc"}), "new_password"),
        (json!({"token": 7, "new_password": NEW_PASSWORD}), "token"),
        (
            json!({"token": "abc", "new_password": "short"}),
            "new_password",
        ),
        (
            json!({"token": "abc", "new_password": "x".repeat(129)}),
            "new_password",
        ),
        (
            json!({"token": "abc", "new_password": "          "}),
            "new_password",
        ),
    ] {
        let r = app.post(CONFIRM, None, &body).await;
        assert_eq!(r.status(), 422, "{body}");
        let problem = assert_problem(r, 422, "validation_error").await;
        assert_eq!(error_fields(&problem), [field], "{body}");
    }
    let r = app
        .request(reqwest::Method::POST, RESET, None)
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .expect("sent");
    assert_problem(r, 400, "malformed_json").await;
    let huge = json!({"email": format!("{}@example.com", "a".repeat(100_000))});
    for path in [RESET, CONFIRM] {
        assert_problem(app.post(path, None, &huge).await, 413, "payload_too_large").await;
    }
    // A stale Authorization header does not stand in the way.
    let r = app
        .request(reqwest::Method::POST, RESET, Some("not-a-token"))
        .json(&json!({"email": "a@example.com"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 202);
}
