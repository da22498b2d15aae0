//! Promotions (discount codes), owned by the carts actor: their uses are
//! counted in the carts database, in the same transaction as the checkout
//! that takes one. The messages the carts actor answers about them, and
//! the wire type they answer with; the work is in `handlers/promotions.rs`.

use actix::Message;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::error::CartsError;
use crate::domain::carts::CartView;
use crate::domain::pagination::PageRequest;
use crate::domain::promotions::{Promotion, PromotionPatch};
use crate::store::promotions::PromotionRow;

/// A promotion as admins see it, with its held uses.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PromotionView {
    pub id: Uuid,
    /// Upper case; matched case-insensitively.
    pub code: String,
    /// `percent` or `fixed`.
    pub kind: String,
    /// Percent (1-100), or minor units of `currency`.
    pub value: i64,
    pub currency: Option<String>,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub min_subtotal: i64,
    pub max_uses: Option<i64>,
    pub max_uses_per_customer: Option<i64>,
    pub active: bool,
    /// Uses counted now (orders placed with it and not cancelled or
    /// expired unpaid).
    pub uses: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<PromotionRow> for PromotionView {
    fn from(r: PromotionRow) -> Self {
        Self {
            id: r.id,
            code: r.code,
            kind: r.kind,
            value: r.value,
            currency: r.currency,
            starts_at: r.starts_at,
            ends_at: r.ends_at,
            min_subtotal: r.min_subtotal,
            max_uses: r.max_uses,
            max_uses_per_customer: r.max_uses_per_customer,
            active: r.active,
            uses: r.uses,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// Create a promotion (the rule is validated here).
#[derive(Debug, Message)]
#[rtype(result = "Result<PromotionView, CartsError>")]
pub struct CreatePromotion(pub Promotion);

/// One page of promotions, newest first.
#[derive(Debug, Message)]
#[rtype(result = "Result<(Vec<PromotionView>, i64), CartsError>")]
pub struct ListPromotions(pub PageRequest);

/// One promotion.
#[derive(Debug, Message)]
#[rtype(result = "Result<PromotionView, CartsError>")]
pub struct GetPromotion(pub Uuid);

/// Change a promotion: the patch edits its current rule, which is then
/// validated whole.
#[derive(Debug, Message)]
#[rtype(result = "Result<PromotionView, CartsError>")]
pub struct UpdatePromotion {
    pub id: Uuid,
    pub patch: PromotionPatch,
}

/// Delete a promotion.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), CartsError>")]
pub struct DeletePromotion(pub Uuid);

/// Put a discount code on the customer's cart, if it applies now.
#[derive(Debug, Message)]
#[rtype(result = "Result<CartView, CartsError>")]
pub struct ApplyPromotion {
    pub user_id: Uuid,
    pub code: String,
}

/// Take the discount code off the customer's cart.
#[derive(Debug, Message)]
#[rtype(result = "Result<CartView, CartsError>")]
pub struct RemovePromotion {
    pub user_id: Uuid,
}

/// Give back the uses of orders cancelled or expired unpaid (and of
/// checkouts that placed nothing), settle those of paid orders; a timer
/// sends it. `min_age_secs` leaves running checkouts alone.
#[derive(Debug, Message)]
#[rtype(result = "Result<u64, CartsError>")]
pub struct ReconcilePromotionUses {
    pub min_age_secs: i64,
}
