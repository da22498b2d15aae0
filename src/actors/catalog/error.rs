//! Everything the catalog domain can answer besides success.

use crate::actors::runtime::HandlerPanicked;
use crate::domain::catalog::location::StockRefusal;
use crate::domain::catalog::stock::Shortfall;
use crate::domain::catalog::variant::OptionChangeRefusal;
use crate::domain::validation::ValidationErrors;

/// Errors of the catalog domain. Mapped to HTTP in `http::error` only.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// Input broke a field rule.
    #[error(transparent)]
    Validation(ValidationErrors),
    /// A listing filter names something that does not exist.
    #[error(transparent)]
    InvalidQuery(ValidationErrors),
    /// No such category.
    #[error("category not found")]
    CategoryNotFound,
    /// No such product (or not visible to the caller).
    #[error("product not found")]
    ProductNotFound,
    /// A unique field is taken.
    #[error("{field} is already used by another {entity}")]
    Taken {
        entity: &'static str,
        field: &'static str,
    },
    /// The category still has products.
    #[error("the category still has products; move or delete them first")]
    CategoryHasProducts,
    /// The category still has sub-categories.
    #[error("the category still has sub-categories; move or delete them first")]
    CategoryHasChildren,
    /// The product is held by reservations; deactivate it instead.
    #[error("the product is part of orders; deactivate it instead of deleting it")]
    ProductInUse,
    /// No such variant of this product.
    #[error("variant not found")]
    VariantNotFound,
    /// Another variant of the product names the same option values.
    #[error("another variant of this product has these option values")]
    VariantExists,
    /// The variant is its product's last: a product has at least one.
    #[error("a product keeps at least one variant; delete the product instead")]
    LastVariant,
    /// Open reservations (or past orders' reservations) hold the variant.
    #[error("orders hold this variant; deactivate it instead of deleting it")]
    VariantInUse,
    /// The product's options cannot change so while it has these variants.
    #[error("{0}")]
    OptionChange(OptionChangeRefusal),
    /// No such image of this product.
    #[error("image not found")]
    ImageNotFound,
    /// Not every line of a reservation can be met; nothing was reserved.
    #[error("not enough stock for {} line(s)", .0.len())]
    InsufficientStock(Vec<Shortfall>),
    /// The reservation is not held any more (committed, released or expired).
    #[error("the reservation is {0}")]
    ReservationNotHeld(String),
    /// No such stock location.
    #[error("stock location not found")]
    LocationNotFound,
    /// The location has stock history; deactivate it instead.
    #[error("the location has stock history; deactivate it instead of deleting it")]
    LocationInUse,
    /// A stock write was refused; nothing changed.
    #[error("{}", stock_refusal_text(.0))]
    Stock(StockRefusal),
    /// The handler panicked.
    #[error(transparent)]
    Panicked(#[from] HandlerPanicked),
    /// The catalog database cannot answer now (down, pool exhausted, a lock
    /// conflict that outlived its retries): retry later.
    #[error("the catalog database is unavailable: {0:#}")]
    Unavailable(anyhow::Error),
    /// Anything else: a bug. Details are logged, not sent.
    #[error(transparent)]
    Unexpected(anyhow::Error),
}

crate::actors::failure::classified_failures!(CatalogError, "catalog database");

impl CatalogError {
    /// A copy for every waiter of a shared (single-flight) load. Unexpected
    /// errors keep their message; the original stays in the first log.
    pub fn duplicate(&self) -> Self {
        match self {
            CatalogError::Validation(e) => CatalogError::Validation(e.clone()),
            CatalogError::InvalidQuery(e) => CatalogError::InvalidQuery(e.clone()),
            CatalogError::CategoryNotFound => CatalogError::CategoryNotFound,
            CatalogError::ProductNotFound => CatalogError::ProductNotFound,
            CatalogError::Taken { entity, field } => CatalogError::Taken { entity, field },
            CatalogError::CategoryHasProducts => CatalogError::CategoryHasProducts,
            CatalogError::CategoryHasChildren => CatalogError::CategoryHasChildren,
            CatalogError::ProductInUse => CatalogError::ProductInUse,
            CatalogError::VariantNotFound => CatalogError::VariantNotFound,
            CatalogError::VariantExists => CatalogError::VariantExists,
            CatalogError::LastVariant => CatalogError::LastVariant,
            CatalogError::VariantInUse => CatalogError::VariantInUse,
            CatalogError::OptionChange(r) => CatalogError::OptionChange(r.clone()),
            CatalogError::ImageNotFound => CatalogError::ImageNotFound,
            CatalogError::InsufficientStock(s) => CatalogError::InsufficientStock(s.clone()),
            CatalogError::ReservationNotHeld(s) => CatalogError::ReservationNotHeld(s.clone()),
            CatalogError::LocationNotFound => CatalogError::LocationNotFound,
            CatalogError::LocationInUse => CatalogError::LocationInUse,
            CatalogError::Stock(r) => CatalogError::Stock(r.clone()),
            CatalogError::Panicked(p) => CatalogError::Panicked(*p),
            // The copy keeps the class: an outage stays an outage for
            // every caller that shared the request.
            CatalogError::Unavailable(e) => CatalogError::Unavailable(anyhow::anyhow!("{e:#}")),
            CatalogError::Unexpected(e) => CatalogError::Unexpected(anyhow::anyhow!("{e:#}")),
        }
    }
}

fn stock_refusal_text(refusal: &StockRefusal) -> String {
    match refusal {
        StockRefusal::NoActiveLocation => {
            "no stock location is active to hold this stock; create or activate one".into()
        }
        StockRefusal::BelowHeld { location_id, held } => format!(
            "location {location_id} would hold fewer units than the {held} open reservations \
             hold there (or fewer than none); set stock per location with PUT .../stock/"
        ),
        StockRefusal::UnknownLocation(id) => format!("no stock location has id {id}"),
    }
}
