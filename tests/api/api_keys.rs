//! API keys: made by admins and shown once, stored as a digest, opening
//! only the routes their scopes name, limited per key, and refused on every
//! instance from the request after their revocation or expiry.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::helpers::JsonBody as _;
use crate::helpers::{assert_problem, error_fields, str_of, TestApp};

const KEYS: &str = "/api/v1/api-keys/";

async fn make_key(app: &TestApp, admin: &str, body: Value) -> Value {
    let r = app.post(KEYS, Some(admin), &body).await;
    assert_eq!(r.status(), 201, "making a key {body}");
    r.body_json().await
}

#[tokio::test]
async fn a_key_opens_the_routes_of_its_scopes_and_nothing_else() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let made = make_key(
        &app,
        &admin,
        json!({"name": "warehouse", "scopes": ["catalog:read", "orders:write"]}),
    )
    .await;
    let key = str_of(&made["key"]);
    assert!(key.starts_with("emp_sk_") && key.len() >= 7 + 43, "{key}");
    assert_eq!(made["scopes"], json!(["catalog:read", "orders:write"]));
    assert!(key.starts_with(made["prefix"].as_str().expect("prefix")));
    // Only a digest is kept.
    let auth = app.database_pool(emporium::config::Domain::Auth).await;
    let (digest, texts): (Vec<u8>, String) = sqlx::query_as(
        "SELECT key_hash, concat_ws(' ', name, prefix, array_to_string(scopes, ' ')) FROM api_keys",
    )
    .fetch_one(&auth)
    .await
    .expect("key row");
    assert_eq!(digest, Sha256::digest(key.as_bytes()).to_vec());
    assert!(!texts.contains(&key));
    // The listing never shows a secret.
    let listed: Value = app.get(KEYS, Some(&admin)).await.body_json().await;
    assert!(listed[0].get("key").is_none(), "{listed}");

    assert_eq!(app.get("/api/v1/products/", Some(&key)).await.status(), 200);
    let product =
        json!({"name": "Kettle", "sku": "K-1", "price": 1000, "currency": "EUR", "stock": 3});
    assert_problem(
        app.post("/api/v1/products/", Some(&key), &product).await,
        403,
        "permission_denied",
    )
    .await;
    assert_problem(
        app.get("/api/v1/orders/", Some(&key)).await,
        403,
        "permission_denied",
    )
    .await;
    assert_problem(
        app.get("/api/v1/auth/users/", Some(&key)).await,
        403,
        "permission_denied",
    )
    .await;
    assert_problem(
        app.get("/api/v1/auth/me/", Some(&key)).await,
        403,
        "permission_denied",
    )
    .await;
    let more = json!({"name": "escalate", "scopes": ["catalog:write"]});
    assert_problem(
        app.post(KEYS, Some(&key), &more).await,
        403,
        "permission_denied",
    )
    .await;
    assert_problem(app.get(KEYS, Some(&key)).await, 403, "permission_denied").await;
    // A key with catalog:write writes the catalog.
    let writer = str_of(
        &make_key(
            &app,
            &admin,
            json!({"name": "erp", "scopes": ["catalog:write"]}),
        )
        .await["key"],
    );
    let r = app.post("/api/v1/products/", Some(&writer), &product).await;
    let status = r.status();
    assert_eq!(status, 201, "{}", r.text().await.unwrap_or_default());
    // Its use is recorded.
    let seen: Value = app
        .get(&format!("{KEYS}{}/", str_of(&made["id"])), Some(&admin))
        .await
        .body_json()
        .await;
    assert!(seen["last_used_at"].is_string(), "{seen}");
    // A key that is not one is a bad token.
    assert_problem(
        app.get("/api/v1/products/", Some("emp_sk_nope")).await,
        401,
        "invalid_token",
    )
    .await;
    auth.close().await;
}

#[tokio::test]
async fn a_revoked_or_expired_key_is_refused_on_every_instance_at_once() {
    let app = TestApp::spawn().await;
    let other = TestApp::spawn_beside(&app.settings).await;
    let (_, admin) = app.admin().await;
    let made = make_key(
        &app,
        &admin,
        json!({"name": "erp", "scopes": ["catalog:read"]}),
    )
    .await;
    let key = str_of(&made["key"]);
    // Both instances know the key (and cache it in their views).
    assert_eq!(app.get("/api/v1/products/", Some(&key)).await.status(), 200);
    assert_eq!(
        other.get("/api/v1/products/", Some(&key)).await.status(),
        200
    );
    let r = app
        .delete(&format!("{KEYS}{}/", str_of(&made["id"])), Some(&admin))
        .await;
    assert_eq!(r.status(), 204);
    assert_problem(
        other.get("/api/v1/products/", Some(&key)).await,
        401,
        "invalid_token",
    )
    .await;
    assert_problem(
        app.get("/api/v1/products/", Some(&key)).await,
        401,
        "invalid_token",
    )
    .await;
    let seen: Value = app
        .get(&format!("{KEYS}{}/", str_of(&made["id"])), Some(&admin))
        .await
        .body_json()
        .await;
    assert!(seen["revoked_at"].is_string());

    let soon = (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
    let brief = make_key(
        &app,
        &admin,
        json!({"name": "brief", "scopes": ["catalog:read"], "expires_at": soon}),
    )
    .await;
    let brief = str_of(&brief["key"]);
    assert_eq!(
        other.get("/api/v1/products/", Some(&brief)).await.status(),
        200
    );
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    assert_problem(
        other.get("/api/v1/products/", Some(&brief)).await,
        401,
        "invalid_token",
    )
    .await;
    assert_problem(
        app.get("/api/v1/products/", Some(&brief)).await,
        401,
        "invalid_token",
    )
    .await;
}

#[tokio::test]
async fn keys_have_their_own_rate_limit_and_bad_requests_are_refused() {
    let app = TestApp::spawn_with(|s| s.rate_limit.api_key_requests = 3).await;
    let (_, admin) = app.admin().await;
    let (_, customer, _) = app.customer("ann@example.com").await;
    let key = str_of(
        &make_key(
            &app,
            &admin,
            json!({"name": "erp", "scopes": ["catalog:read"]}),
        )
        .await["key"],
    );
    for _ in 0..3 {
        assert_eq!(app.get("/api/v1/products/", Some(&key)).await.status(), 200);
    }
    let r = app.get("/api/v1/products/", Some(&key)).await;
    assert!(r.headers().get("retry-after").is_some());
    assert_problem(r, 429, "rate_limited").await;
    // People are not counted against the key.
    assert_eq!(
        app.get("/api/v1/products/", Some(&admin)).await.status(),
        200
    );

    let fine = json!({"name": "erp", "scopes": ["catalog:read"]});
    assert_problem(app.post(KEYS, None, &fine).await, 401, "not_authenticated").await;
    assert_problem(
        app.post(KEYS, Some(&customer), &fine).await,
        403,
        "permission_denied",
    )
    .await;
    assert_problem(
        app.get(KEYS, Some(&customer)).await,
        403,
        "permission_denied",
    )
    .await;
    let past = (chrono::Utc::now() - chrono::Duration::seconds(1)).to_rfc3339();
    let cases = [
        (json!({}), vec!["name"]),
        (json!({"name": "erp"}), vec!["scopes"]),
        (
            json!({"name": " ", "scopes": ["catalog:read"]}),
            vec!["name"],
        ),
        (json!({"name": "erp", "scopes": []}), vec!["scopes"]),
        (
            json!({"name": "erp", "scopes": vec!["orders:read"; 6]}),
            vec!["scopes"],
        ),
        (
            json!({"name": "erp", "scopes": ["catalog:delete"]}),
            vec!["scopes.0"],
        ),
        (
            json!({"name": "erp", "scopes": "catalog:read"}),
            vec!["scopes"],
        ),
        (
            json!({"name": "erp", "scopes": ["catalog:read"], "expires_at": past}),
            vec!["expires_at"],
        ),
        (
            json!({"name": "erp", "scopes": ["catalog:read"], "expires_at": "soon"}),
            vec!["expires_at"],
        ),
        (
            json!({"name": "erp", "scopes": ["catalog:read"], "owner": "me"}),
            vec!["owner"],
        ),
    ];
    for (body, fields) in cases {
        let r = app.post(KEYS, Some(&admin), &body).await;
        assert_eq!(r.status(), 422, "{body}");
        let problem: Value = r.body_json().await;
        assert_eq!(error_fields(&problem), fields, "{body}: {problem}");
    }
    let huge = json!({"name": "x".repeat(3_000_000), "scopes": ["catalog:read"]});
    assert_eq!(app.post(KEYS, Some(&admin), &huge).await.status(), 413);
    let unknown = format!("{KEYS}{}/", Uuid::new_v4());
    assert_problem(app.get(&unknown, Some(&admin)).await, 404, "not_found").await;
    assert_problem(app.delete(&unknown, Some(&admin)).await, 404, "not_found").await;
    assert_problem(
        app.get(&format!("{KEYS}nope/"), Some(&admin)).await,
        404,
        "not_found",
    )
    .await;
    let listed: Value = app.get(KEYS, Some(&admin)).await.body_json().await;
    assert_eq!(
        listed.as_array().expect("list").len(),
        1,
        "nothing else was made"
    );
}
