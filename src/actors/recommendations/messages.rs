//! Messages the recommender answers.

use actix::Message;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::error::RecommenderError;
use crate::domain::recommendations::metrics::Scores;

/// One ranked product.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ranked {
    pub product_id: Uuid,
    pub score: f32,
    pub reason: String,
}

/// A ranking and where it came from.
#[derive(Debug, Clone, Serialize)]
pub struct Ranking {
    pub model_version: String,
    /// `personal`, `popular`, `similar` or `bought_together`.
    pub strategy: &'static str,
    pub results: Vec<Ranked>,
}

/// Personal recommendations for `user` (popular ones without a user, or
/// for a user the model knows nothing of), leaving out `exclude`.
#[derive(Debug, Message)]
#[rtype(result = "Result<Ranking, RecommenderError>")]
pub struct Recommend {
    pub user: Option<Uuid>,
    pub limit: usize,
    pub exclude: Vec<Uuid>,
}

/// Products whose content is most like `product`'s.
#[derive(Debug, Message)]
#[rtype(result = "Result<Ranking, RecommenderError>")]
pub struct Similar {
    pub product: Uuid,
    pub limit: usize,
}

/// Products most bought with `product`, topped up with similar ones when
/// the co-purchase graph knows too few.
#[derive(Debug, Message)]
#[rtype(result = "Result<Ranking, RecommenderError>")]
pub struct BoughtTogether {
    pub product: Uuid,
    pub limit: usize,
}

/// Start a build now (in the background); `false` if one is running.
#[derive(Debug, Message)]
#[rtype(result = "Result<bool, RecommenderError>")]
pub struct Rebuild;

/// How a build was judged.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Evaluation {
    pub k: usize,
    pub blend: Scores,
    pub popularity: Scores,
    /// The blend's weights, by signal.
    #[schema(value_type = std::collections::BTreeMap<String, f64>)]
    pub weights: serde_json::Value,
}

/// A build that was not promoted, and why.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Rejected {
    pub at: DateTime<Utc>,
    pub reason: String,
    pub evaluation: Evaluation,
}

/// The live model.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LiveModel {
    pub version: String,
    pub built_at: DateTime<Utc>,
    pub products: usize,
    pub users: usize,
    pub orders: usize,
    pub edges: usize,
    pub build_seconds: f64,
    pub evaluation: Evaluation,
}

/// What `GET /admin/recommendations/` shows.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ModelReport {
    pub live: Option<LiveModel>,
    /// Paid-order events followed from the orders outbox since start-up.
    pub followed_events: u64,
    /// Orders followed since the live model's data was read (counted in
    /// rankings until the next build holds them).
    pub orders_since_build: usize,
    pub last_rejected: Option<Rejected>,
    pub building: bool,
    pub builds: u64,
}

/// The live model and the last rejected build.
#[derive(Debug, Message)]
#[rtype(result = "Result<ModelReport, RecommenderError>")]
pub struct GetModelReport;
