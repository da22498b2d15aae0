//! Shipping zones, methods and tax rates: admins manage them, carts show
//! what they charge, and checkout, the order and its payment charge exactly
//! that, with totals the database holds to their rule.

use emporium::config::Domain;
use serde_json::{json, Value};

use crate::helpers::JsonBody as _;
use crate::helpers::{assert_problem, error_fields, str_of, TestApp};
use crate::payments::{pay, VISA};

const ZONES: &str = "/api/v1/shipping/zones/";
const METHODS: &str = "/api/v1/shipping/methods/";
const RATES: &str = "/api/v1/tax/rates/";
const CLASSES: &str = "/api/v1/tax/classes/";
const CART: &str = "/api/v1/cart/";
const ITEMS: &str = "/api/v1/cart/items/";
const CHOOSE: &str = "/api/v1/cart/shipping/";
const QUOTES: &str = "/api/v1/cart/shipping-methods/";
const CHECKOUT: &str = "/api/v1/cart/checkout/";

fn paris() -> Value {
    json!({"name": "Ann Lee", "line1": "1 Rue de Rivoli", "city": "Paris",
        "postal_code": "75001", "country": "FR"})
}

async fn created(app: &TestApp, admin: &str, path: &str, body: Value) -> Value {
    let r = app.post(path, Some(admin), &body).await;
    assert_eq!(r.status(), 201, "creating at {path}: {body}");
    r.body_json().await
}

/// The EU zone (France, Germany) with a flat method (4.90, free from
/// 100.00) and a weight method, and French rates: standard 20 %, reduced
/// 5.5 %.
pub async fn eu_shop(app: &TestApp, admin: &str) -> (Value, Value, Value) {
    let zone = created(
        app,
        admin,
        ZONES,
        json!({"name": "EU", "countries": ["fr", "DE"]}),
    )
    .await;
    let flat = created(
        app,
        admin,
        METHODS,
        json!({"zone_id": zone["id"], "name": "Colissimo",
        "carrier": "La Poste", "currency": "EUR", "rate": {"kind": "flat", "amount": 490},
        "free_over": 10000, "min_days": 2, "max_days": 4}),
    )
    .await;
    let heavy = created(
        app,
        admin,
        METHODS,
        json!({"zone_id": zone["id"], "name": "Freight",
        "currency": "EUR", "rate": {"kind": "weight", "bands": [
            {"up_to_grams": 5000, "amount": 1500}, {"up_to_grams": 1000, "amount": 800}]}}),
    )
    .await;
    for (class, bp) in [("standard", 2000), ("reduced", 550)] {
        created(
            app,
            admin,
            RATES,
            json!({"tax_class": class, "country": "FR", "rate_bp": bp}),
        )
        .await;
    }
    (zone, flat, heavy)
}

async fn add(app: &TestApp, token: &str, product: &Value, quantity: i64) {
    let body = json!({"product_id": product["id"], "quantity": quantity});
    let r = app.post(ITEMS, Some(token), &body).await;
    assert_eq!(r.status(), 200, "adding to the cart");
}

/// The fields a problem names, sorted.
fn fields(problem: &Value) -> Vec<String> {
    let mut out = error_fields(problem);
    out.sort();
    out
}

async fn order_count(app: &TestApp) -> i64 {
    let pool = app.database_pool(Domain::Orders).await;
    sqlx::query_scalar("SELECT count(*) FROM orders")
        .fetch_one(&pool)
        .await
        .expect("count")
}

#[tokio::test]
async fn admins_manage_zones_methods_and_rates_and_nobody_else_does() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let (_, customer, _) = app.customer("ann@example.com").await;
    let (zone, flat, heavy) = eu_shop(&app, &admin).await;
    assert_eq!(zone["countries"], json!(["DE", "FR"]));
    assert_eq!(flat["tax_class"], "standard");
    // Bands come back in ascending order.
    assert_eq!(heavy["rate"]["bands"][0]["up_to_grams"], 1000);

    let zones: Value = app.get(ZONES, Some(&admin)).await.body_json().await;
    assert_eq!(zones.as_array().map(Vec::len), Some(1));
    assert_eq!(zones[0]["methods"].as_array().map(Vec::len), Some(2));

    // Replace, read back, delete.
    let method_path = format!("{METHODS}{}/", str_of(&flat["id"]));
    let mut body = json!({"zone_id": zone["id"], "name": "Colissimo", "currency": "EUR",
        "rate": {"kind": "subtotal", "bands": [{"up_to": 5000, "amount": 690}]}, "is_active": false});
    let r = app.put(&method_path, Some(&admin), &body).await;
    assert_eq!(r.status(), 200);
    let got: Value = app.get(&method_path, Some(&admin)).await.body_json().await;
    assert_eq!(got["rate"]["kind"], "subtotal");
    assert_eq!(got["is_active"], false);
    assert_eq!(got["carrier"], Value::Null);

    // Unhappy paths: customers, no token, bad fields, wrong types, unknown
    // zone, missing ids.
    let r = app
        .post(
            ZONES,
            Some(&customer),
            &json!({"name": "X", "countries": ["FR"]}),
        )
        .await;
    assert_problem(r, 403, "permission_denied").await;
    let r = app.get(RATES, None).await;
    assert_eq!(r.status(), 401);
    let r = app.get(RATES, Some("not-a-token")).await;
    assert_eq!(r.status(), 401);
    let r = app
        .post(
            ZONES,
            Some(&admin),
            &json!({"name": " ", "countries": ["XX"]}),
        )
        .await;
    let problem = assert_problem(r, 422, "validation_error").await;
    assert_eq!(fields(&problem), ["countries.0", "name"]);
    let r = app.post(ZONES, Some(&admin), &json!({"name": "EU"})).await;
    assert_eq!(r.status(), 422);
    let r = app
        .post(
            ZONES,
            Some(&admin),
            &json!({"name": "EU", "countries": "FR"}),
        )
        .await;
    assert_eq!(r.status(), 422);
    body["zone_id"] = json!(uuid::Uuid::new_v4());
    let r = app.post(METHODS, Some(&admin), &body).await;
    let problem = assert_problem(r, 422, "validation_error").await;
    assert_eq!(fields(&problem), ["zone_id"]);
    body["zone_id"] = zone["id"].clone();
    body["rate"] = json!({"kind": "weight", "bands": []});
    body["currency"] = json!("EURO");
    body["min_days"] = json!(5);
    body["max_days"] = json!(1);
    let r = app.post(METHODS, Some(&admin), &body).await;
    let problem = assert_problem(r, 422, "validation_error").await;
    assert_eq!(fields(&problem), ["currency", "max_days", "rate.bands"]);
    body["rate"] = json!({"kind": "teleport", "amount": 1});
    let r = app.post(METHODS, Some(&admin), &body).await;
    assert_eq!(r.status(), 422);
    let missing = format!("{ZONES}{}/", uuid::Uuid::new_v4());
    assert_problem(app.get(&missing, Some(&admin)).await, 404, "not_found").await;
    assert_problem(
        app.get(&format!("{ZONES}nope/"), Some(&admin)).await,
        404,
        "not_found",
    )
    .await;
    let huge = json!({"name": "x".repeat(3_000_000), "countries": ["FR"]});
    let r = app.post(ZONES, Some(&admin), &huge).await;
    assert_eq!(r.status(), 413);

    // Rates: one per class and place; unknown classes and countries;
    // the standard class stays.
    let r = app
        .post(
            RATES,
            Some(&admin),
            &json!({"tax_class": "standard", "country": "fr", "rate_bp": 1000}),
        )
        .await;
    assert_problem(r, 409, "rate_exists").await;
    let r = app
        .post(
            RATES,
            Some(&admin),
            &json!({"tax_class": "luxury", "country": "FR", "rate_bp": 3300}),
        )
        .await;
    let problem = assert_problem(r, 422, "validation_error").await;
    assert_eq!(fields(&problem), ["tax_class"]);
    let r = app
        .post(
            RATES,
            Some(&admin),
            &json!({"tax_class": "standard", "country": "ZZ", "rate_bp": 10001}),
        )
        .await;
    let problem = assert_problem(r, 422, "validation_error").await;
    assert_eq!(fields(&problem), ["country", "rate_bp"]);
    let r = app
        .post(
            RATES,
            Some(&admin),
            &json!({"tax_class": "standard", "country": "FR", "rate_bp": "20%"}),
        )
        .await;
    assert_eq!(r.status(), 422);
    created(
        &app,
        &admin,
        CLASSES,
        json!({"code": "books", "name": "Books"}),
    )
    .await;
    let r = app
        .post(
            CLASSES,
            Some(&admin),
            &json!({"code": "books", "name": "Again"}),
        )
        .await;
    assert_problem(r, 409, "code_taken").await;
    let r = app
        .delete(&format!("{CLASSES}standard/"), Some(&admin))
        .await;
    assert_problem(r, 409, "class_required").await;
    let r = app.delete(&format!("{CLASSES}books/"), Some(&admin)).await;
    assert_eq!(r.status(), 204);
    let r = app.delete(&format!("{CLASSES}books/"), Some(&admin)).await;
    assert_problem(r, 404, "not_found").await;

    // Deleting the zone takes its methods with it.
    let r = app
        .delete(&format!("{ZONES}{}/", str_of(&zone["id"])), Some(&admin))
        .await;
    assert_eq!(r.status(), 204);
    assert_problem(app.get(&method_path, Some(&admin)).await, 404, "not_found").await;
}

#[tokio::test]
async fn the_cart_shows_what_checkout_charges_and_the_payment_charges_it() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let (_, token, _) = app.customer("ann@example.com").await;
    let (_, flat, heavy) = eu_shop(&app, &admin).await;
    let shirt = app.product(&admin, json!({"price": 2000})).await;
    // A default variant's id is its product's.
    let id = str_of(&shirt["id"]);
    let r = app
        .patch(
            &format!("/api/v1/products/{id}/variants/{id}/"),
            Some(&admin),
            &json!({"weight_grams": 400}),
        )
        .await;
    assert_eq!(r.status(), 200, "weighing the shirt");
    let book = app
        .product(&admin, json!({"price": 999, "tax_class": "reduced"}))
        .await;
    add(&app, &token, &shirt, 2).await;
    add(&app, &token, &book, 1).await;

    // Before an address: no shipping, no tax.
    let cart: Value = app.get(CART, Some(&token)).await.body_json().await;
    assert_eq!(
        (cart["shipping"].clone(), cart["tax"].clone()),
        (Value::Null, json!(0))
    );
    assert_eq!(cart["total"], 4999);

    // Offered in France, cheapest first; nothing to Japan.
    let quotes: Value = app
        .get(
            &format!("{QUOTES}?country=FR&postal_code=75001"),
            Some(&token),
        )
        .await
        .body_json()
        .await;
    let names: Vec<String> = quotes
        .as_array()
        .expect("list")
        .iter()
        .map(|q| str_of(&q["name"]))
        .collect();
    assert_eq!(names, ["Colissimo", "Freight"]);
    assert_eq!(quotes[1]["amount"], 800); // 800 g: the first band.
    let none: Value = app
        .get(&format!("{QUOTES}?country=JP"), Some(&token))
        .await
        .body_json()
        .await;
    assert_eq!(none, json!([]));
    let r = app.get(&format!("{QUOTES}?country=XX"), Some(&token)).await;
    assert_problem(r, 400, "invalid_query").await;
    let r = app.get(QUOTES, Some(&token)).await;
    assert_problem(r, 400, "invalid_query").await;

    // Choosing: unknown method, a destination no zone covers, bad address.
    let r = app
        .put(
            CHOOSE,
            Some(&token),
            &json!({"method_id": uuid::Uuid::new_v4(), "address": paris()}),
        )
        .await;
    assert_problem(r, 422, "shipping_method_ineligible").await;
    let mut tokyo = paris();
    tokyo["country"] = json!("JP");
    let r = app
        .put(
            CHOOSE,
            Some(&token),
            &json!({"method_id": flat["id"], "address": tokyo}),
        )
        .await;
    assert_problem(r, 422, "no_shipping_to_destination").await;
    let r = app
        .put(CHOOSE, Some(&token), &json!({"method_id": flat["id"]}))
        .await;
    let problem = assert_problem(r, 422, "validation_error").await;
    assert_eq!(fields(&problem), ["address"]);
    let r = app
        .put(
            CHOOSE,
            Some(&token),
            &json!({"method_id": flat["id"], "address_id": uuid::Uuid::new_v4()}),
        )
        .await;
    assert_problem(r, 404, "not_found").await;

    let r = app
        .put(
            CHOOSE,
            Some(&token),
            &json!({"method_id": flat["id"], "address": paris()}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let cart: Value = r.body_json().await;
    assert_eq!(cart["shipping"]["amount"], 490);
    assert_eq!(cart["shipping"]["name"], "Colissimo");
    // 40.00 at 20 % = 8.00; 9.99 at 5.5 % = 0.549 → 0.55; 4.90 at 20 % = 0.98.
    assert_eq!(cart["tax"], 800 + 55 + 98);
    assert_eq!(cart["total"], 4999 + 490 + 953);
    assert_eq!(cart["prices_include_tax"], false);

    // Checkout with no address in the body uses the cart's choice.
    let r = app
        .post(
            CHECKOUT,
            Some(&token),
            &json!({"expected_total": cart["total"]}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let order: Value = r.body_json().await;
    assert_eq!(order["total"], cart["total"]);
    assert_eq!(order["shipping"], 490);
    assert_eq!(order["tax"], 953);
    assert_eq!(order["shipping_tax"], 98);
    assert_eq!(order["shipping_method"]["method_id"], flat["id"]);
    assert_eq!(order["shipping_address"]["city"], "Paris");
    let line_tax: i64 = order["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|l| l["tax"].as_i64().expect("tax"))
        .sum();
    assert_eq!(line_tax + 98, 953);
    let rates: Vec<i64> = order["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|l| l["tax_rate_bp"].as_i64().expect("rate"))
        .collect();
    assert_eq!(rates, [2000, 550]);

    // The database holds every order to the rule.
    let pool = app.database_pool(Domain::Orders).await;
    let broken = sqlx::query("UPDATE orders SET total = total + 1 WHERE id = $1")
        .bind(uuid::Uuid::parse_str(&str_of(&order["id"])).expect("uuid"))
        .execute(&pool)
        .await;
    assert!(
        broken.is_err(),
        "the CHECK must refuse a total that does not add up"
    );

    // Editing the rules changes no placed order; the payment charges it.
    let heavy_path = format!("{METHODS}{}/", str_of(&heavy["id"]));
    app.delete(&heavy_path, Some(&admin)).await;
    let payment = pay(&app, &token, &order, VISA).await;
    assert_eq!(payment["amount"], order["total"]);
    let again: Value = app
        .get(
            &format!("/api/v1/orders/{}/", str_of(&order["id"])),
            Some(&token),
        )
        .await
        .body_json()
        .await;
    assert_eq!(again["total"], order["total"]);
}

#[tokio::test]
async fn checkout_refuses_what_cannot_ship_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let (_, token, _) = app.customer("ann@example.com").await;
    let (_, flat, _) = eu_shop(&app, &admin).await;
    let lamp = app
        .product(&admin, json!({"price": 3000, "stock": 5}))
        .await;
    add(&app, &token, &lamp, 1).await;

    let r = app
        .post(
            CHECKOUT,
            Some(&token),
            &json!({"shipping_address": paris()}),
        )
        .await;
    assert_problem(r, 422, "shipping_required").await;
    let mut tokyo = paris();
    tokyo["country"] = json!("JP");
    let r = app
        .post(
            CHECKOUT,
            Some(&token),
            &json!({"shipping_address": tokyo, "shipping_method_id": flat["id"]}),
        )
        .await;
    assert_problem(r, 422, "no_shipping_to_destination").await;
    let r = app
        .post(
            CHECKOUT,
            Some(&token),
            &json!({"shipping_address": paris(), "shipping_method_id": uuid::Uuid::new_v4()}),
        )
        .await;
    assert_problem(r, 422, "shipping_method_ineligible").await;
    let r = app.post(CHECKOUT, Some(&token), &json!({})).await;
    let problem = assert_problem(r, 422, "validation_error").await;
    assert_eq!(fields(&problem), ["shipping_address"]);
    let r = app
        .post(
            CHECKOUT,
            Some(&token),
            &json!({"shipping_address": paris(), "shipping_method_id": "soon"}),
        )
        .await;
    assert_eq!(r.status(), 422);
    assert_eq!(order_count(&app).await, 0);
    assert_eq!(app.stock_of(&admin, &lamp).await, 5);
    // The cart is untouched and can still be checked out.
    let r = app
        .post(
            CHECKOUT,
            Some(&token),
            &json!({"shipping_address": paris(), "shipping_method_id": flat["id"]}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let order: Value = r.body_json().await;
    assert_eq!(order["total"], 3000 + 490 + 600 + 98);

    // POST /orders/ follows the same rules.
    let body =
        json!({"items": [{"product_id": lamp["id"], "quantity": 1}], "shipping_address": paris()});
    let r = app.post("/api/v1/orders/", Some(&token), &body).await;
    assert_problem(r, 422, "shipping_required").await;
    let mut body = body;
    body["shipping_method_id"] = flat["id"].clone();
    let r = app.post("/api/v1/orders/", Some(&token), &body).await;
    assert_eq!(r.status(), 201);
}

#[tokio::test]
async fn inclusive_prices_charge_the_shelf_price_and_a_shop_without_rules_charges_nothing() {
    let app = TestApp::spawn_with(|s| s.tax.prices_include_tax = true).await;
    let (_, admin) = app.admin().await;
    let (_, token, _) = app.customer("ann@example.com").await;
    let lamp = app
        .product(&admin, json!({"price": 3000, "stock": 5}))
        .await;
    add(&app, &token, &lamp, 2).await;
    // No zones, no rates: today's clients keep working unchanged.
    let r = app
        .post(
            CHECKOUT,
            Some(&token),
            &json!({"shipping_address": paris()}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let order: Value = r.body_json().await;
    assert_eq!(
        (order["shipping"].clone(), order["tax"].clone()),
        (json!(0), json!(0))
    );
    assert_eq!(order["total"], 6000);

    let (_, flat, _) = eu_shop(&app, &admin).await;
    add(&app, &token, &lamp, 2).await;
    let r = app
        .put(
            CHOOSE,
            Some(&token),
            &json!({"method_id": flat["id"], "address": paris()}),
        )
        .await;
    let cart: Value = r.body_json().await;
    assert_eq!(cart["prices_include_tax"], true);
    // 60.00 incl. 20 % holds 10.00; 4.90 holds 0.82 (0.8166…).
    assert_eq!(cart["tax"], 1000 + 82);
    assert_eq!(cart["total"], 6000 + 490);
    let r = app.post(CHECKOUT, Some(&token), &json!({})).await;
    assert_eq!(r.status(), 201);
    let order: Value = r.body_json().await;
    assert_eq!(order["total"], 6490);
    assert_eq!(order["tax"], 1082);
    assert_eq!(order["prices_include_tax"], true);
}

#[tokio::test]
async fn an_order_charges_the_rules_as_they_are_now_whichever_instance_or_writer_changed_them() {
    let a = TestApp::spawn().await;
    let b = TestApp::spawn_beside(&a.settings).await;
    let (_, admin) = a.admin().await;
    let (_, token, _) = b.customer("ann@example.com").await;
    let (zone, flat, _) = eu_shop(&a, &admin).await;
    let lamp = a.product(&admin, json!({"price": 3000, "stock": 50})).await;
    let order = |shipping_method_id: Value| {
        let body = json!({"items": [{"product_id": lamp["id"], "quantity": 1}],
            "shipping_address": paris(), "shipping_method_id": shipping_method_id});
        let b = &b;
        let token = &token;
        async move {
            let r = b.post("/api/v1/orders/", Some(token), &body).await;
            assert_eq!(r.status(), 201, "placing an order");
            r.body_json().await
        }
    };
    // B reads and keeps the rules: 4.90 shipping, 20 % tax (on the
    // shipping too).
    let first = order(flat["id"].clone()).await;
    assert_eq!(first["total"], 3000 + 490 + 600 + 98);

    // An admin on A changes the method's price: B's very next order
    // charges it, with no wait.
    let method_path = format!("{METHODS}{}/", str_of(&flat["id"]));
    let body = json!({"zone_id": zone["id"], "name": "Colissimo", "currency": "EUR",
        "rate": {"kind": "flat", "amount": 700}});
    let r = a.put(&method_path, Some(&admin), &body).await;
    assert_eq!(r.status(), 200);
    let second = order(flat["id"].clone()).await;
    assert_eq!(second["total"], 3000 + 700 + 600 + 140);

    // A writer outside the service (a migration, a console) moves the
    // version too: the tax rate B charges follows at once.
    let pool = a.database_pool(Domain::Orders).await;
    sqlx::query(
        "UPDATE tax_rates SET rate_bp = 1000 WHERE country = 'FR' AND tax_class = 'standard'",
    )
    .execute(&pool)
    .await
    .expect("rate changed");
    let third = order(flat["id"].clone()).await;
    assert_eq!(third["total"], 3000 + 700 + 300 + 70);
}
