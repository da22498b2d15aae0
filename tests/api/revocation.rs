//! Instant revocation across instances: with principals served from each
//! instance's auth view, logging out everywhere, a new password,
//! deactivation and a role change still take effect on the very next
//! request on every instance, including one whose channel has stalled.

use serde_json::json;

use crate::catalog_view::StallingProxy;
use crate::helpers::{assert_problem, TestApp, PASSWORD};

const ME: &str = "/api/v1/auth/me/";

/// Requests `ME` until the auth view answers for `token` on `app` (its
/// hit counter moves), so the next check reads the view, not the database.
async fn warm(app: &TestApp, token: &str) {
    for _ in 0..50 {
        let before = app.actors.auth_view.snapshot().hits;
        assert_eq!(app.get(ME, Some(token)).await.status(), 200);
        if app.actors.auth_view.snapshot().hits > before {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the auth view never answered");
}

#[tokio::test]
async fn logout_all_and_a_new_password_refuse_old_tokens_on_the_other_instance_at_once() {
    let a = TestApp::spawn().await;
    let b = TestApp::spawn_beside(&a.settings).await;
    let (_, access, _) = a.customer("ann@example.com").await;
    warm(&b, &access).await;
    let r = a
        .post("/api/v1/auth/logout-all/", Some(&access), &json!({}))
        .await;
    assert_eq!(r.status(), 204);
    assert_problem(b.get(ME, Some(&access)).await, 401, "invalid_token").await;

    let pair = a.login("ann@example.com", PASSWORD).await;
    let access = pair["access"].as_str().expect("access").to_owned();
    warm(&b, &access).await;
    let r = a
        .post(
            "/api/v1/auth/password/",
            Some(&access),
            &json!({"current_password": PASSWORD, "new_password": "a brand new one"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_problem(b.get(ME, Some(&access)).await, 401, "invalid_token").await;
}

#[tokio::test]
async fn deactivation_and_demotion_take_effect_on_the_other_instance_at_once() {
    let a = TestApp::spawn().await;
    let b = TestApp::spawn_beside(&a.settings).await;
    let (_, admin) = a.admin().await;
    let (ann, ann_access, _) = a.customer("ann@example.com").await;
    let (bob, _, _) = a.customer("bob@example.com").await;
    let users = "/api/v1/auth/users/";
    // Bob is made an admin, and his new token is seen as an admin's on b.
    let r = a
        .patch(
            &format!("{users}{bob}/"),
            Some(&admin),
            &json!({"role": "admin"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let bob_access = a.login("bob@example.com", PASSWORD).await["access"]
        .as_str()
        .expect("access")
        .to_owned();
    warm(&b, &bob_access).await;
    assert_eq!(b.get(users, Some(&bob_access)).await.status(), 200);
    // Demoted on a: the next request on b is a customer's.
    let r = a
        .patch(
            &format!("{users}{bob}/"),
            Some(&admin),
            &json!({"role": "customer"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_problem(
        b.get(users, Some(&bob_access)).await,
        403,
        "permission_denied",
    )
    .await;

    warm(&b, &ann_access).await;
    let r = a
        .patch(
            &format!("{users}{ann}/"),
            Some(&admin),
            &json!({"is_active": false}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_problem(b.get(ME, Some(&ann_access)).await, 401, "invalid_token").await;
}

#[tokio::test]
async fn an_instance_whose_channel_stalls_still_refuses_a_revoked_token() {
    let a = TestApp::spawn().await;
    let proxy = StallingProxy::start().await;
    let mut beside = a.settings.clone();
    beside.redis.url = proxy.url();
    let b = TestApp::spawn_beside(&beside).await;
    let (_, access, _) = a.customer("ann@example.com").await;
    warm(&b, &access).await;
    proxy.stall(true);
    let r = a
        .post("/api/v1/auth/logout-all/", Some(&access), &json!({}))
        .await;
    assert_eq!(r.status(), 204);
    assert_problem(b.get(ME, Some(&access)).await, 401, "invalid_token").await;
    proxy.stall(false);
}
