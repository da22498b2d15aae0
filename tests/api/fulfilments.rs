//! Fulfilments: parcels with tracking, the order's status following them,
//! stock sold from the location a parcel leaves, and never more fulfilled
//! than ordered, also under concurrency. Every scenario ends with the
//! conservation and ledger checks.

use emporium::actors::orders::messages::MarkOrderPaid;
use futures_util::future::join_all;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::JsonBody as _;
use crate::helpers::{
    assert_orders_conserved, assert_problem, assert_reservations_match_orders,
    assert_stock_ledger_adds_up, error_fields, str_of, TestApp,
};
use crate::orders::{place, ORDERS};
use crate::stock_locations::{level_at, levels, location, movements_of, set_stock, MAIN};

fn parcels_path(order: &Value) -> String {
    format!("{ORDERS}{}/fulfilments/", str_of(&order["id"]))
}

fn parcel_path(order: &Value, parcel: &Value, action: &str) -> String {
    let base = format!("{}{}/", parcels_path(order), str_of(&parcel["id"]));
    if action.is_empty() {
        base
    } else {
        format!("{base}{action}/")
    }
}

async fn pay(app: &TestApp, order: &Value) {
    app.actors
        .orders
        .call(MarkOrderPaid {
            order_id: str_of(&order["id"]).parse().expect("uuid"),
            payment_id: format!("pay_{}", str_of(&order["id"])),
        })
        .await
        .expect("paid");
}

async fn create(app: &TestApp, admin: &str, order: &Value, body: Value) -> Value {
    let r = app.post(&parcels_path(order), Some(admin), &body).await;
    assert_eq!(r.status(), 201, "creating a parcel {body}");
    r.body_json().await
}

async fn act(app: &TestApp, admin: &str, order: &Value, parcel: &Value, action: &str) -> Value {
    let r = app
        .post(&parcel_path(order, parcel, action), Some(admin), &json!({}))
        .await;
    assert_eq!(r.status(), 200, "{action} a parcel");
    r.body_json().await
}

async fn order_of(app: &TestApp, token: &str, order: &Value) -> Value {
    app.get(&format!("{ORDERS}{}/", str_of(&order["id"])), Some(token))
        .await
        .body_json()
        .await
}

fn line_id(order: &Value, product: &Value) -> String {
    order["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["product_id"] == product["id"])
        .map(|i| str_of(&i["id"]))
        .expect("a line of the product")
}

#[tokio::test]
async fn an_order_ships_in_parcels_with_tracking_and_its_status_follows_them() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let (_, token, _) = app.customer("ann@example.com").await;
    let kettle = app.product(&admin, json!({"stock": 5})).await;
    let mug = app.product(&admin, json!({"stock": 5})).await;
    let order = place(
        &app,
        &token,
        json!([{"product_id": kettle["id"], "quantity": 3}, {"product_id": mug["id"], "quantity": 2}]),
    )
    .await;
    for item in order["items"].as_array().expect("items") {
        assert!(Uuid::parse_str(&str_of(&item["id"])).is_ok(), "{item}");
        assert_eq!(item["fulfilled_quantity"], 0);
    }
    // Unpaid: nothing ships.
    let r = app
        .post(
            &parcels_path(&order),
            Some(&admin),
            &json!({"lines": [{"variant_id": kettle["id"], "quantity": 1}]}),
        )
        .await;
    assert_problem(r, 409, "invalid_transition").await;
    pay(&app, &order).await;
    // Paying holds the units until they ship.
    assert_eq!(level_at(&levels(&app, &admin, &kettle).await, MAIN), (5, 3));

    let first = create(
        &app,
        &admin,
        &order,
        json!({"lines": [{"variant_id": kettle["id"], "quantity": 2}], "carrier": " DHL ", "tracking_number": "JD0001"}),
    )
    .await;
    assert_eq!(first["status"], "pending");
    assert_eq!(first["location_id"], MAIN);
    assert_eq!(first["carrier"], "DHL");
    assert_eq!(
        first["lines"][0]["line_id"],
        line_id(&order, &kettle).as_str()
    );
    let seen = order_of(&app, &token, &order).await;
    assert_eq!(seen["status"], "paid", "a pending parcel ships nothing");
    assert_eq!(seen["fulfilments"][0]["tracking_number"], "JD0001");
    assert_eq!(seen["items"][0]["fulfilled_quantity"], 2);
    assert_eq!(seen["items"][0]["shipped_quantity"], 0);

    let shipped = act(&app, &admin, &order, &first, "ship").await;
    assert_eq!(shipped["status"], "shipped");
    assert!(shipped["shipped_at"].is_string());
    let seen = order_of(&app, &token, &order).await;
    assert_eq!(seen["status"], "partially_fulfilled");
    assert_eq!(seen["items"][0]["shipped_quantity"], 2);
    // The parcel's units left the shelf they were held on.
    assert_eq!(level_at(&levels(&app, &admin, &kettle).await, MAIN), (3, 1));
    let moved = movements_of(&app, &admin, &order).await;
    assert!(
        moved.contains(&("sale".to_owned(), MAIN.to_owned(), -2, -2)),
        "{moved:?}"
    );
    assert_eq!(
        app.stock_of(&admin, &kettle).await,
        2,
        "available is unchanged"
    );

    // Tracking added later; a null clears a field.
    let r = app
        .patch(
            &parcel_path(&order, &first, ""),
            Some(&admin),
            &json!({"tracking_url": "https://track.example/JD0001", "carrier": null}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let patched: Value = r.body_json().await;
    assert_eq!(patched["tracking_url"], "https://track.example/JD0001");
    assert_eq!(patched["carrier"], Value::Null);
    assert_eq!(patched["tracking_number"], "JD0001");

    // Two kettles left of three are one too many.
    let r = app
        .post(
            &parcels_path(&order),
            Some(&admin),
            &json!({"lines": [{"line_id": line_id(&order, &kettle), "quantity": 1}, {"variant_id": kettle["id"], "quantity": 1}]}),
        )
        .await;
    assert_problem(r, 409, "over_fulfilment").await;

    // A parcel cancelled before it ships gives its units back to the lines.
    let rest = json!({"lines": [{"variant_id": kettle["id"], "quantity": 1}, {"variant_id": mug["id"], "quantity": 2}]});
    let dropped = create(&app, &admin, &order, rest.clone()).await;
    assert_eq!(
        act(&app, &admin, &order, &dropped, "cancel").await["status"],
        "cancelled"
    );
    let r = app
        .post(
            &parcel_path(&order, &dropped, "ship"),
            Some(&admin),
            &json!({}),
        )
        .await;
    assert_problem(r, 409, "invalid_transition").await;
    let r = app
        .patch(
            &parcel_path(&order, &dropped, ""),
            Some(&admin),
            &json!({"carrier": "UPS"}),
        )
        .await;
    assert_problem(r, 409, "invalid_transition").await;
    let last = create(&app, &admin, &order, rest).await;
    // Delivering before shipping is refused.
    let r = app
        .post(
            &parcel_path(&order, &last, "deliver"),
            Some(&admin),
            &json!({}),
        )
        .await;
    assert_problem(r, 409, "invalid_transition").await;
    act(&app, &admin, &order, &last, "ship").await;
    assert_eq!(order_of(&app, &token, &order).await["status"], "fulfilled");
    // Nothing is left to put in a parcel.
    let r = app
        .post(
            &parcels_path(&order),
            Some(&admin),
            &json!({"lines": [{"variant_id": mug["id"], "quantity": 1}]}),
        )
        .await;
    assert_problem(r, 409, "invalid_transition").await;

    act(&app, &admin, &order, &first, "deliver").await;
    assert_eq!(order_of(&app, &token, &order).await["status"], "fulfilled");
    act(&app, &admin, &order, &last, "deliver").await;
    let done = order_of(&app, &token, &order).await;
    assert_eq!(done["status"], "delivered");
    let statuses: Vec<String> = done["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|h| str_of(&h["to"]))
        .collect();
    assert_eq!(
        statuses,
        [
            "pending",
            "paid",
            "partially_fulfilled",
            "fulfilled",
            "delivered"
        ]
    );
    // The customer reads the parcels, newest last, cancelled one included.
    let listed: Value = app
        .get(&parcels_path(&order), Some(&token))
        .await
        .body_json()
        .await;
    let states: Vec<String> = listed
        .as_array()
        .expect("list")
        .iter()
        .map(|f| str_of(&f["status"]))
        .collect();
    assert_eq!(states, ["delivered", "cancelled", "delivered"]);
    assert_eq!(level_at(&levels(&app, &admin, &kettle).await, MAIN), (2, 0));
    assert_eq!(level_at(&levels(&app, &admin, &mug).await, MAIN), (3, 0));

    assert_orders_conserved(&app).await;
    assert_stock_ledger_adds_up(&app).await;
    assert_reservations_match_orders(&app).await;
}

#[tokio::test]
async fn a_parcel_leaves_from_a_location_that_holds_its_units() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let (_, token, _) = app.customer("ann@example.com").await;
    let p = app.product(&admin, json!({"stock": 0})).await;
    let eu = location(
        &app,
        &admin,
        json!({"name": "EU", "country": "DE", "priority": 10}),
    )
    .await;
    let eu_id = str_of(&eu["id"]);
    let empty = location(&app, &admin, json!({"name": "Empty", "country": "FR"})).await;
    set_stock(
        &app,
        &admin,
        &p,
        json!([{"location_id": eu_id, "on_hand": 2}, {"location_id": MAIN, "on_hand": 2}]),
    )
    .await;
    // 3 units: 2 held at EU, 1 at MAIN.
    let order = place(
        &app,
        &token,
        json!([{"product_id": p["id"], "quantity": 3}]),
    )
    .await;
    pay(&app, &order).await;
    let all = json!({"lines": [{"variant_id": p["id"], "quantity": 3}]});
    let r = app.post(&parcels_path(&order), Some(&admin), &all).await;
    assert_problem(r, 422, "location_required").await;
    let r = app
        .post(
            &parcels_path(&order),
            Some(&admin),
            &json!({"lines": [{"variant_id": p["id"], "quantity": 2}], "location_id": MAIN}),
        )
        .await;
    assert_problem(r, 409, "not_at_location").await;
    let r = app
        .post(
            &parcels_path(&order),
            Some(&admin),
            &json!({"lines": [{"variant_id": p["id"], "quantity": 1}], "location_id": empty["id"]}),
        )
        .await;
    assert_problem(r, 409, "not_at_location").await;
    // Without a location: the first (by priority) holding the units.
    let from_eu = create(
        &app,
        &admin,
        &order,
        json!({"lines": [{"variant_id": p["id"], "quantity": 2}]}),
    )
    .await;
    assert_eq!(str_of(&from_eu["location_id"]), eu_id);
    // EU's units are taken by that parcel: one more must come from MAIN.
    let r = app
        .post(
            &parcels_path(&order),
            Some(&admin),
            &json!({"lines": [{"variant_id": p["id"], "quantity": 1}], "location_id": eu_id}),
        )
        .await;
    assert_problem(r, 409, "not_at_location").await;
    let from_main = create(
        &app,
        &admin,
        &order,
        json!({"lines": [{"variant_id": p["id"], "quantity": 1}]}),
    )
    .await;
    assert_eq!(from_main["location_id"], MAIN);
    act(&app, &admin, &order, &from_main, "ship").await;
    act(&app, &admin, &order, &from_eu, "ship").await;
    let now = levels(&app, &admin, &p).await;
    assert_eq!(
        (level_at(&now, &eu_id), level_at(&now, MAIN)),
        ((0, 0), (1, 0))
    );
    assert_orders_conserved(&app).await;
    assert_stock_ledger_adds_up(&app).await;
}

#[tokio::test]
async fn bad_fulfilment_requests_are_refused_clearly_and_write_nothing() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let (_, token, _) = app.customer("ann@example.com").await;
    let (_, other, _) = app.customer("bob@example.com").await;
    let p = app.product(&admin, json!({"stock": 5})).await;
    let order = place(
        &app,
        &token,
        json!([{"product_id": p["id"], "quantity": 2}]),
    )
    .await;
    pay(&app, &order).await;
    let path = parcels_path(&order);
    let one = json!({"lines": [{"variant_id": p["id"], "quantity": 1}]});

    // Who: no token, a bad token, a customer, another customer.
    assert_problem(app.post(&path, None, &one).await, 401, "not_authenticated").await;
    assert_eq!(
        app.post(&path, Some("not-a-token"), &one).await.status(),
        401
    );
    assert_problem(
        app.post(&path, Some(&token), &one).await,
        403,
        "permission_denied",
    )
    .await;
    assert_problem(app.get(&path, Some(&other)).await, 404, "not_found").await;
    assert_eq!(app.get(&path, None).await.status(), 401);
    // What: unknown and malformed orders.
    let unknown = format!("{ORDERS}{}/fulfilments/", Uuid::new_v4());
    assert_problem(
        app.post(&unknown, Some(&admin), &one).await,
        404,
        "not_found",
    )
    .await;
    assert_problem(app.get(&unknown, Some(&admin)).await, 404, "not_found").await;
    let malformed = format!("{ORDERS}nope/fulfilments/");
    assert_problem(
        app.post(&malformed, Some(&admin), &one).await,
        404,
        "not_found",
    )
    .await;

    // Bodies, field by field.
    let other_variant = Uuid::new_v4();
    let cases = [
        (json!({}), vec!["lines"]),
        (json!({"lines": []}), vec!["lines"]),
        (json!({"lines": [{"quantity": 1}]}), vec!["lines.0"]),
        (
            json!({"lines": [{"line_id": line_id(&order, &p), "variant_id": p["id"], "quantity": 1}]}),
            vec!["lines.0"],
        ),
        (
            json!({"lines": [{"variant_id": p["id"], "quantity": 0}]}),
            vec!["lines.0.quantity"],
        ),
        (
            json!({"lines": [{"variant_id": p["id"], "quantity": 10_001}]}),
            vec!["lines.0.quantity"],
        ),
        (
            json!({"lines": [{"variant_id": p["id"], "quantity": "two"}]}),
            vec!["lines.0.quantity"],
        ),
        (
            json!({"lines": [{"variant_id": "nope", "quantity": 1}]}),
            vec!["lines.0.variant_id"],
        ),
        (
            json!({"lines": [{"variant_id": other_variant, "quantity": 1}]}),
            vec!["lines.0.variant_id"],
        ),
        (
            json!({"lines": [{"line_id": Uuid::new_v4(), "quantity": 1}]}),
            vec!["lines.0.line_id"],
        ),
        (
            json!({"lines": [{"variant_id": p["id"], "quantity": 1}], "tracking_url": "ftp://x.example/1"}),
            vec!["tracking_url"],
        ),
        (
            json!({"lines": [{"variant_id": p["id"], "quantity": 1}], "carrier": "x".repeat(101)}),
            vec!["carrier"],
        ),
        (
            json!({"lines": [{"variant_id": p["id"], "quantity": 1}], "colour": "red"}),
            vec!["colour"],
        ),
    ];
    for (body, fields) in cases {
        let r = app.post(&path, Some(&admin), &body).await;
        assert_eq!(r.status(), 422, "{body}");
        let problem: Value = r.body_json().await;
        assert_eq!(error_fields(&problem), fields, "{body}: {problem}");
    }
    let r = app
        .post(
            &path,
            Some(&admin),
            &json!({"lines": [{"variant_id": p["id"], "quantity": 3}]}),
        )
        .await;
    assert_problem(r, 409, "over_fulfilment").await;
    let unknown_location =
        json!({"lines": [{"variant_id": p["id"], "quantity": 1}], "location_id": Uuid::new_v4()});
    let r = app.post(&path, Some(&admin), &unknown_location).await;
    assert_problem(r, 409, "not_at_location").await;
    let huge = json!({"lines": [{"variant_id": p["id"], "quantity": 1}], "carrier": "x".repeat(3_000_000)});
    assert_eq!(app.post(&path, Some(&admin), &huge).await.status(), 413);
    let r = app
        .request(reqwest::Method::POST, &path, Some(&admin))
        .header("content-type", "text/plain")
        .body("lines")
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 415);
    let listed: Value = app.get(&path, Some(&admin)).await.body_json().await;
    assert_eq!(listed, json!([]), "nothing was written");

    // Parcel routes: unknown parcels, another order's parcel, customers.
    let parcel = create(&app, &admin, &order, one.clone()).await;
    let ghost = json!({"id": Uuid::new_v4()});
    for action in ["ship", "deliver", "cancel"] {
        let r = app
            .post(
                &parcel_path(&order, &ghost, action),
                Some(&admin),
                &json!({}),
            )
            .await;
        assert_problem(r, 404, "not_found").await;
        let r = app
            .post(
                &parcel_path(&order, &parcel, action),
                Some(&token),
                &json!({}),
            )
            .await;
        assert_problem(r, 403, "permission_denied").await;
        let r = app
            .post(
                &parcel_path(&order, &parcel, action),
                Some(&admin),
                &json!({"why": 1}),
            )
            .await;
        assert_eq!(r.status(), 422, "{action} takes no fields");
    }
    let second = place(
        &app,
        &token,
        json!([{"product_id": p["id"], "quantity": 1}]),
    )
    .await;
    let r = app
        .post(
            &parcel_path(&second, &parcel, "ship"),
            Some(&admin),
            &json!({}),
        )
        .await;
    assert_problem(r, 404, "not_found").await;
    let r = app
        .patch(
            &parcel_path(&order, &parcel, ""),
            Some(&admin),
            &json!({"tracking_url": "not a url"}),
        )
        .await;
    assert_eq!(r.status(), 422);
    let r = app
        .patch(
            &parcel_path(&order, &parcel, ""),
            Some(&token),
            &json!({"carrier": "DHL"}),
        )
        .await;
    assert_problem(r, 403, "permission_denied").await;
    let listed: Value = app.get(&path, Some(&admin)).await.body_json().await;
    assert_eq!(listed.as_array().expect("list").len(), 1);
    assert_eq!(listed[0]["status"], "pending");
    assert_eq!(listed[0]["carrier"], Value::Null);
    assert_orders_conserved(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_parcels_never_fulfil_or_ship_more_than_was_ordered() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let (_, token, _) = app.customer("ann@example.com").await;
    let p = app.product(&admin, json!({"stock": 20})).await;
    let order = place(
        &app,
        &token,
        json!([{"product_id": p["id"], "quantity": 5}]),
    )
    .await;
    pay(&app, &order).await;
    let path = parcels_path(&order);
    let one = json!({"lines": [{"variant_id": p["id"], "quantity": 1}]});
    let answers = join_all((0..12).map(|_| app.post(&path, Some(&admin), &one))).await;
    let mut created = Vec::new();
    let mut refused = 0;
    for r in answers {
        match r.status().as_u16() {
            201 => created.push(r.body_json().await),
            409 => {
                let problem: Value = r.body_json().await;
                assert_eq!(problem["code"], "over_fulfilment");
                refused += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((created.len(), refused), (5, 7));
    // Every parcel shipped twice at once, and the whole order beside them:
    // each parcel ships once, and its units are sold once.
    let ships = created.iter().flat_map(|parcel| {
        let url = parcel_path(&order, parcel, "ship");
        [url.clone(), url]
    });
    let whole = format!("{ORDERS}{}/ship/", str_of(&order["id"]));
    let nothing = json!({});
    let (parcels, whole) = tokio::join!(
        join_all(ships.map(|url| {
            let app = &app;
            let admin = admin.clone();
            async move {
                app.post(&url, Some(&admin), &json!({}))
                    .await
                    .status()
                    .as_u16()
            }
        })),
        app.post(&whole, Some(&admin), &nothing),
    );
    let ok = parcels.iter().filter(|s| **s == 200).count();
    let whole_ok = whole.status().as_u16() == 200;
    assert!(
        parcels.iter().all(|s| *s == 200 || *s == 409),
        "{parcels:?}"
    );
    // The shortcut ships whatever is pending when it runs; every parcel
    // ships exactly once between the two.
    assert!(
        ok <= 5 && (ok == 5 || whole_ok),
        "{parcels:?} {}",
        whole.status()
    );
    let seen = order_of(&app, &token, &order).await;
    assert_eq!(seen["status"], "fulfilled");
    assert_eq!(seen["items"][0]["shipped_quantity"], 5);
    let sold: i64 = movements_of(&app, &admin, &order)
        .await
        .iter()
        .filter(|m| m.0 == "sale")
        .map(|m| m.2)
        .sum();
    assert_eq!(sold, -5, "five units sold, once each");
    assert_eq!(level_at(&levels(&app, &admin, &p).await, MAIN), (15, 0));
    assert_orders_conserved(&app).await;
    assert_stock_ledger_adds_up(&app).await;
    assert_reservations_match_orders(&app).await;
}

#[tokio::test]
async fn a_parcel_shipped_while_the_catalog_is_away_is_sold_by_the_sweep_once() {
    let app = TestApp::spawn_with(|s| {
        s.orders.sweep_interval_secs = 1;
    })
    .await;
    let (_, admin) = app.admin().await;
    let (_, token, _) = app.customer("ann@example.com").await;
    let p = app.product(&admin, json!({"stock": 5})).await;
    let order = place(
        &app,
        &token,
        json!([{"product_id": p["id"], "quantity": 2}]),
    )
    .await;
    pay(&app, &order).await;
    let parcel = create(
        &app,
        &admin,
        &order,
        json!({"lines": [{"variant_id": p["id"], "quantity": 2}]}),
    )
    .await;
    // The parcel ships; its sale has not reached the catalog (as if the
    // message was lost): the orders database says so.
    act(&app, &admin, &order, &parcel, "ship").await;
    let orders = app.orders_pool().await;
    sqlx::query("UPDATE fulfilments SET stock_shipped_at = NULL, updated_at = now() - interval '1 hour' WHERE id = $1::uuid")
        .bind(str_of(&parcel["id"]))
        .execute(&orders)
        .await
        .expect("unconfirmed");
    // The sweep asks again; the catalog's claim by parcel id sells once.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let confirmed: bool = sqlx::query_scalar(
            "SELECT stock_shipped_at IS NOT NULL FROM fulfilments WHERE id = $1::uuid",
        )
        .bind(str_of(&parcel["id"]))
        .fetch_one(&orders)
        .await
        .expect("parcel");
        if confirmed {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never confirmed");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    orders.close().await;
    let sold: Vec<_> = movements_of(&app, &admin, &order)
        .await
        .into_iter()
        .filter(|m| m.0 == "sale")
        .collect();
    assert_eq!(sold.len(), 1, "sold once: {sold:?}");
    assert_orders_conserved(&app).await;
    assert_stock_ledger_adds_up(&app).await;
}
