//! Stock locations, per-location stock, allocation across locations and
//! the movement ledger, checked against the levels after every scenario.

use emporium::actors::orders::messages::MarkOrderPaid;
use futures_util::future::join_all;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::JsonBody as _;
use crate::helpers::{assert_problem, assert_stock_ledger_adds_up, error_fields, str_of, TestApp};
use crate::orders::{order_body, ORDERS};

pub const LOCATIONS: &str = "/api/v1/stock-locations/";
pub const MOVEMENTS: &str = "/api/v1/stock-movements/";
/// The location the migration creates and existing stock lives in.
pub const MAIN: &str = "00000000-0000-4000-8000-000000000001";

fn stock_path(product: &Value) -> String {
    let id = str_of(&product["id"]);
    // A product without options: its one variant has the product's id.
    format!("/api/v1/products/{id}/variants/{id}/stock/")
}

pub async fn location(app: &TestApp, admin: &str, body: Value) -> Value {
    let r = app.post(LOCATIONS, Some(admin), &body).await;
    assert_eq!(r.status(), 201, "creating location {body}");
    r.body_json().await
}

pub async fn set_stock(app: &TestApp, admin: &str, product: &Value, levels: Value) -> Value {
    let r = app
        .put(
            &stock_path(product),
            Some(admin),
            &json!({ "levels": levels }),
        )
        .await;
    assert_eq!(r.status(), 200, "setting stock {levels}");
    r.body_json().await
}

/// `(on_hand, held)` per location id.
pub async fn levels(app: &TestApp, admin: &str, product: &Value) -> Vec<(String, i64, i64)> {
    let view: Value = app
        .get(&stock_path(product), Some(admin))
        .await
        .body_json()
        .await;
    view["levels"]
        .as_array()
        .expect("levels")
        .iter()
        .map(|l| {
            (
                str_of(&l["location_id"]),
                l["on_hand"].as_i64().expect("on_hand"),
                l["held"].as_i64().expect("held"),
            )
        })
        .collect()
}

pub fn level_at(levels: &[(String, i64, i64)], location: &str) -> (i64, i64) {
    levels
        .iter()
        .find(|l| l.0 == location)
        .map(|l| (l.1, l.2))
        .unwrap_or((0, 0))
}

/// `(kind, location, on_hand_delta, held_delta)` of an order's movements,
/// oldest first.
pub async fn movements_of(
    app: &TestApp,
    admin: &str,
    order: &Value,
) -> Vec<(String, String, i64, i64)> {
    let page: Value = app
        .get(
            &format!("{MOVEMENTS}?reservation_id={}", str_of(&order["id"])),
            Some(admin),
        )
        .await
        .body_json()
        .await;
    let mut rows: Vec<(i64, String, String, i64, i64)> = page["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|m| {
            (
                m["id"].as_i64().expect("id"),
                str_of(&m["kind"]),
                str_of(&m["location_id"]),
                m["on_hand_delta"].as_i64().expect("delta"),
                m["held_delta"].as_i64().expect("delta"),
            )
        })
        .collect();
    rows.sort();
    rows.into_iter()
        .map(|(_, k, l, a, b)| (k, l, a, b))
        .collect()
}

async fn order(app: &TestApp, token: &str, product: &Value, quantity: i64) -> reqwest::Response {
    app.post(
        ORDERS,
        Some(token),
        &order_body(json!([{"product_id": product["id"], "quantity": quantity}])),
    )
    .await
}

#[tokio::test]
async fn admins_keep_locations_and_bad_writes_are_refused_clearly() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let (_, customer, _) = app.customer("ann@example.com").await;
    let listed: Value = app.get(LOCATIONS, Some(&admin)).await.body_json().await;
    assert_eq!(listed[0]["id"], MAIN, "the migration's location is there");
    // Stocked while MAIN is the only location: its history.
    app.product(&admin, json!({"stock": 3})).await;

    let eu = location(
        &app,
        &admin,
        json!({"name": " EU warehouse ", "country": "de", "priority": 10}),
    )
    .await;
    assert_eq!(
        (
            &eu["name"],
            &eu["country"],
            &eu["priority"],
            &eu["is_active"]
        ),
        (
            &json!("EU warehouse"),
            &json!("DE"),
            &json!(10),
            &json!(true)
        )
    );
    let listed: Value = app.get(LOCATIONS, Some(&admin)).await.body_json().await;
    assert_eq!(listed[0]["id"], eu["id"], "highest priority first");

    let r = app
        .post(
            LOCATIONS,
            Some(&admin),
            &json!({"name": "EU warehouse", "country": "FR"}),
        )
        .await;
    assert_problem(r, 409, "name_taken").await;
    let r = app
        .post(
            LOCATIONS,
            Some(&admin),
            &json!({"name": " ", "country": "XX", "priority": 5000}),
        )
        .await;
    let problem = assert_problem(r, 422, "validation_error").await;
    let mut fields = error_fields(&problem);
    fields.sort();
    assert_eq!(fields, ["country", "name", "priority"]);
    let r = app
        .post(LOCATIONS, Some(&admin), &json!({"country": "FR"}))
        .await;
    assert_eq!(r.status(), 422, "missing name");
    let r = app
        .post(
            LOCATIONS,
            Some(&admin),
            &json!({"name": "X", "country": "FR", "priority": "high"}),
        )
        .await;
    assert_eq!(r.status(), 422, "wrong type");
    let huge = "x".repeat(3_000_000);
    let r = app
        .post(
            LOCATIONS,
            Some(&admin),
            &json!({"name": huge, "country": "FR"}),
        )
        .await;
    assert!(r.status() == 413 || r.status() == 422, "{}", r.status());
    for (token, status) in [
        (Some(customer.as_str()), 403),
        (None, 401),
        (Some("junk"), 401),
    ] {
        let r = app.get(LOCATIONS, token).await;
        assert_eq!(r.status(), status);
        let r = app
            .post(LOCATIONS, token, &json!({"name": "Mine", "country": "FR"}))
            .await;
        assert_eq!(r.status(), status);
    }
    let path = format!("{LOCATIONS}{}/", Uuid::new_v4());
    assert_problem(app.get(&path, Some(&admin)).await, 404, "not_found").await;
    let r = app
        .put(&path, Some(&admin), &json!({"name": "Y", "country": "FR"}))
        .await;
    assert_problem(r, 404, "not_found").await;
    assert_problem(app.delete(&path, Some(&admin)).await, 404, "not_found").await;
    let r = app
        .get(&format!("{LOCATIONS}not-a-uuid/"), Some(&admin))
        .await;
    assert_eq!(r.status(), 404);

    // A location that never held stock goes; one with history stays.
    let empty = location(&app, &admin, json!({"name": "Spare", "country": "FR"})).await;
    let r = app
        .delete(
            &format!("{LOCATIONS}{}/", str_of(&empty["id"])),
            Some(&admin),
        )
        .await;
    assert_eq!(r.status(), 204);
    let r = app
        .delete(&format!("{LOCATIONS}{MAIN}/"), Some(&admin))
        .await;
    assert_problem(r, 409, "location_in_use").await;
    let r = app
        .put(
            &format!("{LOCATIONS}{}/", str_of(&eu["id"])),
            Some(&admin),
            &json!({"name": "Berlin", "country": "DE", "priority": 3, "is_active": false}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let eu: Value = r.body_json().await;
    assert_eq!(
        (&eu["name"], &eu["is_active"]),
        (&json!("Berlin"), &json!(false))
    );
    assert_stock_ledger_adds_up(&app).await;
}

#[tokio::test]
async fn stock_is_set_per_location_and_refused_below_what_is_held() {
    let app = TestApp::spawn().await;
    let (admin_id, admin) = app.admin().await;
    let (_, customer, _) = app.customer("ann@example.com").await;
    let eu = location(
        &app,
        &admin,
        json!({"name": "EU", "country": "DE", "priority": 10}),
    )
    .await;
    let eu_id = str_of(&eu["id"]);
    // Opening stock goes to the highest-priority active location.
    let p = app.product(&admin, json!({"stock": 4})).await;
    assert_eq!(level_at(&levels(&app, &admin, &p).await, &eu_id), (4, 0));

    let view = set_stock(
        &app,
        &admin,
        &p,
        json!([{"location_id": MAIN, "on_hand": 6}, {"location_id": eu_id, "on_hand": 1}]),
    )
    .await;
    assert_eq!(view["available"], 7);
    assert_eq!(app.stock_of(&admin, &p).await, 7);
    let page: Value = app
        .get(
            &format!(
                "{MOVEMENTS}?variant_id={}&kind=adjustment",
                str_of(&p["id"])
            ),
            Some(&admin),
        )
        .await
        .body_json()
        .await;
    assert_eq!(page["count"], 3, "opening, then one per change: {page}");
    let newest = &page["results"][0];
    assert_eq!(newest["admin_id"], json!(admin_id));

    // An order holds 5 at MAIN (EU has 1, MAIN covers the whole line).
    let placed = order(&app, &customer, &p, 5).await;
    assert_eq!(placed.status(), 201);
    assert_eq!(level_at(&levels(&app, &admin, &p).await, MAIN), (6, 5));
    let r = app
        .put(
            &stock_path(&p),
            Some(&admin),
            &json!({"levels": [{"location_id": MAIN, "on_hand": 4}]}),
        )
        .await;
    assert_problem(r, 409, "stock_below_held").await;
    // Through the product's `stock` too: 2 are available, and 0 would take
    // the 2 from the home location (EU, the first active), which has 1.
    let r = app
        .patch(
            &format!("/api/v1/products/{}/", str_of(&p["id"])),
            Some(&admin),
            &json!({"stock": 0}),
        )
        .await;
    assert_problem(r, 409, "stock_below_held").await;
    let r = app
        .patch(
            &format!("/api/v1/products/{}/", str_of(&p["id"])),
            Some(&admin),
            &json!({"stock": 9}),
        )
        .await;
    assert_eq!(r.status(), 200, "adding at the home location");
    assert_eq!(level_at(&levels(&app, &admin, &p).await, &eu_id), (8, 0));
    assert_eq!(app.stock_of(&admin, &p).await, 9);

    // Unhappy bodies change nothing.
    let path = stock_path(&p);
    for (body, field) in [
        (json!({"levels": []}), "levels"),
        (
            json!({"levels": [{"location_id": MAIN, "on_hand": 1}, {"location_id": MAIN, "on_hand": 2}]}),
            "levels.1.location_id",
        ),
        (
            json!({"levels": [{"location_id": MAIN, "on_hand": -1}]}),
            "levels.0.on_hand",
        ),
        (
            json!({"levels": [{"location_id": Uuid::new_v4(), "on_hand": 1}]}),
            "levels",
        ),
    ] {
        let problem = assert_problem(
            app.put(&path, Some(&admin), &body).await,
            422,
            "validation_error",
        )
        .await;
        assert_eq!(error_fields(&problem), [field], "{body}");
    }
    for body in [
        json!({}),
        json!({"levels": [{"location_id": "x", "on_hand": 1}]}),
        json!({"levels": "all"}),
    ] {
        assert_eq!(
            app.put(&path, Some(&admin), &body).await.status(),
            422,
            "{body}"
        );
    }
    let r = app
        .put(
            &path,
            Some(&customer),
            &json!({"levels": [{"location_id": MAIN, "on_hand": 1}]}),
        )
        .await;
    assert_eq!(r.status(), 403);
    assert_eq!(app.get(&path, Some(&customer)).await.status(), 403);
    assert_eq!(app.get(&path, None).await.status(), 401);
    let other = app.product(&admin, json!({})).await;
    let crossed = format!(
        "/api/v1/products/{}/variants/{}/stock/",
        str_of(&other["id"]),
        str_of(&p["id"])
    );
    assert_problem(app.get(&crossed, Some(&admin)).await, 404, "not_found").await;
    let r = app
        .put(
            &crossed,
            Some(&admin),
            &json!({"levels": [{"location_id": MAIN, "on_hand": 1}]}),
        )
        .await;
    assert_problem(r, 404, "not_found").await;
    let r = app
        .get(
            &format!("{MOVEMENTS}?variant_id=nope&kind=theft"),
            Some(&admin),
        )
        .await;
    let problem = assert_problem(r, 400, "invalid_query").await;
    let mut fields = error_fields(&problem);
    fields.sort();
    assert_eq!(fields, ["kind", "variant_id"]);
    assert_eq!(app.get(MOVEMENTS, Some(&customer)).await.status(), 403);
    assert_eq!(app.stock_of(&admin, &p).await, 9);
    assert_stock_ledger_adds_up(&app).await;
}

#[tokio::test]
async fn lines_come_from_one_location_when_one_can_cover_them_and_go_back_where_they_came_from() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let (_, customer, _) = app.customer("ann@example.com").await;
    let p = app.product(&admin, json!({"stock": 0})).await;
    let eu = location(
        &app,
        &admin,
        json!({"name": "EU", "country": "DE", "priority": 10}),
    )
    .await;
    let eu_id = str_of(&eu["id"]);
    set_stock(
        &app,
        &admin,
        &p,
        json!([{"location_id": eu_id, "on_hand": 5}, {"location_id": MAIN, "on_hand": 4}]),
    )
    .await;

    // 3: EU, the first choice, has them all.
    let first: Value = order(&app, &customer, &p, 3).await.body_json().await;
    assert_eq!(
        movements_of(&app, &admin, &first).await,
        [(String::from("reservation"), eu_id.clone(), 0, 3)]
    );
    // 4: EU has 2 left, MAIN has all 4: one parcel from MAIN beats a split.
    let second: Value = order(&app, &customer, &p, 4).await.body_json().await;
    assert_eq!(
        movements_of(&app, &admin, &second).await,
        [(String::from("reservation"), MAIN.to_owned(), 0, 4)]
    );
    // 3 more than the 2 left: refused, nothing held.
    let r = order(&app, &customer, &p, 3).await;
    assert_problem(r, 409, "insufficient_stock").await;
    // Cancelling the second returns its 4 to MAIN, not to EU.
    let cancel = format!("{ORDERS}{}/cancel/", str_of(&second["id"]));
    assert_eq!(
        app.post(&cancel, Some(&customer), &json!({}))
            .await
            .status(),
        200
    );
    let now = levels(&app, &admin, &p).await;
    assert_eq!(
        (level_at(&now, &eu_id), level_at(&now, MAIN)),
        ((5, 3), (4, 0))
    );
    assert_eq!(
        movements_of(&app, &admin, &second).await,
        [
            (String::from("reservation"), MAIN.to_owned(), 0, 4),
            (String::from("release"), MAIN.to_owned(), 0, -4)
        ]
    );
    // 5: EU has 2, MAIN 4; neither covers it, so EU's 2 then 3 of MAIN's.
    let split: Value = order(&app, &customer, &p, 5).await.body_json().await;
    let mut taken = movements_of(&app, &admin, &split).await;
    taken.sort();
    let mut expected = vec![
        ("reservation".to_owned(), eu_id.clone(), 0, 2),
        ("reservation".to_owned(), MAIN.to_owned(), 0, 3),
    ];
    expected.sort();
    assert_eq!(taken, expected);
    // Paying commits the reservation: the units stay held where they are.
    app.actors
        .orders
        .call(MarkOrderPaid {
            order_id: str_of(&split["id"]).parse().expect("uuid"),
            payment_id: "pay_1".into(),
        })
        .await
        .expect("paid");
    let now = levels(&app, &admin, &p).await;
    assert_eq!(
        (level_at(&now, &eu_id), level_at(&now, MAIN)),
        ((5, 5), (4, 3))
    );
    // Shipping the whole order sends one parcel from each location, and
    // each sells its units from where they were held.
    let ship = format!("{ORDERS}{}/ship/", str_of(&split["id"]));
    let shipped: Value = app
        .post(&ship, Some(&admin), &json!({}))
        .await
        .body_json()
        .await;
    assert_eq!(shipped["status"], "fulfilled", "{shipped}");
    let mut parcels: Vec<(String, i64)> = shipped["fulfilments"]
        .as_array()
        .expect("parcels")
        .iter()
        .map(|f| {
            (
                str_of(&f["location_id"]),
                f["lines"][0]["quantity"].as_i64().expect("units"),
            )
        })
        .collect();
    parcels.sort();
    let mut expected_parcels = vec![(eu_id.clone(), 2), (MAIN.to_owned(), 3)];
    expected_parcels.sort();
    assert_eq!(parcels, expected_parcels);
    let now = levels(&app, &admin, &p).await;
    assert_eq!(
        (level_at(&now, &eu_id), level_at(&now, MAIN)),
        ((3, 3), (1, 0))
    );
    let sold: Vec<_> = movements_of(&app, &admin, &split)
        .await
        .into_iter()
        .filter(|m| m.0 == "sale")
        .map(|m| (m.1, m.2, m.3))
        .collect();
    assert_eq!(sold.len(), 2);
    assert!(sold.contains(&(eu_id.clone(), -2, -2)) && sold.contains(&(MAIN.to_owned(), -3, -3)));
    // Deactivating EU takes its free units out of what is available; the
    // first order's units stay held there.
    assert_eq!(app.stock_of(&admin, &p).await, 1);
    let r = app
        .put(
            &format!("{LOCATIONS}{eu_id}/"),
            Some(&admin),
            &json!({"name": "EU", "country": "DE", "priority": 10, "is_active": false}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(app.stock_of(&admin, &p).await, 1);
    let cancel = format!("{ORDERS}{}/cancel/", str_of(&first["id"]));
    assert_eq!(
        app.post(&cancel, Some(&customer), &json!({}))
            .await
            .status(),
        200
    );
    assert_eq!(level_at(&levels(&app, &admin, &p).await, &eu_id), (3, 0));
    assert_eq!(
        app.stock_of(&admin, &p).await,
        1,
        "inactive stock is not available"
    );
    assert_stock_ledger_adds_up(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_checkouts_across_two_locations_keep_the_ledger_exact() {
    let app = TestApp::spawn_with(|s| {
        s.rate_limit.register_per_client = 100;
        s.rate_limit.login_per_client = 100;
    })
    .await;
    let (_, admin) = app.admin().await;
    let eu = location(
        &app,
        &admin,
        json!({"name": "EU", "country": "DE", "priority": 10}),
    )
    .await;
    let eu_id = str_of(&eu["id"]);
    let p = app.product(&admin, json!({"stock": 0})).await;
    // 30 units, 2 per order: 15 orders. EU serves 8 whole lines and MAIN 6,
    // leaving one unit at each, which the last order takes as a split.
    set_stock(
        &app,
        &admin,
        &p,
        json!([{"location_id": eu_id, "on_hand": 17}, {"location_id": MAIN, "on_hand": 13}]),
    )
    .await;
    let mut tokens = Vec::new();
    for n in 0..50 {
        tokens.push(app.customer(&format!("buyer{n}@example.com")).await.1);
    }
    let attempts = tokens.iter().map(|t| order(&app, t, &p, 2));
    let statuses: Vec<u16> = join_all(attempts)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        15,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        35,
        "{statuses:?}"
    );
    let now = levels(&app, &admin, &p).await;
    assert_eq!(level_at(&now, &eu_id), (17, 17));
    assert_eq!(level_at(&now, MAIN), (13, 13));
    assert_eq!(app.stock_of(&admin, &p).await, 0);
    crate::helpers::assert_reservations_match_orders(&app).await;
    assert_eq!(assert_stock_ledger_adds_up(&app).await, 2);
}
