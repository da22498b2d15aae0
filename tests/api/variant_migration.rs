//! The variants migration on a database written by the previous schema:
//! the old migrations run first, rows are written as the old code wrote
//! them, then an instance starts (and migrates the rest of the way) and
//! everything is still there: products, stock totals, an open
//! reservation, a guest cart's lines and an order's lines.

use std::path::{Path, PathBuf};

use emporium::actors::catalog::messages::ReleaseReservation;
use emporium::actors::orders::messages::GetOrder;
use emporium::config::{Domain, Settings};
use emporium::domain::auth::{Principal, Role};
use emporium::store::database::{connect_options, ensure_database};
use serde_json::{json, Value};
use sqlx::migrate::Migrator;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::helpers::JsonBody as _;
use crate::helpers::{test_settings, TestApp};

/// The first migration of the variants schema, per domain.
const VARIANTS_VERSION: i64 = 20261202000000;

/// A folder holding `domain`'s migrations from before variants, byte for
/// byte (so their checksums match the embedded ones applied later).
fn old_migrations(domain: &str) -> PathBuf {
    let from = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(domain);
    let to = std::env::temp_dir().join(format!("emporium-old-{domain}-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&to).expect("temp dir");
    for entry in std::fs::read_dir(&from).expect("migrations") {
        let path = entry.expect("entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).expect("name");
        let version: i64 = name
            .split('_')
            .next()
            .and_then(|v| v.parse().ok())
            .expect("versioned");
        if version < VARIANTS_VERSION {
            std::fs::copy(&path, to.join(name)).expect("copied");
        }
    }
    to
}

/// A connection to `domain`'s database, created and migrated to the
/// schema before variants.
async fn at_old_schema(settings: &Settings, domain: Domain) -> PgConnection {
    let options = connect_options(&settings.database, domain).expect("options");
    ensure_database(&options).await.expect("database");
    let mut conn = PgConnection::connect_with(&options).await.expect("connect");
    let folder = old_migrations(domain.name());
    let old = Migrator::new(folder.as_path())
        .await
        .expect("old migrations");
    assert!(old.iter().all(|m| m.version < VARIANTS_VERSION));
    old.run(&mut conn).await.expect("old schema");
    std::fs::remove_dir_all(folder).ok();
    conn
}

#[tokio::test]
async fn a_database_of_the_previous_schema_keeps_every_product_reservation_and_line() {
    let settings = test_settings();
    let (lamp, mug, order, user, cart) = (
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
    );
    let token = "old-guest-cart-token";

    // The catalog as the old code left it: 2 lamps held for an order out
    // of 5 (3 left), 10 mugs.
    let mut catalog = at_old_schema(&settings, Domain::Catalog).await;
    sqlx::query(
        "INSERT INTO products (id, name, slug, sku, price, currency, stock, tags) VALUES \
         ($1, 'Lamp', 'lamp', 'LAMP-1', 2500, 'EUR', 3, '{home}'), \
         ($2, 'Mug', 'mug', 'MUG-1', 800, 'EUR', 10, '{}')",
    )
    .bind(lamp)
    .bind(mug)
    .execute(&mut catalog)
    .await
    .expect("products");
    sqlx::query("INSERT INTO reservations (id, expires_at) VALUES ($1, now() + interval '1 hour')")
        .bind(order)
        .execute(&mut catalog)
        .await
        .expect("reservation");
    sqlx::query(
        "INSERT INTO reservation_items (reservation_id, product_id, quantity) VALUES ($1, $2, 2)",
    )
    .bind(order)
    .bind(lamp)
    .execute(&mut catalog)
    .await
    .expect("reserved line");

    // A guest cart holding 4 mugs.
    let mut carts = at_old_schema(&settings, Domain::Carts).await;
    sqlx::query("INSERT INTO carts (id, token_hash) VALUES ($1, $2)")
        .bind(cart)
        .bind(emporium::domain::carts::token_hash(token))
        .execute(&mut carts)
        .await
        .expect("cart");
    sqlx::query(
        "INSERT INTO cart_items (cart_id, product_id, quantity, seen_price, seen_currency) \
         VALUES ($1, $2, 4, 800, 'EUR')",
    )
    .bind(cart)
    .bind(mug)
    .execute(&mut carts)
    .await
    .expect("cart line");

    // The pending order those lamps are held for.
    let mut orders = at_old_schema(&settings, Domain::Orders).await;
    let address = json!({"name": "Ann", "line1": "1 Rue", "line2": "", "city": "Lyon",
        "region": "", "postal_code": "69001", "country": "FR", "phone": ""});
    sqlx::query(
        "INSERT INTO orders (id, user_id, status, total, subtotal, currency, shipping_address, expires_at) \
         VALUES ($1, $2, 'pending', 5000, 5000, 'EUR', $3, now() + interval '1 hour')",
    )
    .bind(order)
    .bind(user)
    .bind(&address)
    .execute(&mut orders)
    .await
    .expect("order");
    sqlx::query(
        "INSERT INTO order_items (order_id, position, product_id, name, unit_price, quantity, line_total) \
         VALUES ($1, 0, $2, 'Lamp', 2500, 2, 5000)",
    )
    .bind(order)
    .bind(lamp)
    .execute(&mut orders)
    .await
    .expect("order line");
    for conn in [catalog, carts, orders] {
        conn.close().await.ok();
    }

    // Start-up migrates the rest of the way.
    let app = TestApp::spawn_on_prepared(settings).await;
    let (_, admin) = app.admin().await;

    // Same products, each with one default variant of its own id.
    let listing: Value = app
        .get("/api/v1/products/?ordering=name", Some(&admin))
        .await
        .body_json()
        .await;
    assert_eq!(listing["count"], 2);
    let products = listing["results"].as_array().expect("results");
    for (p, (id, sku, price, stock)) in products
        .iter()
        .zip([(lamp, "LAMP-1", 2500, 3), (mug, "MUG-1", 800, 10)])
    {
        assert_eq!(p["id"], json!(id));
        assert_eq!(
            (p["sku"].as_str(), p["price"].as_i64(), p["stock"].as_i64()),
            (Some(sku), Some(price), Some(stock))
        );
        assert_eq!(p["options"], json!([]));
        let variants = p["variants"].as_array().expect("variants");
        assert_eq!(variants.len(), 1, "{p}");
        assert_eq!(variants[0]["id"], json!(id));
        assert_eq!(variants[0]["sku"], sku);
        assert_eq!(variants[0]["price"], price);
        assert_eq!(variants[0]["stock"], stock);
        assert_eq!(variants[0]["options"], json!({}));
    }
    let pool = app.catalog_pool().await;
    let totals: (i64, i64) = sqlx::query_as(
        "SELECT (SELECT sum(stock) FROM products), (SELECT sum(stock) FROM product_variants)",
    )
    .fetch_one(&pool)
    .await
    .expect("totals");
    assert_eq!(totals, (13, 13));

    // The guest cart's line names the mug's variant, priced as before.
    let r = app
        .request(
            reqwest::Method::GET,
            &format!("/api/v1/carts/{cart}/"),
            None,
        )
        .header("X-Cart-Token", token)
        .send()
        .await
        .expect("cart");
    let cart_view: Value = r.body_json().await;
    let items = cart_view["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{cart_view}");
    assert_eq!(items[0]["product_id"], json!(mug));
    assert_eq!(items[0]["variant_id"], json!(mug));
    assert_eq!(items[0]["quantity"], 4);
    assert_eq!(items[0]["sku"], "MUG-1");
    assert_eq!(cart_view["subtotal"], 3200);
    assert_eq!(cart_view["checkout_ready"], true, "{cart_view}");

    // The order's line names the lamp's variant (its SKU was not kept).
    let view = app
        .actors
        .orders
        .call(GetOrder {
            id: order,
            viewer: Principal {
                user_id: user,
                role: Role::Admin,
            }
            .into(),
        })
        .await
        .expect("order");
    assert_eq!(view.items.len(), 1);
    assert_eq!(view.items[0].product_id, lamp);
    assert_eq!(view.items[0].variant_id, lamp);
    assert_eq!(view.items[0].sku, None);
    assert_eq!(view.items[0].quantity, 2);

    // The open reservation still holds the lamps: releasing it gives them
    // back to the variant and the product.
    app.actors
        .catalog
        .call(ReleaseReservation(order))
        .await
        .expect("released");
    let stock: (i32, i32) = sqlx::query_as(
        "SELECT p.stock, v.stock FROM products p JOIN product_variants v ON v.product_id = p.id WHERE p.id = $1",
    )
    .bind(lamp)
    .fetch_one(&pool)
    .await
    .expect("stock");
    assert_eq!(stock, (5, 5));
}
