use serde_json::json;

use crate::helpers::JsonBody as _;
use crate::helpers::{assert_problem, error_fields, TestApp, PASSWORD};

const REGISTER: &str = "/api/v1/auth/register/";

#[tokio::test]
async fn registration_creates_a_customer_even_when_the_body_asks_for_admin() {
    let app = TestApp::spawn().await;
    let response = app
        .post(
            REGISTER,
            None,
            &json!({"email": "  Ann@Example.COM ", "password": PASSWORD, "name": "Ann", "role": "admin"}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let user: serde_json::Value = response.body_json().await;
    assert_eq!(user["email"], "ann@example.com");
    assert_eq!(user["role"], "customer");
    assert_eq!(user["name"], "Ann");
    assert_eq!(user["is_active"], true);
    assert!(user.get("password_hash").is_none());
}

#[tokio::test]
async fn a_taken_email_is_409_whatever_its_case() {
    let app = TestApp::spawn().await;
    app.register("bob@example.com").await;
    let response = app
        .post(
            REGISTER,
            None,
            &json!({"email": "BOB@example.com", "password": PASSWORD}),
        )
        .await;
    assert_problem(response, 409, "email_taken").await;
}

#[tokio::test]
async fn concurrent_registrations_of_one_email_create_exactly_one_account() {
    let app = TestApp::spawn().await;
    let body = json!({"email": "race@example.com", "password": PASSWORD});
    let attempts = (0..8).map(|_| app.post(REGISTER, None, &body));
    let responses = futures_util::future::join_all(attempts).await;
    let statuses: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        7,
        "{statuses:?}"
    );
}

#[tokio::test]
async fn missing_fields_are_named() {
    let app = TestApp::spawn().await;
    let problem = assert_problem(
        app.post(REGISTER, None, &json!({})).await,
        422,
        "validation_error",
    )
    .await;
    assert_eq!(error_fields(&problem), ["email"]);
    let problem = assert_problem(
        app.post(REGISTER, None, &json!({"email": "a@example.com"}))
            .await,
        422,
        "validation_error",
    )
    .await;
    assert_eq!(error_fields(&problem), ["password"]);
}

#[tokio::test]
async fn wrong_types_are_named() {
    let app = TestApp::spawn().await;
    for body in [
        json!({"email": 42, "password": PASSWORD}),
        json!({"email": null, "password": PASSWORD}),
        json!({"email": ["a@example.com"], "password": PASSWORD}),
    ] {
        let problem = assert_problem(
            app.post(REGISTER, None, &body).await,
            422,
            "validation_error",
        )
        .await;
        assert_eq!(error_fields(&problem), ["email"], "{body}");
        assert_eq!(problem["errors"][0]["code"], "invalid_type");
    }
    let problem = assert_problem(
        app.post(
            REGISTER,
            None,
            &json!({"email": "a@example.com", "password": 12345678}),
        )
        .await,
        422,
        "validation_error",
    )
    .await;
    assert_eq!(error_fields(&problem), ["password"]);
    let problem = assert_problem(
        app.post(REGISTER, None, &json!([1, 2])).await,
        422,
        "validation_error",
    )
    .await;
    assert_eq!(error_fields(&problem), ["body"]);
}

#[tokio::test]
async fn bad_email_short_password_and_long_name_are_reported_together() {
    let app = TestApp::spawn().await;
    let body = json!({"email": "not-an-email", "password": "short", "name": "n".repeat(151)});
    let problem = assert_problem(
        app.post(REGISTER, None, &body).await,
        422,
        "validation_error",
    )
    .await;
    assert_eq!(error_fields(&problem), ["email", "password", "name"]);
    assert_eq!(problem["errors"][1]["code"], "too_short");
}

#[tokio::test]
async fn invalid_registrations_leave_no_account_behind() {
    let app = TestApp::spawn().await;
    let response = app
        .post(
            REGISTER,
            None,
            &json!({"email": "half@example.com", "password": "short"}),
        )
        .await;
    assert_eq!(response.status(), 422);
    // The same email registers cleanly afterwards: nothing was half-written.
    app.register("half@example.com").await;
}

#[tokio::test]
async fn malformed_json_wrong_content_type_and_huge_bodies_are_refused() {
    let app = TestApp::spawn().await;
    let send = |body: String, content_type: &'static str| {
        app.client
            .post(app.url(REGISTER))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let r = send("{\"email\": ".into(), "application/json")
        .await
        .expect("sent");
    assert_problem(r, 400, "malformed_json").await;
    let r = send(String::new(), "application/json").await.expect("sent");
    assert_problem(r, 400, "malformed_json").await;
    let trailing = format!(
        "{} trailing",
        json!({"email": "t@example.com", "password": PASSWORD})
    );
    let r = send(trailing, "application/json").await.expect("sent");
    assert_problem(r, 400, "malformed_json").await;
    let r = send(
        "email=a@example.com".into(),
        "application/x-www-form-urlencoded",
    )
    .await
    .expect("sent");
    assert_problem(r, 415, "unsupported_media_type").await;
    let huge = format!(
        "{{\"email\":\"a@example.com\",\"password\":\"{}\"}}",
        "x".repeat(2 * 1024 * 1024)
    );
    let r = send(huge, "application/json").await.expect("sent");
    assert_problem(r, 413, "payload_too_large").await;
    // A JSON subtype is still JSON.
    let r = send(
        json!({"email": "merge@example.com", "password": PASSWORD}).to_string(),
        "application/merge-patch+json",
    )
    .await
    .expect("sent");
    assert_eq!(r.status(), 201);
}
