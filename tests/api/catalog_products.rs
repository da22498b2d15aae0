use serde_json::{json, Value};

use crate::helpers::JsonBody as _;
use crate::helpers::{assert_problem, error_fields, str_of, TestApp};

const PRODUCTS: &str = "/api/v1/products/";

#[tokio::test]
async fn a_product_has_every_wire_field() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let shoes = app.category(&admin, json!({"name": "Shoes"})).await;
    let body = json!({"name": "Trail Runner", "sku": "TR-001", "description": "Grippy trail shoe",
        "category_id": shoes["id"], "price": 8999, "currency": "eur", "stock": 7, "tags": ["Running", "trail"]});
    let r = app.post(PRODUCTS, Some(&admin), &body).await;
    assert_eq!(r.status(), 201);
    let p: Value = r.body_json().await;
    let mut keys: Vec<&str> = p
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "category_id",
            "created_at",
            "currency",
            "description",
            "id",
            "images",
            "is_active",
            "name",
            "options",
            "price",
            "sku",
            "slug",
            "stock",
            "tags",
            "tax_class",
            "updated_at",
            "variants"
        ]
    );
    // A product without options has one default variant, of its own id.
    assert_eq!(p["options"], json!([]));
    let variants = p["variants"].as_array().expect("variants");
    assert_eq!(variants.len(), 1);
    assert_eq!(variants[0]["id"], p["id"]);
    assert_eq!(variants[0]["sku"], "TR-001");
    assert_eq!(variants[0]["options"], json!({}));
    assert_eq!(variants[0]["stock"], 7);
    assert_eq!(p["slug"], "trail-runner");
    assert_eq!(p["currency"], "EUR");
    assert_eq!(p["price"], 8999);
    assert_eq!(p["tags"], json!(["running", "trail"]));
    assert_eq!(p["tax_class"], "standard", "the default tax class");
    assert_eq!(variants[0]["requires_shipping"], true);
    let by_id: Value = app
        .get(&format!("{PRODUCTS}{}/", str_of(&p["id"])), None)
        .await
        .body_json()
        .await;
    let by_slug: Value = app
        .get(&format!("{PRODUCTS}trail-runner/"), None)
        .await
        .body_json()
        .await;
    assert_eq!(by_id, p);
    assert_eq!(by_slug, p);
}

#[tokio::test]
async fn product_fields_are_validated_one_by_one() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let base = json!({"name": "A", "sku": "A-1", "price": 100, "currency": "EUR", "stock": 1});
    let cases = [
        ("price", json!(-1)),
        ("price", json!(10.5)),
        ("price", json!("100")),
        ("stock", json!(-3)),
        ("currency", json!("EURO")),
        ("currency", json!("XYZ")),
        ("name", json!("x".repeat(201))),
        ("name", json!("  ")),
        ("sku", json!("has spaces")),
        ("slug", json!("Not A Slug")),
        ("category_id", json!(uuid::Uuid::new_v4())),
        ("category_id", json!("not-a-uuid")),
        ("tags", json!(["ok", ""])),
        ("tags", json!("not-a-list")),
        ("description", json!("d".repeat(10_001))),
        ("is_active", json!("yes")),
        ("tax_class", json!("Bad Class!")),
        ("tax_class", json!("Standard")),
        ("tax_class", json!("")),
        ("tax_class", json!("x".repeat(51))),
        ("tax_class", json!(5)),
        ("colour", json!("red")),
    ];
    for (field, value) in cases {
        let mut body = base.clone();
        body[field] = value.clone();
        let problem = assert_problem(
            app.post(PRODUCTS, Some(&admin), &body).await,
            422,
            "validation_error",
        )
        .await;
        assert_eq!(error_fields(&problem), [field], "{field} = {value}");
    }
    for missing in ["name", "sku", "price", "currency", "stock"] {
        let mut body = base.clone();
        body.as_object_mut().expect("object").remove(missing);
        let problem = assert_problem(
            app.post(PRODUCTS, Some(&admin), &body).await,
            422,
            "validation_error",
        )
        .await;
        assert_eq!(error_fields(&problem), [missing]);
    }
    // Nothing above was half-written.
    let list: Value = app.get(PRODUCTS, Some(&admin)).await.body_json().await;
    assert_eq!(list["count"], 0);
}

#[tokio::test]
async fn sku_and_slug_are_unique() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    app.product(&admin, json!({"name": "One", "sku": "SKU-1"}))
        .await;
    let r = app
        .post(
            PRODUCTS,
            Some(&admin),
            &json!({"name": "Two", "sku": "SKU-1", "price": 1, "currency": "EUR", "stock": 1}),
        )
        .await;
    assert_problem(r, 409, "sku_taken").await;
    let r = app
        .post(
            PRODUCTS,
            Some(&admin),
            &json!({"name": "One", "sku": "SKU-2", "price": 1, "currency": "EUR", "stock": 1}),
        )
        .await;
    assert_problem(r, 409, "slug_taken").await;
}

#[tokio::test]
async fn only_admins_write_products() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let (_, customer, _) = app.customer("ann@example.com").await;
    let p = app.product(&admin, json!({})).await;
    let path = format!("{PRODUCTS}{}/", str_of(&p["id"]));
    let body = json!({"name": "B", "sku": "B", "price": 1, "currency": "EUR", "stock": 1});
    for token in [None, Some(customer.as_str())] {
        let status = if token.is_none() { 401 } else { 403 };
        assert_eq!(app.post(PRODUCTS, token, &body).await.status(), status);
        assert_eq!(app.put(&path, token, &body).await.status(), status);
        assert_eq!(
            app.patch(&path, token, &json!({"price": 1})).await.status(),
            status
        );
        assert_eq!(app.delete(&path, token).await.status(), status);
    }
    assert_problem(
        app.get(PRODUCTS, Some("garbage")).await,
        401,
        "invalid_token",
    )
    .await;
}

#[tokio::test]
async fn inactive_products_are_hidden_from_customers_but_not_admins() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let (_, customer, _) = app.customer("ann@example.com").await;
    let p = app
        .product(&admin, json!({"name": "Hidden", "is_active": false}))
        .await;
    app.product(&admin, json!({"name": "Shown"})).await;
    let path = format!("{PRODUCTS}{}/", str_of(&p["id"]));
    assert_problem(app.get(&path, None).await, 404, "not_found").await;
    assert_problem(app.get(&path, Some(&customer)).await, 404, "not_found").await;
    assert_problem(
        app.get(&format!("{PRODUCTS}hidden/"), None).await,
        404,
        "not_found",
    )
    .await;
    assert_eq!(app.get(&path, Some(&admin)).await.status(), 200);
    let public: Value = app.get(PRODUCTS, Some(&customer)).await.body_json().await;
    assert_eq!(public["count"], 1);
    assert_eq!(public["results"][0]["name"], "Shown");
    let all: Value = app.get(PRODUCTS, Some(&admin)).await.body_json().await;
    assert_eq!(all["count"], 2);
}

#[tokio::test]
async fn products_are_replaced_patched_and_deleted() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let shoes = app.category(&admin, json!({"name": "Shoes"})).await;
    let p = app
        .product(
            &admin,
            json!({"name": "Old", "category_id": shoes["id"], "tags": ["a"]}),
        )
        .await;
    let path = format!("{PRODUCTS}{}/", str_of(&p["id"]));
    let full = json!({"name": "New", "sku": "NEW-1", "price": 500, "currency": "USD", "stock": 2});
    let replaced: Value = app.put(&path, Some(&admin), &full).await.body_json().await;
    assert_eq!(replaced["name"], "New");
    assert_eq!(replaced["slug"], "new");
    assert_eq!(replaced["category_id"], Value::Null);
    assert_eq!(replaced["tags"], json!([]));
    assert_eq!(replaced["id"], p["id"]);
    let patched: Value = app
        .patch(
            &path,
            Some(&admin),
            &json!({"price": 750, "category_id": shoes["id"]}),
        )
        .await
        .body_json()
        .await;
    assert_eq!(patched["price"], 750);
    assert_eq!(patched["name"], "New");
    assert_eq!(patched["category_id"], shoes["id"]);
    assert_problem(
        app.patch(&path, Some(&admin), &json!({})).await,
        422,
        "validation_error",
    )
    .await;
    assert_problem(
        app.patch(&path, Some(&admin), &json!({"stock": -1})).await,
        422,
        "validation_error",
    )
    .await;
    let r = app
        .put(&path, Some(&admin), &json!({"name": "Only a name"}))
        .await;
    assert_problem(r, 422, "validation_error").await;
    let missing = format!("{PRODUCTS}{}/", uuid::Uuid::new_v4());
    assert_problem(
        app.patch(&missing, Some(&admin), &json!({"price": 1}))
            .await,
        404,
        "not_found",
    )
    .await;
    assert_eq!(app.delete(&path, Some(&admin)).await.status(), 204);
    assert_problem(app.get(&path, Some(&admin)).await, 404, "not_found").await;
    assert_problem(app.delete(&path, Some(&admin)).await, 404, "not_found").await;
}

#[tokio::test]
async fn a_product_takes_a_tax_class_on_create_and_patch_and_shows_it_everywhere() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    // Any well-formed code is taken: the catalog does not know which
    // classes the shop has defined (an undefined one is taxed at no rate).
    let p = app
        .product(
            &admin,
            json!({"name": "Cookbook", "tax_class": "reduced-rate_2"}),
        )
        .await;
    assert_eq!(p["tax_class"], "reduced-rate_2");
    let path = format!("{PRODUCTS}{}/", str_of(&p["id"]));
    let page: Value = app.get(&path, None).await.body_json().await;
    assert_eq!(page["tax_class"], "reduced-rate_2", "on the product page");
    let listing: Value = app.get(PRODUCTS, None).await.body_json().await;
    assert_eq!(
        listing["results"][0]["tax_class"], "reduced-rate_2",
        "in listings"
    );

    // A patch changes it and nothing else; one that leaves it out keeps it.
    let patched: Value = app
        .patch(&path, Some(&admin), &json!({"tax_class": "zero"}))
        .await
        .body_json()
        .await;
    assert_eq!(patched["tax_class"], "zero");
    assert_eq!(patched["name"], "Cookbook");
    assert_eq!(patched["price"], p["price"]);
    let renamed: Value = app
        .patch(&path, Some(&admin), &json!({"name": "Cookbook 2"}))
        .await
        .body_json()
        .await;
    assert_eq!(renamed["tax_class"], "zero");
    let page: Value = app.get(&path, None).await.body_json().await;
    assert_eq!(
        page["tax_class"], "zero",
        "the cached page follows the patch"
    );

    // A bad code, a code of the wrong type, or null: 422 on the field, and
    // the product keeps its class.
    for bad in [json!("Bad Class!"), json!("a.b"), json!(5), json!(null)] {
        let problem = assert_problem(
            app.patch(&path, Some(&admin), &json!({"tax_class": bad}))
                .await,
            422,
            "validation_error",
        )
        .await;
        assert_eq!(error_fields(&problem), ["tax_class"], "{bad}");
    }
    let problem = assert_problem(
        app.patch(&path, Some(&admin), &json!({"tax_class": "Bad Class!"}))
            .await,
        422,
        "validation_error",
    )
    .await;
    assert_eq!(problem["errors"][0]["code"], "invalid");
    let page: Value = app.get(&path, Some(&admin)).await.body_json().await;
    assert_eq!(page["tax_class"], "zero");

    // A full replacement without it takes the default, as every optional
    // field does; with it, the one given.
    let full =
        json!({"name": "Cookbook 3", "sku": "CB-3", "price": 500, "currency": "EUR", "stock": 1});
    let replaced: Value = app.put(&path, Some(&admin), &full).await.body_json().await;
    assert_eq!(replaced["tax_class"], "standard");
    let mut full = full;
    full["tax_class"] = json!("books");
    let replaced: Value = app.put(&path, Some(&admin), &full).await.body_json().await;
    assert_eq!(replaced["tax_class"], "books");
}
