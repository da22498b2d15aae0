use emporium::actors::orders::messages::GetPurchaseHistory;
use emporium::commands::{seed_demo, SeedSize, DEMO_PASSWORD};
use serde_json::Value;

use crate::helpers::JsonBody as _;
use crate::helpers::TestApp;

#[tokio::test]
async fn seed_demo_fills_a_structured_shop_once_per_seed() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let size = SeedSize {
        products: 300,
        customers: 12,
        orders_per_customer: 3,
    };
    let report = seed_demo(&app.settings, size, 9).await.expect("seeded");
    assert_eq!(report.categories, 24);
    assert_eq!(report.products_inserted, 300);
    assert_eq!(
        (report.customers_inserted, report.orders_inserted),
        (12, 36)
    );
    // 2 zones, 3 methods, 14 tax rates.
    assert_eq!(report.rules_inserted, 19);
    assert_eq!(report.locations_inserted, 2);
    let again = seed_demo(&app.settings, size, 9)
        .await
        .expect("seeded again");
    assert_eq!(
        (
            again.products_inserted,
            again.customers_inserted,
            again.orders_inserted,
            again.rules_inserted,
            again.locations_inserted
        ),
        (0, 0, 0, 0, 0),
        "the same seed makes the same data"
    );
    // Every demo variant's stock is opening stock at the EU warehouse.
    assert!(crate::helpers::assert_stock_ledger_adds_up(&app).await >= 300);

    let all: Value = app
        .get("/api/v1/products/", Some(&admin))
        .await
        .body_json()
        .await;
    assert_eq!(all["count"], 300);

    // A newcomer's first checkout shows shipping and tax.
    let zones: Value = app
        .get("/api/v1/shipping/zones/", Some(&admin))
        .await
        .body_json()
        .await;
    assert_eq!(zones.as_array().map(Vec::len), Some(2));
    let (_, shopper, _) = app.customer("newcomer@example.com").await;
    let product = all["results"]
        .as_array()
        .expect("results")
        .iter()
        .find(|p| {
            p["stock"].as_i64() > Some(0) && p["variants"].as_array().map(Vec::len) == Some(1)
        })
        .expect("a product with one variant in stock")
        .clone();
    let r = app
        .post(
            "/api/v1/cart/items/",
            Some(&shopper),
            &serde_json::json!({"product_id": product["id"], "quantity": 1}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let offered: Value = app
        .get("/api/v1/cart/shipping-methods/?country=FR", Some(&shopper))
        .await
        .body_json()
        .await;
    let standard = offered
        .as_array()
        .expect("methods")
        .iter()
        .find(|m| m["name"] == "Standard")
        .expect("Standard offered in France")
        .clone();
    let address = serde_json::json!({"name": "New Comer", "line1": "1 Rue", "city": "Paris",
        "postal_code": "75001", "country": "FR"});
    let cart: Value = app
        .put(
            "/api/v1/cart/shipping/",
            Some(&shopper),
            &serde_json::json!({"method_id": standard["method_id"], "address": address}),
        )
        .await
        .body_json()
        .await;
    assert!(cart["tax"].as_i64() > Some(0), "French tax on {cart}");
    assert_eq!(
        cart["total"].as_i64(),
        Some(
            cart["subtotal"].as_i64().expect("subtotal")
                + cart["shipping"]["amount"].as_i64().expect("shipping")
                + cart["tax"].as_i64().expect("tax")
        )
    );
    let categories: Value = app
        .get("/api/v1/categories/?page_size=100", None)
        .await
        .body_json()
        .await;
    assert_eq!(categories["count"], 24);
    // A department lists the products of its sub-categories.
    let footwear: Value = app
        .get("/api/v1/products/?category=footwear", Some(&admin))
        .await
        .body_json()
        .await;
    let running: Value = app
        .get("/api/v1/products/?category=running-shoes", Some(&admin))
        .await
        .body_json()
        .await;
    assert!(footwear["count"].as_i64() > running["count"].as_i64());
    assert!(running["count"].as_i64() > Some(0));
    let premium: Value = app
        .get("/api/v1/products/?tags=premium", Some(&admin))
        .await
        .body_json()
        .await;
    assert!(premium["count"].as_i64() > Some(0));

    // Demo customers can log in and see their delivered orders.
    let pair = app
        .login("customer0@demo.emporium.test", DEMO_PASSWORD)
        .await;
    let mine: Value = app
        .get("/api/v1/orders/", pair["access"].as_str())
        .await
        .body_json()
        .await;
    assert_eq!(mine["count"], 3);
    assert_eq!(mine["results"][0]["status"], "delivered");
    let history = app
        .actors
        .orders
        .call(GetPurchaseHistory {
            user_ids: vec![],
            limit: 10_000,
        })
        .await
        .expect("history");
    assert!(history.len() >= 36);

    let too_big = SeedSize {
        products: 2_000_000,
        ..size
    };
    assert!(seed_demo(&app.settings, too_big, 1).await.is_err());
}
