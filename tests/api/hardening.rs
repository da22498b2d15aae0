//! Holes found by an adversarial review, each pinned by a test: bad bytes,
//! guessing and enumeration, one authentication rule for every route,
//! reflected headers, admin races, and HTTP hygiene.

use emporium::domain::auth::{Role, TokenKeys};
use futures_util::future::join_all;
use secrecy::ExposeSecret as _;
use serde_json::{json, Value};

use crate::helpers::JsonBody as _;
use crate::helpers::{assert_problem, error_fields, patient_redis, str_of, TestApp, PASSWORD};
use crate::orders::{order_body, ORDERS};

const LOGIN: &str = "/api/v1/auth/login/";
const REGISTER: &str = "/api/v1/auth/register/";

#[tokio::test]
async fn nul_characters_are_refused_where_they_enter_never_reaching_sql() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let (_, token, _) = app.customer("ann@example.com").await;
    let r = app
        .post(
            REGISTER,
            None,
            &json!({"email": "a\u{0}@example.com", "password": PASSWORD}),
        )
        .await;
    let problem = assert_problem(r, 422, "validation_error").await;
    assert_eq!(error_fields(&problem), ["email"]);
    let r = app
        .post(
            "/api/v1/products/",
            Some(&admin),
            &json!({"name": "Bad\u{0}name", "sku": "x1", "price": 1, "currency": "EUR", "stock": 1, "tags": ["ok", "n\u{0}"]}),
        )
        .await;
    let problem = assert_problem(r, 422, "validation_error").await;
    assert!(error_fields(&problem)[0] == "name" || error_fields(&problem)[0] == "tags.1");
    let mut body = order_body(json!([]));
    body["shipping_address"]["city"] = json!("Ly\u{0}on");
    let problem = assert_problem(
        app.post(ORDERS, Some(&token), &body).await,
        422,
        "validation_error",
    )
    .await;
    assert_eq!(error_fields(&problem), ["shipping_address.city"]);
    // Query parameters and paths, anonymous ones included.
    for (path, field) in [
        ("/api/v1/products/?q=%00", "q"),
        ("/api/v1/products/?search=a%00b", "search"),
        ("/api/v1/categories/?page=%00", "page"),
        ("/api/v1/products/slug%00x/", "path"),
    ] {
        let problem = assert_problem(app.get(path, None).await, 400, "invalid_query").await;
        assert_eq!(error_fields(&problem), [field], "{path}");
    }
}

#[tokio::test]
async fn registration_is_rate_limited_per_client() {
    let app = TestApp::spawn_with(|s| {
        patient_redis(s);
        s.rate_limit.register_per_client = 3;
    })
    .await;
    for n in 0..3 {
        app.register(&format!("u{n}@example.com")).await;
    }
    let r = app
        .post(
            REGISTER,
            None,
            &json!({"email": "u9@example.com", "password": PASSWORD}),
        )
        .await;
    assert!(r.headers().contains_key("retry-after"));
    assert_problem(r, 429, "rate_limited").await;
}

#[tokio::test]
async fn a_taken_email_is_answered_without_hashing_yet_no_faster() {
    let app = TestApp::spawn().await;
    app.register("ann@example.com").await;
    let timed = |email: &'static str| {
        let app = &app;
        async move {
            let started = std::time::Instant::now();
            let r = app
                .post(
                    REGISTER,
                    None,
                    &json!({"email": email, "password": PASSWORD}),
                )
                .await;
            (r.status().as_u16(), started.elapsed())
        }
    };
    let (status, _) = timed("bob@example.com").await;
    assert_eq!(status, 201);
    let (status, taken) = timed("ann@example.com").await;
    assert_eq!(status, 409);
    // The taken email waits about one hash (argon2id here takes tens of
    // milliseconds), where a lookup alone takes a few: not a visibly
    // quicker answer.
    assert!(
        taken >= std::time::Duration::from_millis(15),
        "taken {taken:?}: the taken answer leaks by its speed"
    );
}

#[tokio::test]
async fn failed_logins_from_elsewhere_cannot_lock_the_owner_out() {
    let app = TestApp::spawn_with(|s| {
        patient_redis(s);
        s.http.trust_forwarded_for = true;
        s.rate_limit.login_per_email_client = 3;
        s.rate_limit.login_per_email = 8;
        s.rate_limit.login_per_client = 1000;
    })
    .await;
    app.register("ann@example.com").await;
    let login = |client: &str, password: &str| {
        app.client
            .post(app.url(LOGIN))
            .header("x-forwarded-for", client.to_owned())
            .json(&json!({"email": "ann@example.com", "password": password}))
            .send()
    };
    for _ in 0..3 {
        assert_eq!(
            login("203.0.113.7", "wrong guess")
                .await
                .expect("sent")
                .status(),
            401
        );
    }
    assert_problem(
        login("203.0.113.7", "wrong guess").await.expect("sent"),
        429,
        "rate_limited",
    )
    .await;
    // The owner, elsewhere, still gets in.
    assert_eq!(
        login("198.51.100.1", PASSWORD)
            .await
            .expect("sent")
            .status(),
        200
    );
    // A guess spread over many addresses meets the per-account ceiling.
    let mut statuses = Vec::new();
    for n in 0..8 {
        let r = login(&format!("192.0.2.{n}"), "wrong guess")
            .await
            .expect("sent");
        statuses.push(r.status().as_u16());
    }
    assert!(statuses.contains(&429), "{statuses:?}");
}

#[tokio::test]
async fn guesses_of_the_current_password_are_rate_limited() {
    let app = TestApp::spawn_with(|s| {
        patient_redis(s);
        s.rate_limit.password_per_user = 3;
    })
    .await;
    let (_, token, _) = app.customer("ann@example.com").await;
    let change =
        json!({"current_password": "wrong guess", "new_password": "another good password"});
    for _ in 0..3 {
        let r = app
            .post("/api/v1/auth/password/", Some(&token), &change)
            .await;
        assert_eq!(r.status(), 422);
    }
    let r = app
        .post("/api/v1/auth/password/", Some(&token), &change)
        .await;
    assert_problem(r, 429, "rate_limited").await;
}

#[tokio::test]
async fn credentials_that_are_sent_are_checked_on_every_route() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let (user_id, token, refresh) = app.customer("ann@example.com").await;
    app.register("bob@example.com").await;
    // Garbage, and a deactivated user's once valid token.
    let r = app
        .patch(
            &format!("/api/v1/auth/users/{user_id}/"),
            Some(&admin),
            &json!({"is_active": false}),
        )
        .await;
    assert_eq!(r.status(), 200);
    for bad in ["garbage", token.as_str()] {
        for path in [
            "/api/v1/categories/",
            "/api/v1/categories/00000000-0000-0000-0000-000000000000/",
            "/api/v1/products/",
            "/api/v1/no-such-route/",
        ] {
            assert_problem(app.get(path, Some(bad)).await, 401, "invalid_token").await;
        }
        let r = app
            .post(
                REGISTER,
                Some(bad),
                &json!({"email": "c@example.com", "password": PASSWORD}),
            )
            .await;
        assert_problem(r, 401, "invalid_token").await;
    }
    // Without credentials the public reads stay public.
    assert_eq!(app.get("/api/v1/categories/", None).await.status(), 200);
    // Token endpoints ignore a stale header, as simplejwt's do.
    let r = app
        .request(reqwest::Method::POST, LOGIN, Some("expired-or-garbage"))
        .json(&json!({"email": "bob@example.com", "password": PASSWORD}))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200);
    let r = app
        .request(
            reqwest::Method::POST,
            "/api/v1/auth/refresh/",
            Some("garbage"),
        )
        .json(&json!({"refresh": refresh}))
        .send()
        .await
        .expect("sent");
    assert_problem(r, 401, "invalid_token").await;
}

#[tokio::test]
async fn tokens_issued_in_the_future_are_refused() {
    let app = TestApp::spawn().await;
    let (user_id, _, _) = app.customer("ann@example.com").await;
    let keys = TokenKeys::new(
        app.settings.auth.jwt_secret.expose_secret().as_bytes(),
        &app.settings.auth.issuer,
        &app.settings.auth.audience,
        900,
    );
    let future = keys
        .issue_access(
            user_id.parse().expect("uuid"),
            Role::Customer,
            0,
            chrono::Utc::now().timestamp() + 3600,
        )
        .expect("sign");
    assert_problem(
        app.get("/api/v1/auth/me/", Some(&future)).await,
        401,
        "invalid_token",
    )
    .await;
}

#[tokio::test]
async fn page_links_never_reflect_untrusted_host_headers() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    for _ in 0..2 {
        app.product(&admin, json!({})).await;
    }
    let page: Value = app
        .request(reqwest::Method::GET, "/api/v1/products/?page_size=1", None)
        .header("x-forwarded-host", "evil.example")
        .header("x-forwarded-proto", "javascript")
        .header("forwarded", "host=evil.example;proto=javascript")
        .send()
        .await
        .expect("sent")
        .body_json()
        .await;
    let next = str_of(&page["next"]);
    assert!(next.starts_with(&app.address), "{next}");

    let app =
        TestApp::spawn_with(|s| s.http.public_base_url = Some("https://shop.example".into())).await;
    let (_, admin) = app.admin().await;
    for _ in 0..2 {
        app.product(&admin, json!({})).await;
    }
    let page: Value = app
        .get("/api/v1/products/?page_size=1", None)
        .await
        .body_json()
        .await;
    assert_eq!(
        page["next"], "https://shop.example/api/v1/products/?page_size=1&page=2",
        "links keep the client's trailing slash"
    );
    let page: Value = app
        .get("/api/v1/products?page_size=1&page=2", None)
        .await
        .body_json()
        .await;
    assert_eq!(
        page["previous"], "https://shop.example/api/v1/products?page_size=1",
        "and its absence"
    );
}

#[tokio::test]
async fn the_last_active_admin_survives_two_admins_demoting_each_other() {
    let app = TestApp::spawn().await;
    let (first_id, first) = app.admin().await;
    let second_id =
        emporium::commands::create_admin(&app.settings, "second@emporium.test", PASSWORD, "Second")
            .await
            .expect("second admin");
    let second = str_of(&app.login("second@emporium.test", PASSWORD).await["access"]);
    for change in [json!({"is_active": false}), json!({"role": "customer"})] {
        let (to_second, to_first) = (
            format!("/api/v1/auth/users/{second_id}/"),
            format!("/api/v1/auth/users/{first_id}/"),
        );
        let (a, b) = futures_util::join!(
            app.patch(&to_second, Some(&first), &change),
            app.patch(&to_first, Some(&second), &change),
        );
        let mut statuses = [a.status().as_u16(), b.status().as_u16()];
        statuses.sort_unstable();
        // One wins; the other either meets the guard or is no admin any more.
        assert!(
            statuses == [200, 409] || statuses == [200, 401] || statuses == [200, 403],
            "{statuses:?}"
        );
        let pool = app.database_pool(emporium::config::Domain::Auth).await;
        let admins: i64 =
            sqlx::query_scalar("SELECT count(*) FROM users WHERE role = 'admin' AND is_active")
                .fetch_one(&pool)
                .await
                .expect("count");
        assert_eq!(admins, 1, "exactly one active admin remains");
        // Put both back for the next round.
        sqlx::query(
            "UPDATE users SET role = 'admin', is_active = true WHERE email LIKE '%@emporium.test'",
        )
        .execute(&pool)
        .await
        .expect("restore");
        pool.close().await;
    }
}

#[tokio::test]
async fn unknown_countries_and_id_shaped_slugs_are_refused() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let (_, token, _) = app.customer("ann@example.com").await;
    let p = app.product(&admin, json!({})).await;
    let mut body = order_body(json!([{"product_id": p["id"], "quantity": 1}]));
    body["shipping_address"]["country"] = json!("XX");
    let problem = assert_problem(
        app.post(ORDERS, Some(&token), &body).await,
        422,
        "validation_error",
    )
    .await;
    assert_eq!(error_fields(&problem), ["shipping_address.country"]);
    let r = app
        .post(
            "/api/v1/products/",
            Some(&admin),
            &json!({"name": "Thing", "sku": "sku-uuid", "price": 1, "currency": "EUR", "stock": 1,
                    "slug": "550e8400-e29b-41d4-a716-446655440000"}),
        )
        .await;
    let problem = assert_problem(r, 422, "validation_error").await;
    assert_eq!(error_fields(&problem), ["slug"]);
}

#[tokio::test]
async fn responses_carry_cache_and_sniffing_headers_and_head_and_405_behave() {
    let app = TestApp::spawn().await;
    app.register("ann@example.com").await;
    let r = app
        .post(
            LOGIN,
            None,
            &json!({"email": "ann@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    let pair: Value = r.body_json().await;
    let r = app
        .get("/api/v1/auth/me/", Some(&str_of(&pair["access"])))
        .await;
    assert_eq!(r.headers()["cache-control"], "no-store");
    let r = app.get("/api/v1/products/", None).await;
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert!(r
        .headers()
        .get("cache-control")
        .is_none_or(|v| v != "no-store"));

    let r = app
        .request(reqwest::Method::HEAD, "/api/v1/products/", None)
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.expect("body").len(), 0);

    let r = app
        .request(reqwest::Method::DELETE, "/api/v1/auth/me/", None)
        .send()
        .await
        .expect("sent");
    let allow = r.headers()["allow"].to_str().expect("ascii").to_owned();
    assert!(allow.contains("GET") && allow.contains("HEAD"), "{allow}");
    assert_problem(r, 405, "method_not_allowed").await;
}

#[tokio::test]
async fn drf_clients_search_with_the_search_parameter() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    app.product(&admin, json!({"name": "Trail runner shoe"}))
        .await;
    app.product(&admin, json!({"name": "Kettle"})).await;
    let page: Value = app
        .get("/api/v1/products/?search=kettle", None)
        .await
        .body_json()
        .await;
    assert_eq!(page["count"], 1, "{page}");
    assert_eq!(page["results"][0]["name"], "Kettle");
    let all = join_all((0..2).map(|_| app.get("/api/v1/products/", None))).await;
    assert!(all.iter().all(|r| r.status() == 200));
}
