use std::time::Duration;

use emporium::actors::catalog::messages::*;
use emporium::actors::catalog::CatalogError;
use emporium::actors::runtime::CallError;
use emporium::domain::catalog::stock::{Resolved, StockLine};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{str_of, TestApp};

fn line(product: &Value, quantity: i32) -> StockLine {
    StockLine {
        variant_id: str_of(&product["id"]).parse().expect("uuid"),
        quantity,
    }
}

async fn reserve(
    app: &TestApp,
    id: Uuid,
    lines: Vec<StockLine>,
) -> Result<ReservationOutcome, CallError<CatalogError>> {
    app.actors
        .catalog
        .call(ReserveStock {
            reservation_id: id,
            lines,
        })
        .await
}

#[tokio::test]
async fn fifty_concurrent_reservations_never_oversell_ten_units() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let p = app.product(&admin, json!({"stock": 10})).await;
    let attempts = (0..50).map(|_| reserve(&app, Uuid::new_v4(), vec![line(&p, 1)]));
    let results = futures_util::future::join_all(attempts).await;
    let reserved = results
        .iter()
        .filter(|r| matches!(r, Ok(ReservationOutcome::Reserved)))
        .count();
    let refused = results
        .iter()
        .filter(|r| {
            matches!(
                r,
                Err(CallError::Domain(CatalogError::InsufficientStock(_)))
            )
        })
        .count();
    assert_eq!((reserved, refused), (10, 40));
    assert_eq!(app.stock_of(&admin, &p).await, 0);
    assert_eq!(crate::helpers::assert_stock_ledger_adds_up(&app).await, 1);
}

#[tokio::test]
async fn a_reservation_holds_every_line_or_none() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let plenty = app.product(&admin, json!({"stock": 10})).await;
    let scarce = app.product(&admin, json!({"stock": 1})).await;
    let inactive = app
        .product(&admin, json!({"stock": 5, "is_active": false}))
        .await;
    let unknown = json!({"id": Uuid::new_v4().to_string()});
    let result = reserve(
        &app,
        Uuid::new_v4(),
        vec![
            line(&plenty, 3),
            line(&scarce, 2),
            line(&inactive, 1),
            line(&unknown, 1),
        ],
    )
    .await;
    let Err(CallError::Domain(CatalogError::InsufficientStock(short))) = result else {
        panic!("expected insufficient stock, got {result:?}");
    };
    let mut reasons: Vec<&str> = short.iter().map(|s| s.reason).collect();
    reasons.sort_unstable();
    assert_eq!(
        reasons,
        ["inactive", "insufficient_stock", "unknown_product"]
    );
    assert_eq!(app.stock_of(&admin, &plenty).await, 10, "nothing held");
    assert_eq!(app.stock_of(&admin, &scarce).await, 1);
    // Duplicate lines of one product add up.
    let ok = reserve(
        &app,
        Uuid::new_v4(),
        vec![line(&plenty, 3), line(&plenty, 4)],
    )
    .await;
    assert!(matches!(ok, Ok(ReservationOutcome::Reserved)));
    assert_eq!(app.stock_of(&admin, &plenty).await, 3);
    let bad = reserve(&app, Uuid::new_v4(), vec![line(&plenty, 0)]).await;
    assert!(matches!(
        bad,
        Err(CallError::Domain(CatalogError::Validation(_)))
    ));
    let empty = reserve(&app, Uuid::new_v4(), vec![]).await;
    assert!(matches!(
        empty,
        Err(CallError::Domain(CatalogError::Validation(_)))
    ));
}

#[tokio::test]
async fn retried_reservations_are_counted_once_even_concurrently() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let p = app.product(&admin, json!({"stock": 10})).await;
    let id = Uuid::new_v4();
    let attempts = (0..6).map(|_| reserve(&app, id, vec![line(&p, 2)]));
    let results = futures_util::future::join_all(attempts).await;
    let reserved = results
        .iter()
        .filter(|r| matches!(r, Ok(ReservationOutcome::Reserved)))
        .count();
    let repeated = results
        .iter()
        .filter(|r| matches!(r, Ok(ReservationOutcome::AlreadyReserved)))
        .count();
    assert_eq!((reserved, repeated), (1, 5));
    assert_eq!(app.stock_of(&admin, &p).await, 8);
}

#[tokio::test]
async fn release_and_commit_are_idempotent_and_exclusive() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let p = app.product(&admin, json!({"stock": 10})).await;
    let (released, committed) = (Uuid::new_v4(), Uuid::new_v4());
    reserve(&app, released, vec![line(&p, 3)])
        .await
        .expect("reserved");
    reserve(&app, committed, vec![line(&p, 2)])
        .await
        .expect("reserved");
    assert_eq!(app.stock_of(&admin, &p).await, 5);

    app.actors
        .catalog
        .call(ReleaseReservation(released))
        .await
        .expect("released");
    app.actors
        .catalog
        .call(ReleaseReservation(released))
        .await
        .expect("released twice is a no-op");
    app.actors
        .catalog
        .call(ReleaseReservation(Uuid::new_v4()))
        .await
        .expect("unknown is a no-op");
    assert_eq!(app.stock_of(&admin, &p).await, 8);
    let r = app.actors.catalog.call(CommitReservation(released)).await;
    assert!(matches!(
        r,
        Err(CallError::Domain(CatalogError::ReservationNotHeld(_)))
    ));

    app.actors
        .catalog
        .call(CommitReservation(committed))
        .await
        .expect("committed");
    app.actors
        .catalog
        .call(CommitReservation(committed))
        .await
        .expect("committed twice is a no-op");
    let r = app.actors.catalog.call(ReleaseReservation(committed)).await;
    assert!(matches!(
        r,
        Err(CallError::Domain(CatalogError::ReservationNotHeld(_)))
    ));
    assert_eq!(
        app.stock_of(&admin, &p).await,
        8,
        "committed stock stays sold"
    );
    // A product held by an order cannot be deleted.
    let r = app
        .delete(
            &format!("/api/v1/products/{}/", str_of(&p["id"])),
            Some(&admin),
        )
        .await;
    assert_eq!(r.status(), 409);
}

#[tokio::test]
async fn uncommitted_reservations_expire_back_into_stock() {
    let app = TestApp::spawn_with(|s| {
        // The shortest reservation the settings allow: it must outlive a
        // pending order and the sweep that expires it.
        s.catalog.reservation_ttl_secs = 3;
        s.orders.pending_ttl_secs = 1;
        s.orders.sweep_interval_secs = 1;
        s.catalog.sweep_interval_secs = 1;
    })
    .await;
    let (_, admin) = app.admin().await;
    let p = app.product(&admin, json!({"stock": 4})).await;
    let id = Uuid::new_v4();
    reserve(&app, id, vec![line(&p, 4)])
        .await
        .expect("reserved");
    assert_eq!(app.stock_of(&admin, &p).await, 0);
    let mut restored = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if app.stock_of(&admin, &p).await == 4 {
            restored = true;
            break;
        }
    }
    assert!(restored, "the sweep returned the stock");
    let r = app.actors.catalog.call(CommitReservation(id)).await;
    assert!(matches!(
        r,
        Err(CallError::Domain(CatalogError::ReservationNotHeld(_)))
    ));
}

#[tokio::test]
async fn snapshots_describe_known_products_only() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let a = app
        .product(
            &admin,
            json!({"name": "A", "price": 250, "currency": "USD", "stock": 3}),
        )
        .await;
    let b = app
        .product(&admin, json!({"name": "B", "is_active": false}))
        .await;
    let ids = vec![
        str_of(&a["id"]).parse().expect("uuid"),
        str_of(&b["id"]).parse().expect("uuid"),
        Uuid::new_v4(),
    ];
    let found = app
        .actors
        .catalog
        .call(GetItemSnapshots(ids.clone()))
        .await
        .expect("snapshots");
    // A product without options names its one variant, of the same id.
    assert_eq!(found.resolved[&ids[0]], Resolved::Variant(ids[0]));
    assert_eq!(found.resolved[&ids[2]], Resolved::Unknown);
    let snapshots: Vec<_> = found.snapshots.into_values().collect();
    assert_eq!(snapshots.len(), 2);
    let a_snap = snapshots.iter().find(|s| s.name == "A").expect("A");
    assert_eq!(
        (
            a_snap.price,
            a_snap.currency.as_str(),
            a_snap.stock,
            a_snap.is_active
        ),
        (250, "USD", 3, true)
    );
    assert!(
        !snapshots
            .iter()
            .find(|s| s.name == "B")
            .expect("B")
            .is_active
    );
}
