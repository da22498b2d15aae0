//! `emporium recommend-eval`: the offline evaluation of every
//! recommendation signal and the served blend, on a CSV of interactions
//! (any public order data set) or on the shop's own databases. The same
//! code as the served model (`domain::recommend`), not a copy.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};

use crate::config::{Domain, Settings};
use crate::domain::recommendations::assemble::{assemble, PurchaseInput};
use crate::domain::recommendations::blend::evaluate;
use crate::domain::recommendations::csv_input::{read_interactions, read_products};
use crate::domain::recommendations::data::Dataset;
use crate::domain::recommendations::model::METHODS;
use crate::store;

/// Products read per query from the catalog.
const PAGE: i64 = 5_000;

fn spinner(message: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(message.to_owned());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// Reads the CSV files into a dataset.
pub fn load_csv(interactions: &Path, products: Option<&Path>) -> anyhow::Result<Dataset> {
    let mut data = Dataset::new();
    let file = std::fs::File::open(interactions).with_context(|| {
        format!(
            "cannot open {}; pass a CSV with columns user_id, order_id, order_number, product_id",
            interactions.display()
        )
    })?;
    read_interactions(std::io::BufReader::new(file), &mut data)
        .map_err(|e| anyhow::anyhow!("{}: {e}", interactions.display()))?;
    if let Some(path) = products {
        let file =
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        read_products(std::io::BufReader::new(file), &mut data)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    }
    Ok(data)
}

/// Reads the shop's products (with category paths, tags and price bands)
/// and purchases through the store functions the actors use, and
/// assembles them as the served model does.
pub async fn load_db(settings: &Settings) -> anyhow::Result<Dataset> {
    let catalog = store::database::lazy_pool(&settings.database, Domain::Catalog)?;
    let orders = store::database::lazy_pool(&settings.database, Domain::Orders)?;
    let bar = spinner("reading products and purchases");
    let categories = store::catalog::category_parents(&catalog).await.context(
        "reading categories; is the database migrated (emporium migrate) and seeded (emporium seed-demo)?",
    )?;
    let mut products = Vec::new();
    let mut after = None;
    loop {
        let page = store::catalog::product_features_page(&catalog, after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        products.extend(
            page.into_iter()
                .map(store::catalog::ProductFeatureRow::into_input),
        );
    }
    let purchases: Vec<PurchaseInput> = store::orders::purchase_history(&orders, &[], 50_000_000)
        .await?
        .into_iter()
        .map(store::orders::PurchaseRow::into_input)
        .collect();
    bar.finish_and_clear();
    catalog.close().await;
    orders.close().await;
    Ok(assemble(&categories, &products, &purchases))
}

/// Evaluates every method on `data` at cut-off `k` and returns the JSON
/// report, showing progress on the terminal.
pub fn run(data: &Dataset, k: usize, max_users: Option<usize>) -> serde_json::Value {
    let bar = spinner(&format!(
        "evaluating {} users, {} products, {} orders at k = {k}",
        data.user_ids.len(),
        data.item_ids.len(),
        data.orders.len()
    ));
    let started = Instant::now();
    let (reports, weights) = evaluate(data, k, max_users);
    bar.finish_and_clear();
    let mut methods = serde_json::Map::new();
    for (name, report) in &reports {
        let value = serde_json::json!({
            format!("recall@{k}"): report.scores.recall,
            format!("ndcg@{k}"): report.scores.ndcg,
            format!("hit_rate@{k}"): report.scores.hit_rate,
            "users": report.scores.users,
            "seconds": report.seconds,
        });
        methods.insert((*name).to_owned(), value);
    }
    let names: Vec<&str> = METHODS.iter().map(|m| m.as_str()).collect();
    let recall = |name: &str| {
        reports
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(0.0, |(_, r)| r.scores.recall)
    };
    eprintln!(
        "recommend-eval: blend recall@{k} {:.4} vs popularity {:.4} ({:.2}×) over {} users in {:.1} s",
        recall("blend"),
        recall("popularity"),
        recall("blend") / recall("popularity").max(f64::EPSILON),
        reports.first().map_or(0, |(_, r)| r.scores.users),
        started.elapsed().as_secs_f64()
    );
    serde_json::json!({
        "k": k,
        "users": data.user_ids.len(),
        "products": data.item_ids.len(),
        "orders": data.orders.len(),
        "content_features": data.has_features(),
        "blend_weights": names.iter().zip(weights.0).map(|(n, w)| ((*n).to_owned(), serde_json::json!(w))).collect::<serde_json::Map<_, _>>(),
        "methods": methods,
    })
}
