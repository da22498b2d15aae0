use serde_json::{json, Value};

use crate::helpers::JsonBody as _;
use crate::helpers::{assert_problem, error_fields, str_of, TestApp};

const CATEGORIES: &str = "/api/v1/categories/";

#[tokio::test]
async fn only_admins_write_categories_and_anyone_reads_them() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let (_, customer, _) = app.customer("ann@example.com").await;
    let body = json!({"name": "Shoes"});
    assert_problem(
        app.post(CATEGORIES, None, &body).await,
        401,
        "not_authenticated",
    )
    .await;
    assert_problem(
        app.post(CATEGORIES, Some(&customer), &body).await,
        403,
        "permission_denied",
    )
    .await;
    let shoes = app.category(&admin, body).await;
    assert_eq!(shoes["slug"], "shoes");
    assert_eq!(shoes["parent_id"], Value::Null);
    let id = str_of(&shoes["id"]);
    let path = format!("{CATEGORIES}{id}/");
    assert_problem(
        app.patch(&path, Some(&customer), &json!({"name": "X"}))
            .await,
        403,
        "permission_denied",
    )
    .await;
    assert_problem(app.delete(&path, None).await, 401, "not_authenticated").await;
    let read: Value = app.get(&path, None).await.body_json().await;
    assert_eq!(read, shoes);
    let list: Value = app.get(CATEGORIES, None).await.body_json().await;
    assert_eq!(list["count"], 1);
    assert_eq!(list["results"][0], shoes);
    assert_problem(
        app.get(&format!("{CATEGORIES}{}/", uuid::Uuid::new_v4()), None)
            .await,
        404,
        "not_found",
    )
    .await;
    assert_problem(
        app.get(&format!("{CATEGORIES}not-an-id/"), None).await,
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn category_input_is_validated() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let problem = assert_problem(
        app.post(CATEGORIES, Some(&admin), &json!({})).await,
        422,
        "validation_error",
    )
    .await;
    assert_eq!(error_fields(&problem), ["name"]);
    let problem = assert_problem(
        app.post(
            CATEGORIES,
            Some(&admin),
            &json!({"name": "", "slug": "Bad Slug"}),
        )
        .await,
        422,
        "validation_error",
    )
    .await;
    assert_eq!(error_fields(&problem), ["name", "slug"]);
    let r = app
        .post(
            CATEGORIES,
            Some(&admin),
            &json!({"name": "A", "parent_id": "nope"}),
        )
        .await;
    assert_eq!(
        error_fields(&assert_problem(r, 422, "validation_error").await),
        ["parent_id"]
    );
    let r = app
        .post(
            CATEGORIES,
            Some(&admin),
            &json!({"name": "A", "parent_id": uuid::Uuid::new_v4()}),
        )
        .await;
    assert_eq!(
        error_fields(&assert_problem(r, 422, "validation_error").await),
        ["parent_id"]
    );
    let r = app
        .post(CATEGORIES, Some(&admin), &json!({"name": "x".repeat(101)}))
        .await;
    assert_problem(r, 422, "validation_error").await;
    app.category(&admin, json!({"name": "Shoes"})).await;
    let r = app
        .post(
            CATEGORIES,
            Some(&admin),
            &json!({"name": "Other", "slug": "shoes"}),
        )
        .await;
    assert_problem(r, 409, "slug_taken").await;
}

#[tokio::test]
async fn the_tree_cannot_be_made_into_a_cycle() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let root = app.category(&admin, json!({"name": "Root"})).await;
    let child = app
        .category(&admin, json!({"name": "Child", "parent_id": root["id"]}))
        .await;
    let grandchild = app
        .category(
            &admin,
            json!({"name": "Grandchild", "parent_id": child["id"]}),
        )
        .await;
    let root_path = format!("{CATEGORIES}{}/", str_of(&root["id"]));
    for parent in [&grandchild["id"], &child["id"], &root["id"]] {
        let r = app
            .patch(&root_path, Some(&admin), &json!({"parent_id": parent}))
            .await;
        let problem = assert_problem(r, 422, "validation_error").await;
        assert_eq!(problem["errors"][0]["code"], "cycle", "{problem}");
    }
    // Moving a leaf elsewhere and back to the root level is fine.
    let gc_path = format!("{CATEGORIES}{}/", str_of(&grandchild["id"]));
    let moved: Value = app
        .patch(&gc_path, Some(&admin), &json!({"parent_id": root["id"]}))
        .await
        .body_json()
        .await;
    assert_eq!(moved["parent_id"], root["id"]);
    let top: Value = app
        .patch(
            &gc_path,
            Some(&admin),
            &json!({"parent_id": null, "name": "Top"}),
        )
        .await
        .body_json()
        .await;
    assert_eq!(top["parent_id"], Value::Null);
    assert_eq!(top["name"], "Top");
    assert_eq!(top["slug"], "grandchild");
}

#[tokio::test]
async fn categories_in_use_cannot_be_deleted() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let parent = app.category(&admin, json!({"name": "Parent"})).await;
    let child = app
        .category(&admin, json!({"name": "Child", "parent_id": parent["id"]}))
        .await;
    let product = app
        .product(&admin, json!({"category_id": child["id"]}))
        .await;
    let parent_path = format!("{CATEGORIES}{}/", str_of(&parent["id"]));
    let child_path = format!("{CATEGORIES}{}/", str_of(&child["id"]));
    assert_problem(
        app.delete(&parent_path, Some(&admin)).await,
        409,
        "category_has_children",
    )
    .await;
    assert_problem(
        app.delete(&child_path, Some(&admin)).await,
        409,
        "category_has_products",
    )
    .await;
    let r = app
        .delete(
            &format!("/api/v1/products/{}/", str_of(&product["id"])),
            Some(&admin),
        )
        .await;
    assert_eq!(r.status(), 204);
    assert_eq!(app.delete(&child_path, Some(&admin)).await.status(), 204);
    assert_eq!(app.delete(&parent_path, Some(&admin)).await.status(), 204);
    assert_problem(
        app.delete(&parent_path, Some(&admin)).await,
        404,
        "not_found",
    )
    .await;
}
