//! Recommendations served from a model built from the shop's own data:
//! personal and popular rankings, similar and bought-together, exclusions,
//! bad parameters, the admin's report and rebuild, and requests during a
//! rebuild.

use std::time::{Duration, Instant};

use emporium::commands::{seed_demo, SeedSize, DEMO_PASSWORD};
use futures_util::future::join_all;
use serde_json::{json, Value};

use crate::helpers::JsonBody as _;
use crate::helpers::{assert_problem, str_of, TestApp};
use crate::orders::place;

const RECS: &str = "/api/v1/products/recommendations/";
const REPORT: &str = "/api/v1/admin/recommendations/";

/// An instance with demo data and a model built from it; returns the
/// admin's token.
async fn shop_with_model() -> (TestApp, String) {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let size = SeedSize {
        products: 300,
        customers: 60,
        orders_per_customer: 4,
    };
    seed_demo(&app.settings, size, 7).await.expect("seeded");
    ships_free(&app).await;
    let before: Value = app.get(REPORT, Some(&admin)).await.body_json().await;
    let r = app
        .post(&format!("{REPORT}rebuild/"), Some(&admin), &json!({}))
        .await;
    assert_eq!(r.status(), 202);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now: Value = app.get(REPORT, Some(&admin)).await.body_json().await;
        let built = now["builds"].as_u64() > before["builds"].as_u64() && now["building"] == false;
        if built && now["live"]["orders"].as_u64() > Some(0) {
            break;
        }
        assert!(Instant::now() < deadline, "no model built: {now}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (app, admin)
}

async fn demo_customer(app: &TestApp, n: usize) -> String {
    str_of(
        &app.login(&format!("customer{n}@demo.emporium.test"), DEMO_PASSWORD)
            .await["access"],
    )
}

async fn get(app: &TestApp, path: &str, token: Option<&str>) -> Value {
    let r = app.get(path, token).await;
    assert_eq!(r.status(), 200, "{path}");
    r.body_json().await
}

fn ids(page: &Value) -> Vec<String> {
    page["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|p| str_of(&p["id"]))
        .collect()
}

#[tokio::test]
async fn recommendations_are_personal_with_a_token_and_popular_without() {
    let (app, admin) = shop_with_model().await;
    let popular = get(&app, RECS, None).await;
    assert_eq!(popular["strategy"], "popular");
    assert_eq!(popular["results"].as_array().expect("results").len(), 10);
    let token = demo_customer(&app, 3).await;
    let personal = get(&app, &format!("{RECS}?limit=5"), Some(&token)).await;
    assert_eq!(personal["strategy"], "personal");
    assert_eq!(personal["model_version"], popular["model_version"]);
    let results = personal["results"].as_array().expect("results");
    assert_eq!(results.len(), 5);
    for p in results {
        assert!(
            p["is_active"] == true && p["stock"].as_i64() > Some(0),
            "{p}"
        );
        assert!(
            p["score"].as_f64().is_some() && p["reason"].as_str().is_some(),
            "{p}"
        );
        assert!(
            p["name"].as_str().is_some() && p["price"].as_i64().is_some(),
            "as the catalog shows it"
        );
    }
    // Deterministic for a given model.
    assert_eq!(
        get(&app, &format!("{RECS}?limit=5"), Some(&token)).await,
        personal
    );
    // A customer who bought nothing gets the popular list.
    let (_, newcomer, _) = app.customer("new@example.com").await;
    assert_eq!(
        get(&app, RECS, Some(&newcomer)).await["strategy"],
        "popular"
    );
    // The report describes the live model.
    let report = get(&app, REPORT, Some(&admin)).await;
    let live = &report["live"];
    assert_eq!(live["products"], 300);
    assert!(
        live["users"].as_u64() > Some(0) && live["edges"].as_u64() > Some(0),
        "{report}"
    );
    assert!(
        live["evaluation"]["blend"]["recall"].as_f64()
            >= live["evaluation"]["popularity"]["recall"].as_f64()
    );
    assert_problem(
        app.get(REPORT, Some(&token)).await,
        403,
        "permission_denied",
    )
    .await;
}

#[tokio::test]
async fn bad_parameters_and_other_users_are_refused() {
    let (app, admin) = shop_with_model().await;
    let token = demo_customer(&app, 1).await;
    for bad in ["0", "51", "abc", "-1"] {
        let r = app.get(&format!("{RECS}?limit={bad}"), Some(&token)).await;
        assert_problem(r, 400, "invalid_query").await;
    }
    let user_id = str_of(&get(&app, "/api/v1/auth/me/", Some(&token)).await["id"]);
    let theirs = format!("{RECS}?user_id={user_id}");
    assert_problem(
        app.get(&theirs, Some(&token)).await,
        403,
        "permission_denied",
    )
    .await;
    assert_problem(app.get(&theirs, None).await, 401, "not_authenticated").await;
    let for_them = get(&app, &theirs, Some(&admin)).await;
    assert_eq!(for_them["strategy"], "personal");
    assert_eq!(ids(&for_them), ids(&get(&app, RECS, Some(&token)).await));
    let missing = "/api/v1/products/00000000-0000-0000-0000-000000000000/similar/";
    assert_problem(app.get(missing, None).await, 404, "not_found").await;
    assert_problem(
        app.get("/api/v1/products/no-such-slug/bought-together/", None)
            .await,
        404,
        "not_found",
    )
    .await;
    assert_problem(
        app.get(&format!("{RECS}?user_id=nope"), Some(&admin)).await,
        400,
        "invalid_query",
    )
    .await;
}

#[tokio::test]
async fn similar_and_bought_together_answer_from_the_model() {
    let (app, _) = shop_with_model().await;
    let popular = get(&app, &format!("{RECS}?limit=1"), None).await;
    let product = &popular["results"][0];
    let id = str_of(&product["id"]);
    let similar = get(
        &app,
        &format!("/api/v1/products/{id}/similar/?limit=5"),
        None,
    )
    .await;
    assert_eq!(similar["strategy"], "similar");
    assert!(!ids(&similar).contains(&id), "never the product itself");
    assert_eq!(similar["results"].as_array().expect("results").len(), 5);
    let slug = str_of(&product["slug"]);
    let together = get(
        &app,
        &format!("/api/v1/products/{slug}/bought-together/?limit=5"),
        None,
    )
    .await;
    assert_eq!(together["strategy"], "bought_together");
    let results = together["results"].as_array().expect("results");
    assert!(!results.is_empty() && results.len() <= 5);
    assert!(!ids(&together).contains(&id));
}

#[tokio::test]
async fn pending_orders_and_unavailable_products_are_never_recommended() {
    let (app, admin) = shop_with_model().await;
    let token = demo_customer(&app, 2).await;
    let first = get(&app, RECS, Some(&token)).await;
    let top = first["results"][0].clone();
    let second = first["results"][1].clone();
    place(
        &app,
        &token,
        json!([{"product_id": top["id"], "quantity": 1}]),
    )
    .await;
    let r = app
        .patch(
            &format!("/api/v1/products/{}/", str_of(&second["id"])),
            Some(&admin),
            &json!({"stock": 0}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let after = ids(&get(&app, RECS, Some(&token)).await);
    assert!(!after.contains(&str_of(&top["id"])), "in a pending order");
    assert!(!after.contains(&str_of(&second["id"])), "out of stock");
    assert_eq!(after.len(), 10, "topped up from further down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_served_while_a_rebuild_runs() {
    let (app, admin) = shop_with_model().await;
    let (path, body) = (format!("{REPORT}rebuild/"), json!({}));
    let rebuild = app.post(&path, Some(&admin), &body);
    let requests = join_all((0..40).map(|_| app.get(RECS, None)));
    let (r, replies) = futures_util::join!(rebuild, requests);
    assert_eq!(r.status(), 202);
    assert!(replies.iter().all(|r| r.status() == 200));
}

#[tokio::test]
async fn paid_orders_count_before_the_next_rebuild_and_never_twice() {
    let app = TestApp::spawn_with(|s| s.recommendations.follow_interval_ms = 200).await;
    let (_, admin) = app.admin().await;
    let size = SeedSize {
        products: 200,
        customers: 40,
        orders_per_customer: 4,
    };
    seed_demo(&app.settings, size, 11).await.expect("seeded");
    ships_free(&app).await;
    let report = || get(&app, REPORT, Some(&admin));
    let builds = report().await["builds"].as_u64().expect("builds");
    app.post(&format!("{REPORT}rebuild/"), Some(&admin), &json!({}))
        .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(report().await["builds"].as_u64() > Some(builds) && report().await["building"] == false)
    {
        assert!(Instant::now() < deadline, "no build");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, token, _) = app.customer("new@example.com").await;
    assert_eq!(get(&app, RECS, Some(&token)).await["strategy"], "popular");
    let popular = get(&app, &format!("{RECS}?limit=1"), None).await;
    let order = place(
        &app,
        &token,
        json!([{"variant_id": popular["results"][0]["variants"][0]["id"], "quantity": 1}]),
    )
    .await;
    app.actors
        .orders
        .call(emporium::actors::orders::messages::MarkOrderPaid {
            order_id: str_of(&order["id"]).parse().expect("uuid"),
            payment_id: "pay_follow".into(),
        })
        .await
        .expect("paid");
    // Followed from the outbox (after its settle time), no rebuild needed.
    let deadline = Instant::now() + Duration::from_secs(15);
    while get(&app, RECS, Some(&token)).await["strategy"] != "personal" {
        assert!(
            Instant::now() < deadline,
            "the purchase never reached rankings"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let now = report().await;
    assert_eq!(now["orders_since_build"], 1, "{now}");
    assert!(now["followed_events"].as_u64() >= Some(1));
    // A rebuild holds the order; the overlay lets go of it.
    let builds = now["builds"].as_u64().expect("builds");
    app.post(&format!("{REPORT}rebuild/"), Some(&admin), &json!({}))
        .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = report().await;
        if r["builds"].as_u64() > Some(builds) && r["building"] == false {
            assert_eq!(r["orders_since_build"], 0, "{r}");
            break;
        }
        assert!(Instant::now() < deadline, "no build");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(get(&app, RECS, Some(&token)).await["strategy"], "personal");
}

/// A running instance picks up a seeded shop by itself: the orders it
/// follows from the outbox are growth enough for a build at once, so
/// popular and personal lists fill within seconds, with no restart, no
/// admin rebuild and no wait for the hourly timer.
#[tokio::test]
async fn a_seeded_shop_is_recommended_within_seconds_without_a_restart() {
    let app = TestApp::spawn_with(|s| s.recommendations.follow_interval_ms = 200).await;
    let (_, admin) = app.admin().await;
    assert_eq!(
        get(&app, RECS, None).await["results"],
        json!([]),
        "an empty shop recommends nothing"
    );
    let size = SeedSize {
        products: 200,
        customers: 40,
        orders_per_customer: 4,
    };
    seed_demo(&app.settings, size, 5).await.expect("seeded");
    ships_free(&app).await;
    let token = demo_customer(&app, 1).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let popular = get(&app, RECS, None).await;
        let personal = get(&app, RECS, Some(&token)).await;
        let filled = |v: &Value| v["results"].as_array().is_some_and(|r| !r.is_empty());
        if filled(&popular) && filled(&personal) && personal["strategy"] == "personal" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not picked up: {popular} / {personal}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let report = get(&app, REPORT, Some(&admin)).await;
    assert!(report["builds"].as_u64() >= Some(2), "{report}");
}

/// Removes the demo shop's shipping methods: these tests place plain
/// orders (no method), as a shop that ships at no charge takes them.
async fn ships_free(app: &TestApp) {
    let pool = app.database_pool(emporium::config::Domain::Orders).await;
    sqlx::query("DELETE FROM shipping_zones")
        .execute(&pool)
        .await
        .expect("demo shipping removed");
}
