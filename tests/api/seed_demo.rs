use emporium::commands::seed_demo;
use serde_json::Value;

use crate::helpers::TestApp;

#[tokio::test]
async fn seed_demo_fills_a_structured_catalog_once_per_seed() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let report = seed_demo(&app.settings, 300, 9).await.expect("seeded");
    assert_eq!(report.categories, 24);
    assert_eq!(report.products_inserted, 300);
    let again = seed_demo(&app.settings, 300, 9)
        .await
        .expect("seeded again");
    assert_eq!(
        again.products_inserted, 0,
        "the same seed makes the same products"
    );

    let all: Value = app
        .get("/api/v1/products/", Some(&admin))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(all["count"], 300);
    let categories: Value = app
        .get("/api/v1/categories/?page_size=100", None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(categories["count"], 24);
    // A department lists the products of its sub-categories.
    let footwear: Value = app
        .get("/api/v1/products/?category=footwear", Some(&admin))
        .await
        .json()
        .await
        .expect("json");
    let running: Value = app
        .get("/api/v1/products/?category=running-shoes", Some(&admin))
        .await
        .json()
        .await
        .expect("json");
    assert!(footwear["count"].as_i64() > running["count"].as_i64());
    assert!(running["count"].as_i64() > Some(0));
    let premium: Value = app
        .get("/api/v1/products/?tags=premium", Some(&admin))
        .await
        .json()
        .await
        .expect("json");
    assert!(premium["count"].as_i64() > Some(0));
    assert!(seed_demo(&app.settings, 2_000_000, 1).await.is_err());
}
