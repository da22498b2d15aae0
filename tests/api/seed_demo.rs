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
    let again = seed_demo(&app.settings, size, 9)
        .await
        .expect("seeded again");
    assert_eq!(
        (
            again.products_inserted,
            again.customers_inserted,
            again.orders_inserted
        ),
        (0, 0, 0),
        "the same seed makes the same data"
    );

    let all: Value = app
        .get("/api/v1/products/", Some(&admin))
        .await
        .body_json()
        .await;
    assert_eq!(all["count"], 300);
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
