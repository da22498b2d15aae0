//! `GET /cart/` priced at the edge from in-process copies (the carts' and
//! the catalog's read views, orders' rules): a write to the cart, to a
//! product on it, or to its stock, on any instance, is never followed by a
//! stale cart on another; a cart with a discount code always goes to the
//! carts domain.

use std::time::Duration;

use futures_util::future::join_all;
use serde_json::{json, Value};

use crate::helpers::JsonBody as _;
use crate::helpers::{str_of, TestApp};

const CART: &str = "/api/v1/cart/";
const ITEMS: &str = "/api/v1/cart/items/";

/// The cart, and whether the edge priced it from its views.
async fn read(app: &TestApp, token: &str) -> (Value, bool) {
    let r = app.get(CART, Some(token)).await;
    assert_eq!(r.status(), 200);
    let from_view = r
        .headers()
        .get("x-cache-layer")
        .is_some_and(|v| v == "view");
    (r.body_json().await, from_view)
}

/// Reads the cart until the views answer it (each miss fills them).
async fn warm(app: &TestApp, token: &str) {
    for _ in 0..50 {
        if read(app, token).await.1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the cart never came from the views");
}

async fn add(app: &TestApp, token: &str, product: &Value, quantity: i64) {
    let body = json!({"product_id": product["id"], "quantity": quantity});
    let r = app.post(ITEMS, Some(token), &body).await;
    assert_eq!(r.status(), 200, "adding to the cart");
}

fn line<'a>(cart: &'a Value, product: &Value) -> &'a Value {
    cart["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|l| l["product_id"] == product["id"])
        .expect("the product's line")
}

#[tokio::test]
async fn every_write_that_changes_a_cart_shows_at_once_on_an_instance_serving_it_from_its_views() {
    let a = TestApp::spawn().await;
    let b = TestApp::spawn_beside(&a.settings).await;
    let (_, admin) = a.admin().await;
    crate::shipping_tax::eu_shop(&a, &admin).await;
    let lamp = a.product(&admin, json!({"price": 2500, "stock": 10})).await;
    let mug = a.product(&admin, json!({"price": 800, "stock": 5})).await;
    let (_, ann, _) = a.customer("ann@example.com").await;
    let (_, bob, _) = a.customer("bob@example.com").await;
    add(&a, &ann, &lamp, 1).await;

    // The cart's own writes, made on the other instance.
    warm(&b, &ann).await;
    add(&a, &ann, &mug, 2).await;
    let (cart, _) = read(&b, &ann).await;
    assert_eq!(cart["items"].as_array().expect("items").len(), 2);
    assert_eq!(cart["subtotal"], 2500 + 1600);

    warm(&b, &ann).await;
    let r = a
        .patch(
            &format!("{ITEMS}{}/", str_of(&lamp["id"])),
            Some(&ann),
            &json!({"quantity": 3}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(line(&read(&b, &ann).await.0, &lamp)["quantity"], 3);

    // A shipping choice: shipping and tax appear.
    warm(&b, &ann).await;
    let quotes: Value = a
        .get(
            "/api/v1/cart/shipping-methods/?country=FR&postal_code=69001",
            Some(&ann),
        )
        .await
        .body_json()
        .await;
    let choice = json!({"method_id": quotes[0]["method_id"], "address": {"name": "Ann",
        "line1": "1 Main St", "city": "Lyon", "postal_code": "69001", "country": "FR"}});
    let chosen: Value = a
        .request(reqwest::Method::PUT, "/api/v1/cart/shipping/", Some(&ann))
        .json(&choice)
        .send()
        .await
        .expect("answered")
        .body_json()
        .await;
    assert!(chosen["shipping"].is_object(), "{chosen}");
    assert_eq!(read(&b, &ann).await.0, chosen);

    // The catalog's writes: a new price, then stock another customer took.
    warm(&b, &ann).await;
    let r = a
        .patch(
            &format!("/api/v1/products/{}/", str_of(&lamp["id"])),
            Some(&admin),
            &json!({"price": 3000}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let (cart, _) = read(&b, &ann).await;
    assert_eq!(line(&cart, &lamp)["unit_price"], 3000);
    assert_eq!(line(&cart, &lamp)["price_changed_from"], 2500);

    warm(&b, &ann).await;
    let order = json!({"items": [{"product_id": mug["id"], "quantity": 4}],
        "shipping_address": crate::orders::address(), "shipping_method_id": quotes[0]["method_id"]});
    let r = a.post("/api/v1/orders/", Some(&bob), &order).await;
    assert_eq!(r.status(), 201, "placing an order");
    let (cart, _) = read(&b, &ann).await;
    assert_eq!(line(&cart, &mug)["max_quantity"], 1);
    assert_eq!(line(&cart, &mug)["available"], false);
    assert_eq!(cart["checkout_ready"], false);

    // Emptied on the other instance.
    warm(&b, &ann).await;
    assert_eq!(a.delete(CART, Some(&ann)).await.status(), 200);
    assert_eq!(read(&b, &ann).await.0["items"], json!([]));
}

#[tokio::test]
async fn adds_racing_reads_on_another_instance_leave_no_stale_cart_behind() {
    let a = TestApp::spawn().await;
    let b = TestApp::spawn_beside(&a.settings).await;
    let (_, admin) = a.admin().await;
    let lamp = a
        .product(&admin, json!({"price": 2500, "stock": 100}))
        .await;
    let (_, ann, _) = a.customer("ann@example.com").await;
    add(&a, &ann, &lamp, 1).await;
    warm(&b, &ann).await;
    // Twenty adds on one instance while the other reads (and refills its
    // view) as fast as it can: each refill races an invalidation.
    let adds = join_all((0..20).map(|_| add(&a, &ann, &lamp, 1)));
    let reads = join_all((0..60).map(|_| read(&b, &ann)));
    let ((), _) = futures_util::join!(
        async {
            adds.await;
        },
        reads
    );
    for _ in 0..10 {
        let (cart, _) = read(&b, &ann).await;
        assert_eq!(line(&cart, &lamp)["quantity"], 21);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    warm(&b, &ann).await;
    assert_eq!(line(&read(&b, &ann).await.0, &lamp)["quantity"], 21);
}

#[tokio::test]
async fn a_cart_with_a_discount_code_is_always_priced_by_the_carts_domain() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let lamp = app
        .product(&admin, json!({"price": 2500, "stock": 10}))
        .await;
    let (_, ann, _) = app.customer("ann@example.com").await;
    add(&app, &ann, &lamp, 2).await;
    warm(&app, &ann).await;
    let r = app
        .post(
            "/api/v1/promotions/",
            Some(&admin),
            &json!({"code": "TENOFF", "kind": "percent", "value": 10}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let r = app
        .post(
            "/api/v1/cart/promotion/",
            Some(&ann),
            &json!({"code": "tenoff"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    for _ in 0..3 {
        let (cart, from_view) = read(&app, &ann).await;
        assert!(!from_view, "a discounted cart came from the views");
        assert_eq!(cart["discount"], 500);
    }
    assert_eq!(
        app.delete("/api/v1/cart/promotion/", Some(&ann))
            .await
            .status(),
        200
    );
    warm(&app, &ann).await;
    assert_eq!(read(&app, &ann).await.0["discount"], 0);
}
