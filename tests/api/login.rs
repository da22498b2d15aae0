use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::JsonBody as _;
use crate::helpers::{assert_problem, patient_redis, TestApp, PASSWORD};

const LOGIN: &str = "/api/v1/auth/login/";

#[tokio::test]
async fn login_returns_a_simplejwt_style_token_pair() {
    let app = TestApp::spawn().await;
    app.register("ann@example.com").await;
    let pair = app.login(" ANN@example.com", PASSWORD).await;
    assert_eq!(pair["token_type"], "Bearer");
    assert_eq!(pair["expires_in"], 900);
    assert_eq!(
        pair["access"].as_str().expect("access").split('.').count(),
        3
    );
    assert!(pair["refresh"].as_str().expect("refresh").len() >= 40);
    let me = app.get("/api/v1/auth/me/", pair["access"].as_str()).await;
    assert_eq!(me.status(), 200);
    let me: serde_json::Value = me.body_json().await;
    assert_eq!(me["email"], "ann@example.com");
}

#[tokio::test]
async fn wrong_password_and_unknown_email_answer_alike() {
    let app = TestApp::spawn().await;
    app.register("ann@example.com").await;
    let wrong = app
        .post(
            LOGIN,
            None,
            &json!({"email": "ann@example.com", "password": "wrong password"}),
        )
        .await;
    let wrong = assert_problem(wrong, 401, "invalid_credentials").await;
    let unknown = app
        .post(
            LOGIN,
            None,
            &json!({"email": "nobody@example.com", "password": "wrong password"}),
        )
        .await;
    let unknown = assert_problem(unknown, 401, "invalid_credentials").await;
    assert_eq!(wrong, unknown);
}

#[tokio::test]
async fn unknown_email_costs_a_password_hash_like_a_wrong_password() {
    // Not a benchmark: without the decoy hash an unknown email answers
    // about 20 times faster than a wrong password, which this catches.
    let app = TestApp::spawn().await;
    app.register("ann@example.com").await;
    let time = |email: &'static str| {
        let app = &app;
        async move {
            let mut samples = Vec::new();
            for _ in 0..5 {
                let started = Instant::now();
                let r = app
                    .post(
                        LOGIN,
                        None,
                        &json!({"email": email, "password": "wrong password"}),
                    )
                    .await;
                assert_eq!(r.status(), 401);
                samples.push(started.elapsed());
            }
            samples.sort();
            samples[2]
        }
    };
    let wrong: Duration = time("ann@example.com").await;
    let unknown: Duration = time("nobody@example.com").await;
    let ratio = unknown.as_secs_f64() / wrong.as_secs_f64();
    assert!(
        (0.2..5.0).contains(&ratio),
        "unknown {unknown:?} vs wrong {wrong:?}"
    );
}

#[tokio::test]
async fn login_validates_its_body() {
    let app = TestApp::spawn().await;
    let r = app
        .post(LOGIN, None, &json!({"email": "a@example.com"}))
        .await;
    assert_problem(r, 422, "validation_error").await;
    let r = app
        .post(
            LOGIN,
            None,
            &json!({"email": "a@example.com", "password": false}),
        )
        .await;
    assert_problem(r, 422, "validation_error").await;
    let r = app
        .post(LOGIN, None, &json!({"email": "", "password": "whatever1"}))
        .await;
    assert_problem(r, 401, "invalid_credentials").await;
}

#[tokio::test]
async fn too_many_attempts_for_one_email_get_429_with_retry_after() {
    let app = TestApp::spawn_with(|s| {
        patient_redis(s);
        s.rate_limit.login_per_email_client = 3;
        s.rate_limit.login_per_email = 3;
        s.rate_limit.login_per_client = 1000;
    })
    .await;
    app.register("ann@example.com").await;
    for _ in 0..3 {
        let r = app
            .post(
                LOGIN,
                None,
                &json!({"email": "ann@example.com", "password": "wrong password"}),
            )
            .await;
        assert_eq!(r.status(), 401);
    }
    // Even the right password is refused while the email is throttled.
    let r = app
        .post(
            LOGIN,
            None,
            &json!({"email": "Ann@example.com", "password": PASSWORD}),
        )
        .await;
    let retry_after: u64 = r
        .headers()
        .get("retry-after")
        .expect("retry-after")
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!(retry_after >= 1 && retry_after <= app.settings.rate_limit.window_secs);
    assert_problem(r, 429, "rate_limited").await;
    // Another email from the same client is unaffected.
    app.register("bob@example.com").await;
    app.login("bob@example.com", PASSWORD).await;
}

#[tokio::test]
async fn too_many_attempts_from_one_client_get_429() {
    let app = TestApp::spawn_with(|s| {
        patient_redis(s);
        s.rate_limit.login_per_client = 3;
        s.rate_limit.login_per_email = 1000;
    })
    .await;
    for n in 0..3 {
        let r = app
            .post(
                LOGIN,
                None,
                &json!({"email": format!("u{n}@example.com"), "password": "wrong password"}),
            )
            .await;
        assert_eq!(r.status(), 401);
    }
    let r = app
        .post(
            LOGIN,
            None,
            &json!({"email": "u9@example.com", "password": "wrong password"}),
        )
        .await;
    assert_problem(r, 429, "rate_limited").await;
}

#[tokio::test]
async fn login_keeps_working_when_redis_is_unreachable() {
    let app = TestApp::spawn_with(|s| {
        s.redis.url = "redis://127.0.0.1:1".into();
        s.rate_limit.login_per_email_client = 1;
        s.rate_limit.login_per_email = 1;
    })
    .await;
    app.register("ann@example.com").await;
    // The limit of one would refuse the second login if Redis counted it;
    // with Redis down the limiter lets requests through and says so.
    app.login("ann@example.com", PASSWORD).await;
    app.login("ann@example.com", PASSWORD).await;
    let ready: serde_json::Value = app.get("/readyz", None).await.body_json().await;
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["checks"]["redis"]["ok"], false);
    let (_, admin) = app.admin().await;
    let report: serde_json::Value = app
        .get("/api/v1/admin/actors/", Some(&admin))
        .await
        .body_json()
        .await;
    assert!(
        report["rate_limiter"]["redis_errors"]
            .as_u64()
            .expect("count")
            >= 2
    );
}

#[tokio::test]
async fn behind_a_trusted_proxy_clients_are_told_apart_by_forwarded_address() {
    let app = TestApp::spawn_with(|s| {
        patient_redis(s);
        s.http.trust_forwarded_for = true;
        s.rate_limit.login_per_client = 2;
        s.rate_limit.login_per_email = 1000;
    })
    .await;
    let attempt = |client: &'static str| {
        app.client
            .post(app.url(LOGIN))
            .header("x-forwarded-for", client)
            .json(&json!({"email": "nobody@example.com", "password": "wrong password"}))
            .send()
    };
    for _ in 0..2 {
        assert_eq!(attempt("203.0.113.7").await.expect("sent").status(), 401);
    }
    assert_problem(
        attempt("203.0.113.7").await.expect("sent"),
        429,
        "rate_limited",
    )
    .await;
    assert_eq!(
        attempt("198.51.100.1").await.expect("sent").status(),
        401,
        "another client is not limited"
    );
}
