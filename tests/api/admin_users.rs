use serde_json::{json, Value};

use crate::helpers::JsonBody as _;
use crate::helpers::{assert_problem, error_fields, str_of, TestApp, PASSWORD};

const USERS: &str = "/api/v1/auth/users/";

#[tokio::test]
async fn only_admins_may_list_users() {
    let app = TestApp::spawn().await;
    let (_, customer, _) = app.customer("ann@example.com").await;
    assert_problem(app.get(USERS, None).await, 401, "not_authenticated").await;
    assert_problem(
        app.get(USERS, Some(&customer)).await,
        403,
        "permission_denied",
    )
    .await;
    let r = app
        .patch(
            &format!("{USERS}{}/", uuid::Uuid::new_v4()),
            Some(&customer),
            &json!({"role": "admin"}),
        )
        .await;
    assert_problem(r, 403, "permission_denied").await;
    assert_problem(
        app.get("/api/v1/admin/actors/", Some(&customer)).await,
        403,
        "permission_denied",
    )
    .await;
}

#[tokio::test]
async fn the_user_list_pages_like_drf() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    for n in 0..4 {
        app.register(&format!("user{n}@example.com")).await;
    }
    let page: Value = app
        .get(&format!("{USERS}?page_size=2"), Some(&admin))
        .await
        .body_json()
        .await;
    assert_eq!(page["count"], 5);
    assert_eq!(page["results"].as_array().expect("results").len(), 2);
    assert_eq!(page["previous"], Value::Null);
    let next = str_of(&page["next"]);
    assert!(
        next.starts_with(&app.address) && next.contains("page=2") && next.contains("page_size=2"),
        "{next}"
    );

    let last: Value = app
        .get(&format!("{USERS}?page_size=2&page=3"), Some(&admin))
        .await
        .body_json()
        .await;
    assert_eq!(last["results"].as_array().expect("results").len(), 1);
    assert_eq!(last["next"], Value::Null);
    assert!(str_of(&last["previous"]).contains("page=2"));

    let huge: Value = app
        .get(&format!("{USERS}?page_size=100000"), Some(&admin))
        .await
        .body_json()
        .await;
    assert_eq!(huge["results"].as_array().expect("results").len(), 5);

    assert_problem(
        app.get(&format!("{USERS}?page=9"), Some(&admin)).await,
        404,
        "not_found",
    )
    .await;
    for bad in [
        "page=0",
        "page=-1",
        "page=abc",
        "page_size=0",
        "page_size=x",
        "role=root",
        "is_active=maybe",
    ] {
        let r = app.get(&format!("{USERS}?{bad}"), Some(&admin)).await;
        assert_problem(r, 400, "invalid_query").await;
    }
}

#[tokio::test]
async fn the_user_list_filters_by_role_activity_and_email() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    app.register("ann@example.com").await;
    app.register("bob@shop.test").await;
    let admins: Value = app
        .get(&format!("{USERS}?role=admin"), Some(&admin))
        .await
        .body_json()
        .await;
    assert_eq!(admins["count"], 1);
    let shop: Value = app
        .get(&format!("{USERS}?email=SHOP"), Some(&admin))
        .await
        .body_json()
        .await;
    assert_eq!(shop["count"], 1);
    assert_eq!(shop["results"][0]["email"], "bob@shop.test");
    let inactive: Value = app
        .get(&format!("{USERS}?is_active=false"), Some(&admin))
        .await
        .body_json()
        .await;
    assert_eq!(inactive["count"], 0);
}

#[tokio::test]
async fn a_promoted_user_is_an_admin_on_the_next_request() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let (id, customer, _) = app.customer("ann@example.com").await;
    assert_eq!(app.get(USERS, Some(&customer)).await.status(), 403);
    let r = app
        .patch(
            &format!("{USERS}{id}/"),
            Some(&admin),
            &json!({"role": "admin"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let user: Value = r.body_json().await;
    assert_eq!(user["role"], "admin");
    // Same token as before: the role is read from the database, not the token.
    assert_eq!(app.get(USERS, Some(&customer)).await.status(), 200);
}

#[tokio::test]
async fn a_deactivated_user_loses_every_token_and_cannot_log_in() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let (id, access, refresh) = app.customer("ann@example.com").await;
    let r = app
        .patch(
            &format!("{USERS}{id}"),
            Some(&admin),
            &json!({"is_active": false}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_problem(
        app.get("/api/v1/auth/me/", Some(&access)).await,
        401,
        "invalid_token",
    )
    .await;
    let r = app
        .post("/api/v1/auth/refresh/", None, &json!({"refresh": refresh}))
        .await;
    assert_eq!(r.status(), 401);
    let r = app
        .post(
            "/api/v1/auth/login/",
            None,
            &json!({"email": "ann@example.com", "password": PASSWORD}),
        )
        .await;
    assert_problem(r, 401, "invalid_credentials").await;
    // Reactivated, the account logs in again.
    let r = app
        .patch(
            &format!("{USERS}{id}/"),
            Some(&admin),
            &json!({"is_active": true}),
        )
        .await;
    assert_eq!(r.status(), 200);
    app.login("ann@example.com", PASSWORD).await;
}

#[tokio::test]
async fn bad_user_updates_are_refused() {
    let app = TestApp::spawn().await;
    let (admin_id, admin) = app.admin().await;
    let (id, _, _) = app.customer("ann@example.com").await;
    let user = format!("{USERS}{id}/");
    let problem = assert_problem(
        app.patch(&user, Some(&admin), &json!({"role": "root"}))
            .await,
        422,
        "validation_error",
    )
    .await;
    assert_eq!(error_fields(&problem), ["role"]);
    let problem = assert_problem(
        app.patch(&user, Some(&admin), &json!({"email": "x@y.z"}))
            .await,
        422,
        "validation_error",
    )
    .await;
    assert_eq!(error_fields(&problem), ["email"]);
    assert_problem(
        app.patch(&user, Some(&admin), &json!({"is_active": "no"}))
            .await,
        422,
        "validation_error",
    )
    .await;
    assert_problem(
        app.patch(&user, Some(&admin), &json!({})).await,
        422,
        "validation_error",
    )
    .await;
    let r = app
        .patch(
            &format!("{USERS}{}/", uuid::Uuid::new_v4()),
            Some(&admin),
            &json!({"role": "admin"}),
        )
        .await;
    assert_problem(r, 404, "not_found").await;
    let r = app
        .patch(
            &format!("{USERS}not-a-uuid/"),
            Some(&admin),
            &json!({"role": "admin"}),
        )
        .await;
    assert_problem(r, 404, "not_found").await;
    let me = format!("{USERS}{admin_id}/");
    assert_problem(
        app.patch(&me, Some(&admin), &json!({"is_active": false}))
            .await,
        409,
        "self_lockout",
    )
    .await;
    assert_problem(
        app.patch(&me, Some(&admin), &json!({"role": "customer"}))
            .await,
        409,
        "self_lockout",
    )
    .await;
}

#[tokio::test]
async fn create_admin_refuses_an_existing_email_and_bad_input() {
    let app = TestApp::spawn().await;
    app.register("ann@example.com").await;
    let taken =
        emporium::commands::create_admin(&app.settings, "ANN@example.com", PASSWORD, "").await;
    assert!(taken
        .expect_err("taken")
        .to_string()
        .contains("already exists"));
    assert!(
        emporium::commands::create_admin(&app.settings, "nope", PASSWORD, "")
            .await
            .is_err()
    );
    assert!(
        emporium::commands::create_admin(&app.settings, "x@example.com", "short", "")
            .await
            .is_err()
    );
}
