//! Products with options and variants: created in one body, each variant
//! priced and stocked on its own, the product's totals kept from them,
//! the rules on combinations and option changes, variants carted and
//! ordered, and no oversell of one variant under concurrent buyers.

use futures_util::future::join_all;
use serde_json::{json, Value};

use crate::helpers::JsonBody as _;
use crate::helpers::{assert_problem, error_fields, str_of, TestApp};
use crate::orders::{order_body, ORDERS};

const PRODUCTS: &str = "/api/v1/products/";

/// A T-shirt in sizes S, M, L and colours red, blue, with the variants
/// named by `variants` (`(size, colour, price, stock)`).
fn tee(sku: &str, variants: &[(&str, &str, i64, i64)]) -> Value {
    let variants: Vec<Value> = variants
        .iter()
        .map(|(size, colour, price, stock)| {
            json!({"sku": format!("{sku}-{size}-{colour}"), "options": {"size": size, "colour": colour},
                "price": price, "stock": stock})
        })
        .collect();
    json!({"name": format!("Tee {sku}"), "currency": "EUR",
        "options": [{"name": "size", "values": ["S", "M", "L"]}, {"name": "colour", "values": ["red", "blue"]}],
        "variants": variants})
}

async fn create(app: &TestApp, admin: &str, body: &Value) -> Value {
    let r = app.post(PRODUCTS, Some(admin), body).await;
    assert_eq!(r.status(), 201, "{body}");
    r.body_json().await
}

fn variant<'a>(product: &'a Value, size: &str, colour: &str) -> &'a Value {
    product["variants"]
        .as_array()
        .expect("variants")
        .iter()
        .find(|v| v["options"] == json!({"size": size, "colour": colour}))
        .expect("variant")
}

fn variants_path(product: &Value) -> String {
    format!("{PRODUCTS}{}/variants/", str_of(&product["id"]))
}

fn variant_path(product: &Value, variant: &Value) -> String {
    format!("{}{}/", variants_path(product), str_of(&variant["id"]))
}

async fn product_now(app: &TestApp, product: &Value) -> Value {
    app.get(&format!("{PRODUCTS}{}/", str_of(&product["id"])), None)
        .await
        .body_json()
        .await
}

#[tokio::test]
async fn a_product_is_created_with_its_options_and_variants_and_keeps_totals_from_them() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let p = create(
        &app,
        &admin,
        &tee(
            "T1",
            &[
                ("S", "red", 1500, 3),
                ("M", "red", 1400, 5),
                ("M", "blue", 1600, 0),
            ],
        ),
    )
    .await;
    assert_eq!(
        p["sku"],
        Value::Null,
        "a product with options has no own SKU"
    );
    assert_eq!(p["price"], 1400, "the lowest active variant price");
    assert_eq!(p["stock"], 8, "the active variants' stock");
    assert_eq!(p["variants"].as_array().map(Vec::len), Some(3));
    assert_eq!(variant(&p, "M", "blue")["sku"], "T1-M-blue");
    assert_eq!(product_now(&app, &p).await, p);
    let listed: Value = app
        .get(&variants_path(&p), Some(&admin))
        .await
        .body_json()
        .await;
    assert_eq!(listed, p["variants"]);

    // A variant's own change moves the product's totals.
    let cheap = variant(&p, "M", "red");
    let r = app
        .patch(
            &variant_path(&p, cheap),
            Some(&admin),
            &json!({"is_active": false}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let now = product_now(&app, &p).await;
    assert_eq!(
        (now["price"].as_i64(), now["stock"].as_i64()),
        (Some(1500), Some(3))
    );
    let added = app
        .post(
            &variants_path(&p),
            Some(&admin),
            &json!({"sku": "T1-L-blue", "options": {"size": "L", "colour": "blue"}, "price": 900,
                "stock": 4, "compare_at_price": 1200, "weight_grams": 180}),
        )
        .await;
    assert_eq!(added.status(), 201);
    let added: Value = added.body_json().await;
    assert_eq!(added["compare_at_price"], 1200);
    assert_eq!(added["weight_grams"], 180);
    let now = product_now(&app, &p).await;
    assert_eq!(
        (now["price"].as_i64(), now["stock"].as_i64()),
        (Some(900), Some(7))
    );
    assert_eq!(
        app.delete(&variant_path(&p, &added), Some(&admin))
            .await
            .status(),
        204
    );
    assert_eq!(product_now(&app, &p).await["stock"], 3);

    // A product without options keeps working as before variants: its
    // product-level fields are its one variant's.
    let plain = app.product(&admin, json!({"price": 700, "stock": 2})).await;
    let r = app
        .patch(
            &format!("{PRODUCTS}{}/", str_of(&plain["id"])),
            Some(&admin),
            &json!({"price": 650, "stock": 9}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let plain: Value = r.body_json().await;
    assert_eq!(plain["variants"][0]["price"], 650);
    assert_eq!(plain["variants"][0]["stock"], 9);
    assert_eq!(plain["variants"][0]["id"], plain["id"]);
}

#[tokio::test]
async fn variant_rules_are_clear_conflicts_and_leave_nothing_half_written() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let (_, customer, _) = app.customer("ann@example.com").await;

    // Two variants naming one combination: 409, and no product is written.
    let twice = tee("T2", &[("S", "red", 1000, 1), ("S", "red", 1100, 1)]);
    let mut twice = twice;
    twice["variants"][1]["sku"] = json!("T2-other");
    assert_problem(
        app.post(PRODUCTS, Some(&admin), &twice).await,
        409,
        "variant_exists",
    )
    .await;
    let listing: Value = app.get(PRODUCTS, Some(&admin)).await.body_json().await;
    assert_eq!(listing["count"], 0, "nothing half-written");

    let p = create(
        &app,
        &admin,
        &tee("T3", &[("S", "red", 1000, 1), ("M", "red", 1000, 1)]),
    )
    .await;
    // A SKU is unique over the shop, variants and plain products alike.
    let mut taken = tee("T4", &[("S", "red", 1000, 1)]);
    taken["variants"][0]["sku"] = json!("T3-S-red");
    assert_problem(
        app.post(PRODUCTS, Some(&admin), &taken).await,
        409,
        "sku_taken",
    )
    .await;
    let r = app
        .post(
            PRODUCTS,
            Some(&admin),
            &json!({"name": "Plain", "sku": "T3-M-red", "price": 1, "currency": "EUR", "stock": 1}),
        )
        .await;
    assert_problem(r, 409, "sku_taken").await;

    // Field rules, each named.
    for (body, field) in [
        (
            json!({"name": "X", "currency": "EUR", "options": [{"name": "size", "values": ["S"]}]}),
            "variants",
        ),
        (
            {
                let mut b = tee("T5", &[("XL", "red", 1, 1)]);
                b["variants"][0]["options"]["size"] = json!("XL");
                b
            },
            "variants.0.options",
        ),
        (
            {
                let mut b = tee("T6", &[("S", "red", 1, 1)]);
                b["price"] = json!(5);
                b
            },
            "price",
        ),
        (
            {
                let mut b = tee("T7", &[("S", "red", 1, 1)]);
                b["options"][0]["values"] = json!(["S", "S"]);
                b
            },
            "options.0.values",
        ),
        (
            {
                let mut b = tee("T8", &[("S", "red", -1, 1)]);
                b["variants"][0]["price"] = json!(-1);
                b
            },
            "variants.0.price",
        ),
    ] {
        let problem = assert_problem(
            app.post(PRODUCTS, Some(&admin), &body).await,
            422,
            "validation_error",
        )
        .await;
        assert_eq!(error_fields(&problem), [field], "{body}");
    }
    let r = app
        .post(
            &variants_path(&p),
            Some(&admin),
            &json!({"sku": "T3-x", "price": 1, "stock": 1, "colour": "red"}),
        )
        .await;
    assert_problem(r, 422, "validation_error").await;
    let r = app
        .post(
            &variants_path(&p),
            Some(&admin),
            &json!({"sku": "T3-x", "price": "1", "stock": 1}),
        )
        .await;
    assert_problem(r, 422, "validation_error").await;
    let huge =
        json!({"sku": "T3-big", "price": 1, "stock": 1, "options": {"size": "x".repeat(2 << 20)}});
    assert_eq!(
        app.post(&variants_path(&p), Some(&admin), &huge)
            .await
            .status(),
        413
    );

    // One variant per combination, on create and on change.
    let same = json!({"sku": "T3-again", "options": {"size": "S", "colour": "red"}, "price": 1, "stock": 1});
    assert_problem(
        app.post(&variants_path(&p), Some(&admin), &same).await,
        409,
        "variant_exists",
    )
    .await;
    let medium = variant(&p, "M", "red");
    let r = app
        .patch(
            &variant_path(&p, medium),
            Some(&admin),
            &json!({"options": {"size": "S", "colour": "red"}}),
        )
        .await;
    assert_problem(r, 409, "variant_exists").await;
    let r = app
        .patch(&variant_path(&p, medium), Some(&admin), &json!({}))
        .await;
    assert_problem(r, 422, "validation_error").await;

    // Options a variant uses cannot go; none can be added under variants;
    // values can be.
    let product_path = format!("{PRODUCTS}{}/", str_of(&p["id"]));
    let cases = [
        (
            json!([{"name": "size", "values": ["S", "M", "L"]}]),
            "option_in_use",
        ),
        (
            json!([{"name": "size", "values": ["S", "L"]}, {"name": "colour", "values": ["red", "blue"]}]),
            "option_value_in_use",
        ),
        (
            json!([{"name": "size", "values": ["S", "M", "L"]}, {"name": "colour", "values": ["red", "blue"]}, {"name": "fit", "values": ["slim"]}]),
            "option_added_with_variants",
        ),
    ];
    for (options, code) in cases {
        let r = app
            .patch(&product_path, Some(&admin), &json!({"options": options}))
            .await;
        assert_problem(r, 409, code).await;
    }
    let more = json!([{"name": "size", "values": ["S", "M", "L", "XL"]}, {"name": "colour", "values": ["red", "blue", "green"]}]);
    let r = app
        .patch(&product_path, Some(&admin), &json!({"options": more}))
        .await;
    assert_eq!(r.status(), 200);
    let r = app
        .patch(&product_path, Some(&admin), &json!({"price": 5}))
        .await;
    let problem = assert_problem(r, 422, "validation_error").await;
    assert_eq!(problem["errors"][0]["code"], "set_on_variants");

    // A product keeps one variant; a variant of another product is not
    // found through this one.
    let small = variant(&p, "S", "red");
    assert_eq!(
        app.delete(&variant_path(&p, medium), Some(&admin))
            .await
            .status(),
        204
    );
    assert_problem(
        app.delete(&variant_path(&p, small), Some(&admin)).await,
        409,
        "last_variant",
    )
    .await;
    let other = create(&app, &admin, &tee("T9", &[("S", "red", 1, 1)])).await;
    let foreign = format!("{}{}/", variants_path(&other), str_of(&small["id"]));
    assert_problem(app.get(&foreign, Some(&admin)).await, 404, "not_found").await;
    assert_problem(app.delete(&foreign, Some(&admin)).await, 404, "not_found").await;
    let nowhere = format!("{PRODUCTS}{}/variants/", uuid::Uuid::new_v4());
    assert_problem(app.get(&nowhere, Some(&admin)).await, 404, "not_found").await;
    assert_problem(
        app.get(&format!("{PRODUCTS}not-a-uuid/variants/"), Some(&admin))
            .await,
        404,
        "not_found",
    )
    .await;

    // Admins only, with a valid token.
    assert_problem(
        app.get(&variants_path(&p), Some(&customer)).await,
        403,
        "permission_denied",
    )
    .await;
    assert_problem(
        app.post(&variants_path(&p), Some(&customer), &same).await,
        403,
        "permission_denied",
    )
    .await;
    assert_problem(
        app.patch(
            &variant_path(&p, small),
            Some(&customer),
            &json!({"price": 1}),
        )
        .await,
        403,
        "permission_denied",
    )
    .await;
    assert_problem(
        app.delete(&variant_path(&p, small), Some(&customer)).await,
        403,
        "permission_denied",
    )
    .await;
    assert_eq!(app.get(&variants_path(&p), None).await.status(), 401);
    assert_eq!(
        app.get(&variants_path(&p), Some("not-a-token"))
            .await
            .status(),
        401
    );
}

#[tokio::test]
async fn orders_and_carts_name_variants_and_snapshot_them() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let (_, ann, _) = app.customer("ann@example.com").await;
    let p = create(
        &app,
        &admin,
        &tee("T10", &[("S", "red", 1500, 3), ("M", "blue", 1700, 3)]),
    )
    .await;
    let blue = variant(&p, "M", "blue");

    // A product with several variants must be named by variant.
    let r = app
        .post(
            ORDERS,
            Some(&ann),
            &order_body(json!([{"product_id": p["id"], "quantity": 1}])),
        )
        .await;
    let problem = assert_problem(r, 422, "validation_error").await;
    assert_eq!(problem["errors"][0]["field"], "items.0.product_id");
    assert_eq!(problem["errors"][0]["code"], "variant_required");
    let both = json!([{"product_id": p["id"], "variant_id": blue["id"], "quantity": 1}]);
    assert_problem(
        app.post(ORDERS, Some(&ann), &order_body(both)).await,
        422,
        "validation_error",
    )
    .await;
    let none = json!([{"quantity": 1}]);
    assert_problem(
        app.post(ORDERS, Some(&ann), &order_body(none)).await,
        422,
        "validation_error",
    )
    .await;
    let unknown = json!([{"variant_id": uuid::Uuid::new_v4(), "quantity": 1}]);
    let problem = assert_problem(
        app.post(ORDERS, Some(&ann), &order_body(unknown)).await,
        422,
        "validation_error",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "items.0.variant_id");

    let r = app
        .post(
            ORDERS,
            Some(&ann),
            &order_body(json!([{"variant_id": blue["id"], "quantity": 2}])),
        )
        .await;
    assert_eq!(r.status(), 201);
    let order: Value = r.body_json().await;
    let line = &order["items"][0];
    assert_eq!(line["product_id"], p["id"]);
    assert_eq!(line["variant_id"], blue["id"]);
    assert_eq!(line["sku"], "T10-M-blue");
    assert_eq!(line["options"], json!({"size": "M", "colour": "blue"}));
    assert_eq!(order["total"], 3400);
    let now = product_now(&app, &p).await;
    assert_eq!(variant(&now, "M", "blue")["stock"], 1);
    assert_eq!(
        variant(&now, "S", "red")["stock"],
        3,
        "the sibling keeps its stock"
    );
    assert_eq!(now["stock"], 4);
    // The variant is held by the pending order: it cannot be deleted.
    assert_problem(
        app.delete(&variant_path(&p, blue), Some(&admin)).await,
        409,
        "variant_in_use",
    )
    .await;

    // Carts hold variants too; checkout orders them.
    let items = "/api/v1/cart/items/";
    let r = app
        .post(
            items,
            Some(&ann),
            &json!({"product_id": p["id"], "quantity": 1}),
        )
        .await;
    let problem = assert_problem(r, 422, "validation_error").await;
    assert_eq!(problem["errors"][0]["code"], "variant_required");
    let red = variant(&p, "S", "red");
    let r = app
        .post(
            items,
            Some(&ann),
            &json!({"variant_id": red["id"], "quantity": 2}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let cart: Value = r.body_json().await;
    assert_eq!(cart["items"][0]["variant_id"], red["id"]);
    assert_eq!(cart["items"][0]["product_id"], p["id"]);
    assert_eq!(cart["items"][0]["sku"], "T10-S-red");
    assert_eq!(cart["subtotal"], 3000);
    let r = app
        .patch(
            &format!("{items}{}/", str_of(&red["id"])),
            Some(&ann),
            &json!({"quantity": 3}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = app
        .post(
            "/api/v1/cart/checkout/",
            Some(&ann),
            &json!({"shipping_address": crate::orders::address()}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let placed: Value = r.body_json().await;
    assert_eq!(placed["items"][0]["variant_id"], red["id"]);
    assert_eq!(placed["items"][0]["quantity"], 3);
    assert_eq!(
        variant(&product_now(&app, &p).await, "S", "red")["stock"],
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_buyers_of_ten_units_of_one_variant_never_oversell_it_or_its_sibling() {
    let app = TestApp::spawn_with(|s| {
        s.rate_limit.register_per_client = 100;
        s.rate_limit.login_per_client = 100;
    })
    .await;
    let (_, admin) = app.admin().await;
    let p = create(
        &app,
        &admin,
        &tee("T11", &[("S", "red", 500, 10), ("M", "red", 500, 7)]),
    )
    .await;
    let scarce = variant(&p, "S", "red").clone();
    let mut tokens = Vec::new();
    for n in 0..50 {
        tokens.push(app.customer(&format!("buyer{n}@example.com")).await.1);
    }
    let body = order_body(json!([{"variant_id": scarce["id"], "quantity": 1}]));
    let attempts = tokens.iter().map(|t| app.post(ORDERS, Some(t), &body));
    let statuses: Vec<u16> = join_all(attempts)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        10,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        40,
        "{statuses:?}"
    );
    let now = product_now(&app, &p).await;
    assert_eq!(variant(&now, "S", "red")["stock"], 0);
    assert_eq!(variant(&now, "M", "red")["stock"], 7);
    assert_eq!(now["stock"], 7);
    crate::helpers::assert_reservations_match_orders(&app).await;
    assert!(crate::helpers::assert_stock_ledger_adds_up(&app).await >= 2);
}

#[tokio::test]
async fn a_variant_change_on_one_instance_is_never_read_stale_on_another() {
    let a = TestApp::spawn().await;
    let b = TestApp::spawn_beside(&a.settings).await;
    let (_, admin) = a.admin().await;
    let p = create(
        &a,
        &admin,
        &tee("T12", &[("S", "red", 1000, 5), ("M", "red", 1200, 5)]),
    )
    .await;
    let path = format!("{PRODUCTS}{}/", str_of(&p["id"]));
    let small = variant(&p, "S", "red").clone();
    for round in 0..5_i64 {
        // Both instances have the product in their views.
        for app in [&a, &b] {
            for _ in 0..3 {
                app.get(&path, None).await;
            }
        }
        let price = 800 - round * 10;
        let stock = 6 + round;
        let r = a
            .patch(
                &variant_path(&p, &small),
                Some(&admin),
                &json!({"price": price, "stock": stock}),
            )
            .await;
        assert_eq!(r.status(), 200);
        for app in [&b, &a] {
            let seen: Value = app.get(&path, None).await.body_json().await;
            assert_eq!(variant(&seen, "S", "red")["price"], price, "round {round}");
            assert_eq!(seen["price"], price);
            assert_eq!(seen["stock"], stock + 5);
            let listing: Value = app
                .get(&format!("{PRODUCTS}?q=T12"), None)
                .await
                .body_json()
                .await;
            assert_eq!(listing["results"][0]["price"], price, "round {round}");
        }
    }
}

#[tokio::test]
async fn a_variant_requires_shipping_unless_told_otherwise_and_snapshots_carry_shipping_and_tax() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let mut body = tee("SH", &[("S", "red", 1000, 1), ("M", "red", 1000, 1)]);
    body["variants"][1]["requires_shipping"] = json!(false);
    body["variants"][0]["weight_grams"] = json!(250);
    body["tax_class"] = json!("reduced");
    let p = create(&app, &admin, &body).await;
    assert_eq!(
        variant(&p, "S", "red")["requires_shipping"],
        true,
        "default"
    );
    assert_eq!(variant(&p, "M", "red")["requires_shipping"], false);
    assert_eq!(
        product_now(&app, &p).await,
        p,
        "the product page shows both"
    );

    // Added on its own: default `true`, or as given.
    let added = app
        .post(
            &variants_path(&p),
            Some(&admin),
            &json!({"sku": "SH-L-red", "options": {"size": "L", "colour": "red"}, "price": 1, "stock": 1}),
        )
        .await;
    assert_eq!(added.status(), 201);
    let added: Value = added.body_json().await;
    assert_eq!(added["requires_shipping"], true);
    let digital = app
        .post(
            &variants_path(&p),
            Some(&admin),
            &json!({"sku": "SH-L-blue", "options": {"size": "L", "colour": "blue"}, "price": 1,
                "stock": 1, "requires_shipping": false}),
        )
        .await;
    assert_eq!(digital.status(), 201);
    let digital: Value = digital.body_json().await;
    assert_eq!(digital["requires_shipping"], false);

    // Patched on and off; a patch of another field keeps it.
    let path = variant_path(&p, &added);
    let off: Value = app
        .patch(&path, Some(&admin), &json!({"requires_shipping": false}))
        .await
        .body_json()
        .await;
    assert_eq!(off["requires_shipping"], false);
    assert_eq!(off["sku"], "SH-L-red");
    let priced: Value = app
        .patch(&path, Some(&admin), &json!({"price": 5}))
        .await
        .body_json()
        .await;
    assert_eq!(
        (
            priced["price"].as_i64(),
            priced["requires_shipping"].as_bool()
        ),
        (Some(5), Some(false))
    );
    let on: Value = app
        .patch(&path, Some(&admin), &json!({"requires_shipping": true}))
        .await
        .body_json()
        .await;
    assert_eq!(on["requires_shipping"], true);
    let got: Value = app.get(&path, Some(&admin)).await.body_json().await;
    assert_eq!(got, on);

    // A wrong type, wherever the variant is written: 422 on the field.
    let mut inline = tee("SH2", &[("S", "red", 1, 1)]);
    inline["variants"][0]["requires_shipping"] = json!("yes");
    let problem = assert_problem(
        app.post(PRODUCTS, Some(&admin), &inline).await,
        422,
        "validation_error",
    )
    .await;
    assert_eq!(
        error_fields(&problem),
        ["variants.0.requires_shipping"],
        "{problem}"
    );
    let problem = assert_problem(
        app.post(
            &variants_path(&p),
            Some(&admin),
            &json!({"sku": "SH-S-blue", "options": {"size": "S", "colour": "blue"}, "price": 1,
                "stock": 1, "requires_shipping": "yes"}),
        )
        .await,
        422,
        "validation_error",
    )
    .await;
    assert_eq!(error_fields(&problem), ["requires_shipping"]);
    for bad in [json!("yes"), json!(1), json!(null)] {
        let problem = assert_problem(
            app.patch(&path, Some(&admin), &json!({"requires_shipping": bad}))
                .await,
            422,
            "validation_error",
        )
        .await;
        assert_eq!(error_fields(&problem), ["requires_shipping"], "{bad}");
    }
    assert_eq!(
        app.get(&path, Some(&admin)).await.body_json().await["requires_shipping"],
        true,
        "refused patches changed nothing"
    );

    // What carts and orders receive: the variant's weight and shipping,
    // and the product's tax class.
    let pool = app.catalog_pool().await;
    let mut conn = pool.acquire().await.expect("connection");
    let ids: Vec<uuid::Uuid> = [variant(&p, "S", "red"), variant(&p, "M", "red")]
        .iter()
        .map(|v| str_of(&v["id"]).parse().expect("uuid"))
        .collect();
    let snapshots = emporium::store::catalog::variant_snapshots(&mut conn, &ids)
        .await
        .expect("snapshots");
    assert_eq!(snapshots.len(), 2);
    for s in &snapshots {
        let (weight, shipped) = if s.sku == "SH-S-red" {
            (250, true)
        } else {
            (0, false)
        };
        assert_eq!(
            (s.weight_grams, s.requires_shipping, s.tax_class.as_str()),
            (weight, shipped, "reduced"),
            "{}",
            s.sku
        );
    }
    let patched = app
        .patch(
            &format!("{PRODUCTS}{}/", str_of(&p["id"])),
            Some(&admin),
            &json!({"tax_class": "zero"}),
        )
        .await;
    assert_eq!(patched.status(), 200);
    let snapshots = emporium::store::catalog::lock_snapshots(&mut conn, &ids)
        .await
        .expect("snapshots");
    assert!(snapshots.iter().all(|s| s.tax_class == "zero"));
}
