//! The recommender's work: the build pipeline (data by messages, model off
//! the async threads, evaluation, promotion gate, atomic swap) and serving
//! rankings from the live model without locks.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arc_swap::ArcSwapOption;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::error::RecommenderError;
use super::messages::*;
use crate::actors::catalog::messages::{GetCategoryParents, GetProductFeatures};
use crate::actors::catalog::CatalogActor;
use crate::actors::orders::messages::{GetOrderEvents, GetPurchaseHistory};
use crate::actors::orders::OrdersActor;
use crate::actors::runtime::ActorClient;
use crate::config::RecommendationSettings;
use crate::domain::orders::events::OrderEventKind;
use crate::domain::recommendations::assemble::assemble;
use crate::domain::recommendations::blend::build_served;
use crate::domain::recommendations::data::Dataset;
use crate::domain::recommendations::gate::{grown_enough, promote, search_weights_now, LastSearch};
use crate::domain::recommendations::model::{with_recent, Method, Model, Weights, METHODS};
use crate::store::catalog::ProductFeatureRow;
use crate::store::orders::PurchaseRow;

/// Products asked of the catalog per message.
const PAGE: i64 = 5_000;
/// Purchased lines asked of orders in one message.
const MAX_PURCHASES: i64 = 5_000_000;

/// Events younger than this are left for the next look: an event id is
/// assigned before its transaction commits, so a younger one may still be
/// followed by a lower id committing late.
const SETTLE_SECS: i64 = 2;
/// Outbox events read per look.
const FOLLOW_BATCH: i64 = 1_000;

/// Purchases paid since the live model's data was read, followed from the
/// orders outbox by a cursor on event ids: each event is read once, and
/// one whose order the live model already holds is not counted again.
#[derive(Debug, Default)]
struct Overlay {
    cursor: i64,
    /// By user: (event id, order id, products), oldest first.
    purchases: HashMap<Uuid, Vec<(i64, Uuid, Vec<Uuid>)>>,
    applied: u64,
}

/// A promoted model, immutable while served.
pub struct Served {
    pub version: String,
    pub built_at: DateTime<Utc>,
    pub model: Model,
    pub items: Vec<Uuid>,
    pub item_index: HashMap<Uuid, usize>,
    pub user_index: HashMap<Uuid, usize>,
    pub orders: usize,
    /// The orders the model was built from, so followed events are never
    /// counted twice.
    pub order_ids: HashSet<Uuid>,
    pub build_seconds: f64,
    pub evaluation: Evaluation,
}

/// The recommender's state, shared by its handlers and its builds.
#[derive(Clone)]
pub struct RecommenderService {
    catalog: ActorClient<CatalogActor>,
    orders: ActorClient<OrdersActor>,
    live: Arc<ArcSwapOption<Served>>,
    rejected: Arc<Mutex<Option<Rejected>>>,
    building: Arc<AtomicBool>,
    builds: Arc<AtomicU64>,
    overlay: Arc<Mutex<Overlay>>,
    /// A new build may trail the live model's blend recall by this much.
    tolerance: f64,
    k: usize,
    /// Held-out users the gate evaluates at most.
    max_users: usize,
    /// Orders the overlay held (followed, not in the live model) when the
    /// last build began; 0 once a build is promoted. Growth is counted
    /// from here, so a refused build is not retried until the shop grows
    /// again.
    overlay_at_last_build: Arc<AtomicUsize>,
    /// When growth starts a build early: `(fraction, minimum)`.
    growth: (f64, usize),
    /// The last weight search and its weights, which builds reuse until
    /// `search_policy` asks for a new one; cleared when a build is refused.
    last_search: Arc<Mutex<Option<(LastSearch, Weights)>>>,
    /// `(every n builds, growth fraction)`: when to search weights afresh.
    search_policy: (u32, f64),
}

fn parse_ids(ids: &[String]) -> Vec<Uuid> {
    ids.iter()
        .map(|s| Uuid::parse_str(s).unwrap_or_default())
        .collect()
}

impl RecommenderService {
    /// A recommender reading from the catalog and orders services.
    pub fn new(
        catalog: ActorClient<CatalogActor>,
        orders: ActorClient<OrdersActor>,
        settings: &RecommendationSettings,
    ) -> Self {
        Self {
            catalog,
            orders,
            live: Arc::new(ArcSwapOption::empty()),
            rejected: Arc::default(),
            building: Arc::default(),
            builds: Arc::default(),
            overlay: Arc::default(),
            tolerance: settings.promotion_tolerance,
            k: settings.eval_k,
            max_users: settings.eval_max_users,
            overlay_at_last_build: Arc::default(),
            growth: (settings.rebuild_growth, settings.rebuild_min_new_orders),
            last_search: Arc::default(),
            search_policy: (settings.weight_search_every, settings.weight_search_growth),
        }
    }

    /// Whether a build is running now.
    pub fn report_building(&self) -> bool {
        self.building.load(Ordering::SeqCst)
    }

    fn live(&self) -> Result<Arc<Served>, RecommenderError> {
        self.live.load_full().ok_or(RecommenderError::NotReady)
    }

    /// Reads products and purchases by messages, as any other domain would;
    /// also returns the ids of the orders read.
    async fn load(&self) -> Result<(Dataset, HashSet<Uuid>), RecommenderError> {
        let categories = self
            .catalog
            .call(GetCategoryParents)
            .await
            .map_err(|_| RecommenderError::SourceUnavailable("catalog"))?;
        let mut products = Vec::new();
        let mut after = None;
        loop {
            let page = self
                .catalog
                .call(GetProductFeatures { after, limit: PAGE })
                .await
                .map_err(|_| RecommenderError::SourceUnavailable("catalog"))?;
            let Some(last) = page.last() else { break };
            after = Some(last.id);
            let full = page.len() as i64 == PAGE;
            products.extend(page.into_iter().map(ProductFeatureRow::into_input));
            if !full {
                break;
            }
        }
        let purchases: Vec<_> = self
            .orders
            .call(GetPurchaseHistory {
                user_ids: Vec::new(),
                limit: MAX_PURCHASES,
            })
            .await
            .map_err(|_| RecommenderError::SourceUnavailable("orders"))?
            .into_iter()
            .map(PurchaseRow::into_input)
            .collect();
        let order_ids = purchases.iter().map(|p| p.order_id).collect();
        Ok((assemble(&categories, &products, &purchases), order_ids))
    }

    /// Builds, evaluates and (if it passes the gate) promotes a model. Only
    /// one build runs at a time; requests keep the live model meanwhile.
    pub async fn build(&self) -> Result<(), RecommenderError> {
        if self.building.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let result = self.build_now().await;
        self.building.store(false, Ordering::SeqCst);
        result
    }

    async fn build_now(&self) -> Result<(), RecommenderError> {
        let started = Instant::now();
        self.overlay_at_last_build
            .store(self.overlay_orders(), Ordering::SeqCst);
        let (data, order_ids) = self.load().await?;
        let (k, max_users) = (self.k, self.max_users);
        let last_search = self.last_search.lock().ok().and_then(|s| *s);
        let (every, growth) = self.search_policy;
        let reuse = last_search
            .filter(|(last, _)| !search_weights_now(Some(*last), data.orders.len(), every, growth))
            .map(|(_, weights)| weights);
        // CPU-heavy: off the actor's thread.
        let (data, pipeline) = tokio::task::spawn_blocking(move || {
            let pipeline = build_served(&data, k, Some(max_users), reuse);
            (data, pipeline)
        })
        .await
        .map_err(|e| RecommenderError::Unexpected(anyhow::anyhow!("model build failed: {e}")))?;
        let (reports, model, searched) = (pipeline.reports, pipeline.model, pipeline.searched);
        tracing::info!(
            weights_searched = searched,
            seconds = started.elapsed().as_secs_f64(),
            "recommendation model built and evaluated"
        );
        let scores = |name: &str| {
            reports
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, r)| r.scores)
                .unwrap_or_default()
        };
        let evaluation = Evaluation {
            k,
            blend: scores("blend"),
            popularity: scores("popularity"),
            weights: METHODS
                .iter()
                .zip(model.weights.0)
                .map(|(m, w)| (m.as_str().to_owned(), serde_json::json!(w)))
                .collect::<serde_json::Map<_, _>>()
                .into(),
        };
        let live = self.live.load_full();
        let reason = promote(
            evaluation.blend.recall,
            evaluation.popularity.recall,
            live.as_ref().map(|l| l.evaluation.blend.recall),
            self.tolerance,
            k,
        )
        .err();
        let n = self.builds.fetch_add(1, Ordering::SeqCst) + 1;
        if let Ok(mut last) = self.last_search.lock() {
            *last = match (&reason, searched, *last) {
                // A refused build's weights are not trusted again.
                (Some(_), _, _) => None,
                (None, true, _) | (None, false, None) => Some((
                    LastSearch {
                        orders: data.orders.len(),
                        reused: 0,
                    },
                    model.weights,
                )),
                (None, false, Some((search, weights))) => Some((
                    LastSearch {
                        reused: search.reused + 1,
                        ..search
                    },
                    weights,
                )),
            };
        }
        if let Some(reason) = reason {
            tracing::warn!(%reason, "recommendation model not promoted");
            if let Ok(mut slot) = self.rejected.lock() {
                *slot = Some(Rejected {
                    at: Utc::now(),
                    reason,
                    evaluation,
                });
            }
            return Ok(());
        }
        let items = parse_ids(&data.item_ids);
        let users = parse_ids(&data.user_ids);
        let built_at = Utc::now();
        let served = Served {
            version: format!("{n}-{}", built_at.format("%Y%m%dT%H%M%SZ")),
            built_at,
            item_index: items.iter().enumerate().map(|(i, id)| (*id, i)).collect(),
            user_index: users.iter().enumerate().map(|(u, id)| (*id, u)).collect(),
            items,
            orders: data.orders.len(),
            order_ids,
            model,
            build_seconds: started.elapsed().as_secs_f64(),
            evaluation,
        };
        tracing::info!(version = %served.version, products = served.items.len(), "recommendation model promoted");
        let served = Arc::new(served);
        self.live.store(Some(Arc::clone(&served)));
        // What the new model holds is no longer the overlay's to add.
        if let Ok(mut overlay) = self.overlay.lock() {
            for orders in overlay.purchases.values_mut() {
                orders.retain(|(_, order, _)| !served.order_ids.contains(order));
            }
            overlay.purchases.retain(|_, orders| !orders.is_empty());
        }
        self.overlay_at_last_build.store(0, Ordering::SeqCst);
        Ok(())
    }

    /// Followed orders the live model does not hold.
    fn overlay_orders(&self) -> usize {
        self.overlay
            .lock()
            .map(|o| o.purchases.values().map(Vec::len).sum())
            .unwrap_or(0)
    }

    /// Reads new paid-order events from the orders outbox after the cursor
    /// and adds their purchases to the overlay, so they count before the
    /// next rebuild.
    pub async fn follow(&self) -> Result<(), RecommenderError> {
        let cursor = self.overlay.lock().map(|o| o.cursor).unwrap_or(0);
        let events = self
            .orders
            .call(GetOrderEvents {
                after_id: cursor,
                limit: FOLLOW_BATCH,
            })
            .await
            .map_err(|_| RecommenderError::SourceUnavailable("orders"))?;
        let settled = Utc::now() - chrono::Duration::seconds(SETTLE_SECS);
        let live = self.live.load_full();
        let Ok(mut overlay) = self.overlay.lock() else {
            return Ok(());
        };
        for event in events {
            if event.created_at > settled {
                break;
            }
            overlay.cursor = event.id;
            if event.kind != OrderEventKind::OrderPaid {
                continue;
            }
            if live
                .as_ref()
                .is_some_and(|l| l.order_ids.contains(&event.order_id))
            {
                continue;
            }
            let payload = &event.payload.0;
            let Some(user) = payload["user_id"]
                .as_str()
                .and_then(|u| Uuid::parse_str(u).ok())
            else {
                continue;
            };
            let items: Vec<Uuid> = payload["items"]
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|i| {
                            i["product_id"]
                                .as_str()
                                .and_then(|p| Uuid::parse_str(p).ok())
                        })
                        .collect()
                })
                .unwrap_or_default();
            overlay
                .purchases
                .entry(user)
                .or_default()
                .push((event.id, event.order_id, items));
            overlay.applied += 1;
        }
        drop(overlay);
        self.build_if_grown(live.as_ref().map_or(0, |l| l.orders));
        Ok(())
    }

    /// Starts a build in the background when the orders followed since the
    /// last build began, and not in the live model, are enough growth
    /// (`recommendations.rebuild_growth`).
    fn build_if_grown(&self, model_orders: usize) {
        let (fraction, min_new) = self.growth;
        let new_orders = self
            .overlay_orders()
            .saturating_sub(self.overlay_at_last_build.load(Ordering::SeqCst));
        if self.report_building() || !grown_enough(model_orders, new_orders, fraction, min_new) {
            return;
        }
        tracing::info!(
            model_orders,
            new_orders,
            "the shop grew since the last build; rebuilding now"
        );
        let service = self.clone();
        actix_rt::spawn(async move {
            if let Err(e) = service.build().await {
                tracing::warn!(error = %e, "recommendation build after growth failed");
            }
        });
    }

    /// A user's weighted history: the model's, aged by the orders followed
    /// since, plus those orders (the newest weighs 1).
    fn history(&self, live: &Served, user: Option<Uuid>) -> Vec<(usize, f32)> {
        let Some(user) = user else {
            return Vec::new();
        };
        let recent: Vec<Vec<usize>> = self
            .overlay
            .lock()
            .ok()
            .and_then(|o| o.purchases.get(&user).cloned())
            .unwrap_or_default()
            .into_iter()
            .rev()
            .map(|(_, _, items)| {
                items
                    .iter()
                    .filter_map(|p| live.item_index.get(p).copied())
                    .collect()
            })
            .collect();
        let base = live
            .user_index
            .get(&user)
            .map_or(&[][..], |&u| &live.model.histories[u][..]);
        with_recent(base, &recent)
    }

    fn ranking(
        live: &Served,
        strategy: &'static str,
        scored: impl IntoIterator<Item = (usize, f32, String)>,
    ) -> Ranking {
        Ranking {
            model_version: live.version.clone(),
            strategy,
            results: scored
                .into_iter()
                .map(|(i, score, reason)| Ranked {
                    product_id: live.items[i],
                    score,
                    reason,
                })
                .collect(),
        }
    }

    pub async fn recommend(&self, msg: Recommend) -> Result<Ranking, RecommenderError> {
        let live = self.live()?;
        let exclude: HashSet<usize> = msg
            .exclude
            .iter()
            .filter_map(|id| live.item_index.get(id).copied())
            .collect();
        let history = self.history(&live, msg.user);
        let strategy = if history.is_empty() {
            "popular"
        } else {
            "personal"
        };
        let scored = live.model.recommend(&history, msg.limit, &exclude);
        Ok(Self::ranking(
            &live,
            strategy,
            scored
                .into_iter()
                .map(|s| (s.item, s.score, s.because.reason().to_owned())),
        ))
    }

    fn similar_items(live: &Served, item: usize, limit: usize) -> Vec<(usize, f32)> {
        let signal = live.model.signal(Method::ItemCosine, &[(item, 1.0)]);
        signal
            .into_iter()
            .filter(|(i, _)| *i != item && live.model.available.get(*i).copied().unwrap_or(false))
            .take(limit)
            .collect()
    }

    fn item(&self, live: &Served, product: Uuid) -> Result<usize, RecommenderError> {
        live.item_index
            .get(&product)
            .copied()
            .ok_or(RecommenderError::UnknownProduct)
    }

    pub async fn similar(&self, msg: Similar) -> Result<Ranking, RecommenderError> {
        let live = self.live()?;
        let item = self.item(&live, msg.product)?;
        let similar = Self::similar_items(&live, item, msg.limit);
        Ok(Self::ranking(
            &live,
            "similar",
            similar
                .into_iter()
                .map(|(i, s)| (i, s, "similar in category, tags and price".to_owned())),
        ))
    }

    pub async fn bought_together(&self, msg: BoughtTogether) -> Result<Ranking, RecommenderError> {
        let live = self.live()?;
        let item = self.item(&live, msg.product)?;
        let neighbours = live.model.graph.neighbours(item);
        let best = neighbours.first().map_or(1.0, |n| n.1);
        let mut out: Vec<(usize, f32, String)> = neighbours
            .into_iter()
            .filter(|(i, _)| live.model.available.get(*i).copied().unwrap_or(false))
            .take(msg.limit)
            .map(|(i, w)| (i, w / best, "often bought together".to_owned()))
            .collect();
        if out.len() < msg.limit {
            let have: HashSet<usize> = out.iter().map(|(i, _, _)| *i).collect();
            for (i, s) in Self::similar_items(&live, item, msg.limit * 2) {
                if out.len() >= msg.limit {
                    break;
                }
                if !have.contains(&i) {
                    out.push((
                        i,
                        s,
                        "similar product (too few bought-together data)".to_owned(),
                    ));
                }
            }
        }
        Ok(Self::ranking(&live, "bought_together", out))
    }

    pub async fn report(&self, _: GetModelReport) -> Result<ModelReport, RecommenderError> {
        let live = self.live.load_full().map(|l| LiveModel {
            version: l.version.clone(),
            built_at: l.built_at,
            products: l.items.len(),
            users: l.user_index.len(),
            orders: l.orders,
            edges: l.model.graph.edge_count(),
            build_seconds: l.build_seconds,
            evaluation: l.evaluation.clone(),
        });
        let (followed, overlay_orders) = self
            .overlay
            .lock()
            .map(|o| (o.applied, o.purchases.values().map(Vec::len).sum()))
            .unwrap_or((0, 0));
        Ok(ModelReport {
            live,
            followed_events: followed,
            orders_since_build: overlay_orders,
            last_rejected: self.rejected.lock().ok().and_then(|r| r.clone()),
            building: self.building.load(Ordering::SeqCst),
            builds: self.builds.load(Ordering::SeqCst),
        })
    }
}
