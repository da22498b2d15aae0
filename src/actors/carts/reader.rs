//! `GET /cart/` at the edge, without a hop: a customer's cart as stored
//! (the carts' read view), each line's variant (the catalog's read view)
//! and the shipping and tax rules (orders' copy), priced by the same pure
//! functions the carts actor uses. Anything missing, and the caller asks
//! the actor, whose answer fills what was missing.
//!
//! Each copy is exactly as fresh as the actor path: the views are dropped
//! on every instance before a write to what they hold answers, and the
//! rules are the very copy orders answers `GetPricingRules { fresh: false }`
//! from. A cart with a discount code is never answered here: whether the
//! code applies hangs on other customers' uses and on the clock.

use std::collections::HashMap;
use std::sync::Arc;

use uuid::Uuid;

use crate::actors::orders::rules::RulesCache;
use crate::actors::read_view::{cart_key, CartsView, CatalogView};
use crate::domain::carts::{self, CartView, ProductNow};
use crate::store::catalog::VariantSnapshot;

/// Prices customers' carts from in-process copies.
#[derive(Clone)]
pub struct CartReader {
    carts: CartsView,
    catalog: CatalogView,
    rules: Arc<RulesCache>,
    max_quantity: i32,
}

impl CartReader {
    /// A reader over the carts' and the catalog's views and orders' rules.
    pub fn new(
        carts: CartsView,
        catalog: CatalogView,
        rules: Arc<RulesCache>,
        max_quantity: i32,
    ) -> Self {
        Self {
            carts,
            catalog,
            rules,
            max_quantity,
        }
    }

    /// The carts' view, for its figures.
    pub fn view(&self) -> &CartsView {
        &self.carts
    }

    /// `user_id`'s cart priced now, if every part of it is held; `None`
    /// means ask the carts actor.
    pub fn cart(&self, user_id: Uuid) -> Option<CartView> {
        let stored = self.carts.get(&cart_key(user_id))?;
        let contents = &stored.contents;
        if contents.promotion.is_some() {
            return None;
        }
        let rules = self.rules.current()?;
        let mut products = HashMap::with_capacity(contents.lines.len());
        for line in &contents.lines {
            let variant = self.catalog.variant(line.variant_id)?;
            products.insert(variant.id, product_now(&variant));
        }
        let cart = carts::view(
            stored.cart_id,
            &contents.lines,
            &products,
            self.max_quantity,
            contents.updated_at,
        );
        Some(carts::with_charges(
            cart,
            &products,
            &rules,
            contents.shipping.as_ref(),
        ))
    }
}

/// A catalog variant as carts price it.
pub fn product_now(s: &VariantSnapshot) -> ProductNow {
    ProductNow {
        product_id: s.product_id,
        sku: s.sku.clone(),
        options: s.options.clone(),
        name: s.name.clone(),
        slug: s.slug.clone(),
        price: s.price,
        currency: s.currency.clone(),
        stock: s.stock,
        is_active: s.is_active,
        weight_grams: s.weight_grams,
        requires_shipping: s.requires_shipping,
        tax_class: s.tax_class.clone(),
    }
}
