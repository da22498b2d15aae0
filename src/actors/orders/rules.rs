//! The shop's shipping and tax rules, kept by the orders domain: admin
//! messages for zones, methods, tax classes and rates, and the rules as one
//! value for pricing (cached briefly, re-read fresh at checkout).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::Message;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::error::OrdersError;
use super::handlers::OrdersService;
use crate::domain::pricing::config::{MethodDraft, TaxRateDraft, ZoneDraft};
use crate::domain::pricing::rules::Rules;
use crate::domain::pricing::shipping::Rate;
use crate::domain::pricing::totals::TaxMode;
use crate::domain::validation::ValidationErrors;
use crate::store::shipping::{self as shipping_store, MethodRow, ZoneRow};
use crate::store::tax::{self as tax_store, constraints, ClassRow, RateRow};

/// How long the rules a cart is shown with may be old. Checkout always
/// reads them fresh, so this only bounds how soon another instance's cart
/// views show an admin's change.
pub const RULES_TTL: Duration = Duration::from_secs(2);

/// The rules as last read, shared by every handler of one instance.
pub struct RulesCache {
    mode: TaxMode,
    /// When the rules were read (or confirmed current), the rules'
    /// version then, and the rules.
    slot: Mutex<Option<(Instant, i64, Arc<Rules>)>>,
}

impl RulesCache {
    /// An empty cache for a shop in `mode`.
    pub fn new(mode: TaxMode) -> Self {
        Self {
            mode,
            slot: Mutex::new(None),
        }
    }

    /// The rules, if read within [`RULES_TTL`].
    pub fn current(&self) -> Option<Arc<Rules>> {
        let slot = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        slot.as_ref()
            .filter(|(at, _, _)| at.elapsed() < RULES_TTL)
            .map(|(_, _, r)| r.clone())
    }

    /// The rules, if they were read at `version` (which the database has
    /// just said is current): they are then as fresh as a new read.
    fn at_version(&self, version: i64) -> Option<Arc<Rules>> {
        let mut slot = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        let (at, held, rules) = slot.as_mut()?;
        if *held != version {
            return None;
        }
        *at = Instant::now();
        Some(rules.clone())
    }

    fn store(&self, version: i64, rules: Arc<Rules>) {
        *self.slot.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((Instant::now(), version, rules));
    }

    /// Forgets the rules (after a write on this instance).
    pub fn clear(&self) {
        *self.slot.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// A shipping zone as clients see it, with its methods.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ZoneView {
    pub id: Uuid,
    pub name: String,
    /// ISO 3166-1 alpha-2 codes.
    pub countries: Vec<String>,
    /// Empty: the whole of each country.
    pub postal_code_prefixes: Vec<String>,
    pub methods: Vec<MethodView>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ZoneView {
    fn of(row: ZoneRow, methods: Vec<MethodView>) -> Self {
        Self {
            id: row.id,
            name: row.name,
            countries: row.countries,
            postal_code_prefixes: row.postal_code_prefixes,
            methods,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// A shipping method as clients see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct MethodView {
    pub id: Uuid,
    pub zone_id: Uuid,
    pub name: String,
    pub carrier: Option<String>,
    pub currency: String,
    pub rate: Rate,
    /// Free from this subtotal after discount, in minor units.
    pub free_over: Option<i64>,
    pub min_days: Option<i32>,
    pub max_days: Option<i32>,
    /// The tax class shipping is taxed at.
    pub tax_class: String,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<MethodRow> for MethodView {
    fn from(r: MethodRow) -> Self {
        Self {
            id: r.id,
            zone_id: r.zone_id,
            name: r.name,
            carrier: r.carrier,
            currency: r.currency,
            rate: r.rate.0,
            free_over: r.free_over,
            min_days: r.min_days,
            max_days: r.max_days,
            tax_class: r.tax_class,
            is_active: r.is_active,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// A tax class as clients see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TaxClassView {
    pub code: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

impl From<ClassRow> for TaxClassView {
    fn from(r: ClassRow) -> Self {
        Self {
            code: r.code,
            name: r.name,
            created_at: r.created_at,
        }
    }
}

/// A tax rate as clients see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TaxRateView {
    pub id: Uuid,
    pub tax_class: String,
    pub country: String,
    /// `null` for the whole country.
    pub region: Option<String>,
    /// Basis points: 2000 is 20 %.
    pub rate_bp: i32,
    pub created_at: DateTime<Utc>,
}

impl From<RateRow> for TaxRateView {
    fn from(r: RateRow) -> Self {
        Self {
            id: r.id,
            tax_class: r.tax_class,
            country: r.country,
            region: r.region,
            rate_bp: r.rate_bp,
            created_at: r.created_at,
        }
    }
}

/// The shop's pricing rules; `fresh` reads them from the database (as
/// checkout does), else a copy at most [`RULES_TTL`] old may answer.
#[derive(Debug, Message)]
#[rtype(result = "Result<Arc<Rules>, OrdersError>")]
pub struct GetPricingRules {
    pub fresh: bool,
}

/// Every zone with its methods.
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<ZoneView>, OrdersError>")]
pub struct ListShippingZones;

/// One zone with its methods.
#[derive(Debug, Message)]
#[rtype(result = "Result<ZoneView, OrdersError>")]
pub struct GetShippingZone(pub Uuid);

/// Create a zone (`id: None`) or replace one.
#[derive(Debug, Message)]
#[rtype(result = "Result<ZoneView, OrdersError>")]
pub struct PutShippingZone {
    pub id: Option<Uuid>,
    pub draft: ZoneDraft,
}

/// Delete a zone and its methods.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), OrdersError>")]
pub struct DeleteShippingZone(pub Uuid);

/// Every method, or one zone's.
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<MethodView>, OrdersError>")]
pub struct ListShippingMethods {
    pub zone_id: Option<Uuid>,
}

/// One method.
#[derive(Debug, Message)]
#[rtype(result = "Result<MethodView, OrdersError>")]
pub struct GetShippingMethod(pub Uuid);

/// Create a method (`id: None`) or replace one.
#[derive(Debug, Message)]
#[rtype(result = "Result<MethodView, OrdersError>")]
pub struct PutShippingMethod {
    pub id: Option<Uuid>,
    pub draft: MethodDraft,
}

/// Delete a method.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), OrdersError>")]
pub struct DeleteShippingMethod(pub Uuid);

/// Every tax class.
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<TaxClassView>, OrdersError>")]
pub struct ListTaxClasses;

/// Create a tax class.
#[derive(Debug, Message)]
#[rtype(result = "Result<TaxClassView, OrdersError>")]
pub struct CreateTaxClass {
    pub code: String,
    pub name: String,
}

/// Delete a tax class and its rates (`standard` cannot be deleted).
#[derive(Debug, Message)]
#[rtype(result = "Result<(), OrdersError>")]
pub struct DeleteTaxClass(pub String);

/// Every tax rate.
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<TaxRateView>, OrdersError>")]
pub struct ListTaxRates;

/// One tax rate.
#[derive(Debug, Message)]
#[rtype(result = "Result<TaxRateView, OrdersError>")]
pub struct GetTaxRate(pub Uuid);

/// Create a rate (`id: None`) or replace one.
#[derive(Debug, Message)]
#[rtype(result = "Result<TaxRateView, OrdersError>")]
pub struct PutTaxRate {
    pub id: Option<Uuid>,
    pub draft: TaxRateDraft,
}

/// Delete a tax rate.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), OrdersError>")]
pub struct DeleteTaxRate(pub Uuid);

const UNIQUE_VIOLATION: &str = "23505";
const FOREIGN_KEY_VIOLATION: &str = "23503";

fn violated(e: &sqlx::Error) -> Option<(String, String)> {
    match e {
        sqlx::Error::Database(db) => Some((
            db.code()?.into_owned(),
            db.constraint().unwrap_or_default().to_owned(),
        )),
        _ => None,
    }
}

/// A tax write's constraint violation as the client's mistake.
fn tax_write_error(e: sqlx::Error) -> OrdersError {
    match violated(&e) {
        Some((code, c)) if code == UNIQUE_VIOLATION && c == constraints::RATE_PLACE => {
            OrdersError::RuleConflict {
                code: "rate_exists",
                detail: "this class already has a rate for this country and region".into(),
            }
        }
        Some((code, c)) if code == UNIQUE_VIOLATION && c == constraints::CLASS_CODE => {
            OrdersError::RuleConflict {
                code: "code_taken",
                detail: "a tax class has this code".into(),
            }
        }
        Some((code, c)) if code == FOREIGN_KEY_VIOLATION && c == constraints::RATE_CLASS => {
            OrdersError::Validation(ValidationErrors::single(
                "tax_class",
                "unknown",
                "no tax class has this code",
            ))
        }
        _ => e.into(),
    }
}

/// A method write naming a zone that does not exist.
fn method_write_error(e: sqlx::Error) -> OrdersError {
    match violated(&e) {
        Some((code, _)) if code == FOREIGN_KEY_VIOLATION => OrdersError::Validation(
            ValidationErrors::single("zone_id", "unknown", "no shipping zone has this id"),
        ),
        _ => e.into(),
    }
}

impl OrdersService {
    /// The rules from the database.
    /// Reads the rules afresh. The version is read first: a write landing
    /// between it and the tables only makes the next fresh read load them
    /// again.
    async fn load_rules(&self, version: i64) -> Result<Arc<Rules>, OrdersError> {
        let pool = self.pool();
        let (zones, methods, rates) = tokio::try_join!(
            shipping_store::zones(pool),
            shipping_store::methods(pool, None),
            tax_store::rates(pool),
        )?;
        let rules = Arc::new(Rules {
            zones: zones.iter().map(ZoneRow::rule).collect(),
            methods: methods.iter().map(MethodRow::rule).collect(),
            rates: rates.iter().map(RateRow::rule).collect(),
            mode: self.rules_cache().mode,
        });
        self.rules_cache().store(version, rules.clone());
        Ok(rules)
    }

    /// The rules: as cached for a while, or (`fresh`, at checkout) as they
    /// are now. Fresh costs one read of the rules' version, and the
    /// tables only when any of them changed since they were cached.
    pub async fn pricing_rules(&self, msg: GetPricingRules) -> Result<Arc<Rules>, OrdersError> {
        if !msg.fresh {
            if let Some(rules) = self.rules_cache().current() {
                return Ok(rules);
            }
        }
        let version = shipping_store::rules_version(self.pool()).await?;
        if let Some(rules) = self.rules_cache().at_version(version) {
            return Ok(rules);
        }
        self.load_rules(version).await
    }

    async fn zone_view(&self, row: ZoneRow) -> Result<ZoneView, OrdersError> {
        let methods = shipping_store::methods(self.pool(), Some(row.id)).await?;
        Ok(ZoneView::of(
            row,
            methods.into_iter().map(MethodView::from).collect(),
        ))
    }

    pub async fn list_zones(&self, _: ListShippingZones) -> Result<Vec<ZoneView>, OrdersError> {
        let pool = self.pool();
        let (zones, methods) = tokio::try_join!(
            shipping_store::zones(pool),
            shipping_store::methods(pool, None)
        )?;
        Ok(zones
            .into_iter()
            .map(|z| {
                let of_zone = methods
                    .iter()
                    .filter(|m| m.zone_id == z.id)
                    .cloned()
                    .map(MethodView::from)
                    .collect();
                ZoneView::of(z, of_zone)
            })
            .collect())
    }

    pub async fn get_zone(&self, msg: GetShippingZone) -> Result<ZoneView, OrdersError> {
        let row = shipping_store::zone(self.pool(), msg.0)
            .await?
            .ok_or(OrdersError::RuleNotFound("shipping zone"))?;
        self.zone_view(row).await
    }

    pub async fn put_zone(&self, msg: PutShippingZone) -> Result<ZoneView, OrdersError> {
        let draft = msg.draft.validate().map_err(OrdersError::Validation)?;
        let row = match msg.id {
            None => shipping_store::insert_zone(self.pool(), Uuid::new_v4(), &draft).await?,
            Some(id) => shipping_store::update_zone(self.pool(), id, &draft)
                .await?
                .ok_or(OrdersError::RuleNotFound("shipping zone"))?,
        };
        self.rules_cache().clear();
        self.zone_view(row).await
    }

    pub async fn delete_zone(&self, msg: DeleteShippingZone) -> Result<(), OrdersError> {
        if !shipping_store::delete_zone(self.pool(), msg.0).await? {
            return Err(OrdersError::RuleNotFound("shipping zone"));
        }
        self.rules_cache().clear();
        Ok(())
    }

    pub async fn list_methods(
        &self,
        msg: ListShippingMethods,
    ) -> Result<Vec<MethodView>, OrdersError> {
        let rows = shipping_store::methods(self.pool(), msg.zone_id).await?;
        Ok(rows.into_iter().map(MethodView::from).collect())
    }

    pub async fn get_method(&self, msg: GetShippingMethod) -> Result<MethodView, OrdersError> {
        shipping_store::method(self.pool(), msg.0)
            .await?
            .map(MethodView::from)
            .ok_or(OrdersError::RuleNotFound("shipping method"))
    }

    pub async fn put_method(&self, msg: PutShippingMethod) -> Result<MethodView, OrdersError> {
        let fields = msg.draft.validate().map_err(OrdersError::Validation)?;
        let row = match msg.id {
            None => shipping_store::insert_method(self.pool(), Uuid::new_v4(), &fields)
                .await
                .map_err(method_write_error)?,
            Some(id) => shipping_store::update_method(self.pool(), id, &fields)
                .await
                .map_err(method_write_error)?
                .ok_or(OrdersError::RuleNotFound("shipping method"))?,
        };
        self.rules_cache().clear();
        Ok(row.into())
    }

    pub async fn delete_method(&self, msg: DeleteShippingMethod) -> Result<(), OrdersError> {
        if !shipping_store::delete_method(self.pool(), msg.0).await? {
            return Err(OrdersError::RuleNotFound("shipping method"));
        }
        self.rules_cache().clear();
        Ok(())
    }

    pub async fn list_tax_classes(
        &self,
        _: ListTaxClasses,
    ) -> Result<Vec<TaxClassView>, OrdersError> {
        let rows = tax_store::classes(self.pool()).await?;
        Ok(rows.into_iter().map(TaxClassView::from).collect())
    }

    pub async fn create_tax_class(&self, msg: CreateTaxClass) -> Result<TaxClassView, OrdersError> {
        let mut errors = ValidationErrors::new();
        let code = crate::domain::pricing::config::check_class_code(&mut errors, "code", &msg.code);
        let name = msg.name.trim().to_owned();
        if name.is_empty() {
            errors.add("name", "blank", "name is required");
        } else if name.chars().count() > 200 {
            errors.add("name", "too_long", "name must have at most 200 characters");
        }
        errors.into_result().map_err(OrdersError::Validation)?;
        let row = tax_store::insert_class(self.pool(), &code, &name)
            .await
            .map_err(tax_write_error)?;
        Ok(row.into())
    }

    pub async fn delete_tax_class(&self, msg: DeleteTaxClass) -> Result<(), OrdersError> {
        if msg.0 == crate::domain::pricing::rules::STANDARD_CLASS {
            return Err(OrdersError::RuleConflict {
                code: "class_required",
                detail: "the standard class is every product's default and cannot be deleted"
                    .into(),
            });
        }
        if !tax_store::delete_class(self.pool(), &msg.0).await? {
            return Err(OrdersError::RuleNotFound("tax class"));
        }
        self.rules_cache().clear();
        Ok(())
    }

    pub async fn list_tax_rates(&self, _: ListTaxRates) -> Result<Vec<TaxRateView>, OrdersError> {
        let rows = tax_store::rates(self.pool()).await?;
        Ok(rows.into_iter().map(TaxRateView::from).collect())
    }

    pub async fn get_tax_rate(&self, msg: GetTaxRate) -> Result<TaxRateView, OrdersError> {
        tax_store::rate(self.pool(), msg.0)
            .await?
            .map(TaxRateView::from)
            .ok_or(OrdersError::RuleNotFound("tax rate"))
    }

    pub async fn put_tax_rate(&self, msg: PutTaxRate) -> Result<TaxRateView, OrdersError> {
        let draft = msg.draft.validate().map_err(OrdersError::Validation)?;
        let row = match msg.id {
            None => tax_store::insert_rate(self.pool(), Uuid::new_v4(), &draft)
                .await
                .map_err(tax_write_error)?,
            Some(id) => tax_store::update_rate(self.pool(), id, &draft)
                .await
                .map_err(tax_write_error)?
                .ok_or(OrdersError::RuleNotFound("tax rate"))?,
        };
        self.rules_cache().clear();
        Ok(row.into())
    }

    pub async fn delete_tax_rate(&self, msg: DeleteTaxRate) -> Result<(), OrdersError> {
        if !tax_store::delete_rate(self.pool(), msg.0).await? {
            return Err(OrdersError::RuleNotFound("tax rate"));
        }
        self.rules_cache().clear();
        Ok(())
    }
}
