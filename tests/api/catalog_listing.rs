use emporium::domain::catalog::listing::Ordering;
use emporium::store::catalog::{explain_list_products, ProductFilter};
use serde_json::{json, Value};

use crate::helpers::JsonBody as _;
use crate::helpers::{assert_problem, str_of, TestApp};

/// A small shop: Shoes > Running, and Bags, with products spread over
/// prices, tags and stock.
async fn shop(app: &TestApp, admin: &str) -> (Value, Value, Value) {
    let shoes = app.category(admin, json!({"name": "Shoes"})).await;
    let running = app
        .category(admin, json!({"name": "Running", "parent_id": shoes["id"]}))
        .await;
    let bags = app.category(admin, json!({"name": "Bags"})).await;
    let products = [
        (
            "Road Racer",
            &running,
            12000,
            5,
            json!(["road", "light"]),
            "A featherweight racing shoe",
        ),
        (
            "Trail Blazer",
            &running,
            9000,
            0,
            json!(["trail", "waterproof"]),
            "Rugged trail shoe with grip",
        ),
        (
            "Town Loafer",
            &shoes,
            7000,
            3,
            json!(["leather"]),
            "Classic leather loafer",
        ),
        (
            "Day Pack",
            &bags,
            4000,
            9,
            json!(["light", "waterproof"]),
            "Small waterproof backpack",
        ),
        ("Duffel", &bags, 9000, 2, json!([]), "Big weekend bag"),
    ];
    for (name, category, price, stock, tags, description) in products {
        app.product(
            admin,
            json!({"name": name, "category_id": category["id"], "price": price, "stock": stock, "tags": tags, "description": description}),
        )
        .await;
    }
    (shoes, running, bags)
}

async fn names(app: &TestApp, query: &str) -> Vec<String> {
    let r = app.get(&format!("/api/v1/products/?{query}"), None).await;
    assert_eq!(r.status(), 200, "{query}");
    let page: Value = r.body_json().await;
    page["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|p| str_of(&p["name"]))
        .collect()
}

#[tokio::test]
async fn every_filter_and_ordering_gives_the_expected_products() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let (shoes, running, _) = shop(&app, &admin).await;
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(
        sorted(names(&app, "category=shoes").await),
        ["Road Racer", "Town Loafer", "Trail Blazer"],
        "a category includes its sub-categories"
    );
    assert_eq!(
        sorted(names(&app, &format!("category={}", str_of(&running["id"]))).await),
        ["Road Racer", "Trail Blazer"]
    );
    assert_eq!(
        names(
            &app,
            &format!("category={}&ordering=price", str_of(&shoes["id"]))
        )
        .await,
        ["Town Loafer", "Trail Blazer", "Road Racer"]
    );
    assert_eq!(
        names(&app, "min_price=9000&max_price=9000&ordering=name").await,
        ["Duffel", "Trail Blazer"]
    );
    assert_eq!(names(&app, "max_price=4000").await, ["Day Pack"]);
    assert_eq!(
        sorted(names(&app, "q=waterproof").await),
        ["Day Pack"],
        "search covers descriptions"
    );
    assert_eq!(names(&app, "q=trail").await, ["Trail Blazer"]);
    assert_eq!(
        names(&app, "q=shoes").await.len(),
        2,
        "stemming: shoes matches shoe"
    );
    assert_eq!(names(&app, "in_stock=false").await, ["Trail Blazer"]);
    assert_eq!(names(&app, "in_stock=true").await.len(), 4);
    assert_eq!(
        sorted(names(&app, "tags=light").await),
        ["Day Pack", "Road Racer"]
    );
    assert_eq!(
        names(&app, "tags=light,waterproof").await,
        ["Day Pack"],
        "tags must all match"
    );
    let by_price = names(&app, "ordering=price").await;
    assert_eq!(by_price[..2], ["Day Pack", "Town Loafer"]);
    assert_eq!(sorted(by_price[2..4].to_vec()), ["Duffel", "Trail Blazer"]);
    assert_eq!(by_price[4], "Road Racer");
    let by_name = names(&app, "ordering=name").await;
    assert_eq!(
        by_name,
        [
            "Day Pack",
            "Duffel",
            "Road Racer",
            "Town Loafer",
            "Trail Blazer"
        ]
    );
    let by_name_desc = names(&app, "ordering=-name").await;
    assert_eq!(
        by_name_desc,
        [
            "Trail Blazer",
            "Town Loafer",
            "Road Racer",
            "Duffel",
            "Day Pack"
        ]
    );
    let newest = names(&app, "").await;
    assert_eq!(newest[0], "Duffel", "newest first by default");
    assert_eq!(names(&app, "ordering=created_at").await[0], "Road Racer");
    assert_eq!(names(&app, "ordering=-price").await[0], "Road Racer");
}

#[tokio::test]
async fn equal_prices_are_ordered_by_id_in_both_directions() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let mut ids = Vec::new();
    for n in 0..4 {
        let p = app
            .product(&admin, json!({"name": format!("Same {n}"), "price": 500}))
            .await;
        ids.push(str_of(&p["id"]));
    }
    ids.sort();
    let listed = |query: &'static str| {
        let app = &app;
        async move {
            let page: Value = app
                .get(&format!("/api/v1/products/?{query}"), None)
                .await
                .body_json()
                .await;
            page["results"]
                .as_array()
                .expect("results")
                .iter()
                .map(|p| str_of(&p["id"]))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(listed("ordering=price").await, ids);
    let mut reversed = ids.clone();
    reversed.reverse();
    assert_eq!(listed("ordering=-price").await, reversed);
    // Paging through ties neither repeats nor skips.
    let mut paged = listed("ordering=price&page_size=3").await;
    paged.extend(listed("ordering=price&page_size=3&page=2").await);
    assert_eq!(paged, ids);
}

#[tokio::test]
async fn page_edges_and_invalid_filters_are_400_or_404() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    shop(&app, &admin).await;
    let page: Value = app
        .get("/api/v1/products/?page_size=2&page=2", None)
        .await
        .body_json()
        .await;
    assert_eq!(page["count"], 5);
    assert!(str_of(&page["next"]).contains("page=3"));
    assert!(
        !page["previous"]
            .as_str()
            .expect("previous")
            .contains("page="),
        "page 1 link has no page parameter"
    );
    let huge: Value = app
        .get("/api/v1/products/?page_size=999999999999", None)
        .await
        .body_json()
        .await;
    assert_eq!(huge["results"].as_array().expect("results").len(), 5);
    assert_problem(
        app.get("/api/v1/products/?page=4&page_size=2", None).await,
        404,
        "not_found",
    )
    .await;
    for bad in [
        "page=0",
        "page=-1",
        "page=x",
        "page_size=0",
        "min_price=-5",
        "max_price=cheap",
        "min_price=10&max_price=5",
        "in_stock=maybe",
        "ordering=popularity",
        "category=no-such-category",
        "tags=,,,",
    ] {
        let r = app.get(&format!("/api/v1/products/?{bad}"), None).await;
        if bad == "tags=,,," {
            // Empty tags are no filter at all.
            assert_eq!(r.status(), 200);
            continue;
        }
        assert_problem(r, 400, "invalid_query").await;
    }
}

#[tokio::test]
async fn common_listings_use_indexes_on_a_hundred_thousand_products() {
    let app = TestApp::spawn().await;
    let pool = app.catalog_pool().await;
    let categories: Vec<uuid::Uuid> = (0..20).map(|_| uuid::Uuid::new_v4()).collect();
    sqlx::query("INSERT INTO categories (id, name, slug) SELECT c, 'Category ' || i, 'category-' || i FROM unnest($1::uuid[]) WITH ORDINALITY AS t(c, i)")
        .bind(&categories)
        .execute(&pool)
        .await
        .expect("categories");
    sqlx::query(
        "INSERT INTO products (id, name, slug, sku, description, category_id, price, currency, stock, tags, is_active, created_at) \
         SELECT gen_random_uuid(), 'Product ' || n || ' ' || (ARRAY['red','blue','green','black'])[1 + n % 4], 'product-' || n, 'SKU-' || n, \
                'Description of product ' || n || ' made of ' || (ARRAY['cotton','steel','wool','leather','glass'])[1 + n % 5], \
                ($1::uuid[])[1 + n % 20], 100 + (n * 7919) % 100000, 'EUR', n % 50, ARRAY['tag' || (n % 30)], n % 10 <> 0, \
                now() - (n || ' seconds')::interval \
         FROM generate_series(1, 100000) AS n",
    )
    .bind(&categories)
    .execute(&pool)
    .await
    .expect("products");
    sqlx::query("ANALYZE products")
        .execute(&pool)
        .await
        .expect("analyze");

    let base = ProductFilter {
        only_active: true,
        ..ProductFilter::default()
    };
    let cases = [
        ("newest first", base.clone(), Ordering::CreatedDesc),
        ("by price", base.clone(), Ordering::PriceAsc),
        ("by name", base.clone(), Ordering::NameAsc),
        (
            "category by price",
            ProductFilter {
                category_ids: Some(vec![categories[3]]),
                ..base.clone()
            },
            Ordering::PriceAsc,
        ),
        (
            "category newest",
            ProductFilter {
                category_ids: Some(vec![categories[3], categories[4]]),
                ..base.clone()
            },
            Ordering::CreatedDesc,
        ),
        (
            "price range",
            ProductFilter {
                min_price: Some(500),
                max_price: Some(900),
                ..base.clone()
            },
            Ordering::PriceAsc,
        ),
        (
            "search",
            ProductFilter {
                q: Some("leather".into()),
                ..base.clone()
            },
            Ordering::CreatedDesc,
        ),
        (
            "tag",
            ProductFilter {
                tags: vec!["tag7".into()],
                ..base.clone()
            },
            Ordering::CreatedDesc,
        ),
        (
            "in stock by price",
            ProductFilter {
                in_stock: Some(true),
                ..base.clone()
            },
            Ordering::PriceDesc,
        ),
    ];
    for (name, filter, ordering) in cases {
        let plan = explain_list_products(&pool, &filter, ordering, 20, 0)
            .await
            .expect("explain")
            .join("\n");
        assert!(
            !plan.contains("Seq Scan on products"),
            "{name} plan:\n{plan}"
        );
    }
    pool.close().await;
}
