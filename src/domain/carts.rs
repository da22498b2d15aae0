//! Carts without I/O: the view computed from the stored lines and the
//! catalog's current rows, the limits on a line, and guest-cart tokens.
//!
//! Prices are never stored as the cart's truth: every view is priced from
//! the catalog at read time. A line whose product went away, inactive, out
//! of stock or into another currency stays in the cart, marked unavailable
//! with a warning, and blocks checkout until it is changed.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use std::collections::HashMap;

use crate::domain::catalog::variant::OptionValues;
use crate::domain::orders::address::ShippingAddress;
use crate::domain::pricing::rules::{
    destination_of, price_checkout, CartLine, Rules, ShippingProblem, STANDARD_CLASS,
};
use crate::domain::pricing::totals::TaxMode;

/// A stored cart line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLine {
    /// The variant held (a default variant's id is its product's).
    pub variant_id: Uuid,
    pub quantity: i32,
    /// The unit price when the line was last added to or changed.
    pub seen_price: i64,
    pub seen_currency: String,
}

/// What the catalog says about a variant (and its product) now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductNow {
    pub product_id: Uuid,
    pub sku: String,
    pub options: OptionValues,
    pub name: String,
    pub slug: String,
    pub price: i64,
    pub currency: String,
    pub stock: i32,
    pub is_active: bool,
    /// What shipping weighs it at.
    pub weight_grams: i32,
    /// Whether it ships.
    pub requires_shipping: bool,
    /// Its product's tax class.
    pub tax_class: String,
}

/// One line as clients see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LineView {
    /// The variant's product (the variant's own id when it no longer
    /// exists).
    pub product_id: Uuid,
    /// The variant in the cart; the id of `…/items/{id}/`.
    pub variant_id: Uuid,
    /// Empty when the product no longer exists.
    pub name: String,
    pub slug: String,
    /// `null` when the variant no longer exists.
    pub sku: Option<String>,
    /// The variant's option values, `{}` for a default variant.
    #[schema(value_type = std::collections::BTreeMap<String, String>)]
    pub options: OptionValues,
    /// Today's price, in minor units.
    pub unit_price: i64,
    pub quantity: i32,
    /// `unit_price × quantity`; 0 for an unavailable line.
    pub line_total: i64,
    /// Whether the line can be checked out as it is.
    pub available: bool,
    /// The most this line may hold now (the stock, at most the cart limit).
    pub max_quantity: i32,
    /// The unit price when the line was last changed, if it differs now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price_changed_from: Option<i64>,
}

/// Something the shopper should know before checking out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Warning {
    /// The line it is about; absent for the promotion's warning.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_id: Option<Uuid>,
    /// `product_unavailable`, `out_of_stock`, `insufficient_stock`,
    /// `currency_mismatch`, `price_changed`, or a promotion's reason
    /// (`promotion_expired`, `promotion_used_up`, ...).
    pub code: &'static str,
    pub message: String,
}

/// A cart as clients see it, computed fresh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CartView {
    pub id: Uuid,
    pub items: Vec<LineView>,
    /// Sum of the available lines, in minor units of `currency`.
    pub subtotal: i64,
    pub discount: i64,
    /// The chosen method and its price now (`PUT /cart/shipping/`).
    pub shipping: Option<CartShipping>,
    /// Tax at the chosen address (0 until one is chosen), shipping's
    /// included.
    pub tax: i64,
    /// Whether the prices include `tax` (then it is not added).
    pub prices_include_tax: bool,
    /// `subtotal - discount + shipping amount`, plus `tax` unless prices
    /// include it: what checkout charges if nothing changes.
    pub total: i64,
    /// The first line's currency; `null` for an empty cart.
    pub currency: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promotion_code: Option<String>,
    pub warnings: Vec<Warning>,
    /// Whether every line is available and the cart is not empty.
    pub checkout_ready: bool,
    pub updated_at: DateTime<Utc>,
}

/// The shipping a cart chose: a method and the address it goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShippingChoice {
    pub method_id: Uuid,
    pub address: ShippingAddress,
}

/// A cart's chosen shipping, priced now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CartShipping {
    pub method_id: Uuid,
    pub name: String,
    pub carrier: Option<String>,
    /// In minor units of the cart's currency.
    pub amount: i64,
    /// The address it goes to.
    pub address: ShippingAddress,
}

/// The cart's available lines as pricing reads them.
pub fn charge_lines(cart: &CartView, products: &HashMap<Uuid, ProductNow>) -> Vec<CartLine<Uuid>> {
    cart.items
        .iter()
        .filter(|l| l.available)
        .map(|l| {
            let p = products.get(&l.variant_id);
            CartLine {
                key: l.variant_id,
                unit_price: l.unit_price,
                quantity: i64::from(l.quantity),
                weight_grams: p.map_or(0, |p| i64::from(p.weight_grams)),
                requires_shipping: p.is_none_or(|p| p.requires_shipping),
                tax_class: p.map_or_else(|| STANDARD_CLASS.to_owned(), |p| p.tax_class.clone()),
            }
        })
        .collect()
}

/// Adds shipping and tax to a priced cart (after its promotion) under
/// `rules`, going where `choice` says. A chosen method no longer offered
/// is dropped with a warning; checkout would refuse it.
pub fn with_charges(
    mut cart: CartView,
    products: &HashMap<Uuid, ProductNow>,
    rules: &Rules,
    choice: Option<&ShippingChoice>,
) -> CartView {
    cart.prices_include_tax = rules.mode == TaxMode::Inclusive;
    let Some(currency) = cart.currency.clone() else {
        return cart;
    };
    let lines = charge_lines(&cart, products);
    let destination = choice.map(|c| destination_of(&c.address));
    let Ok(charged) = price_checkout(
        rules,
        &lines,
        cart.discount,
        &currency,
        destination.as_ref(),
        choice.map(|c| c.method_id),
    ) else {
        return cart;
    };
    match charged.problem {
        Some(
            problem
            @ (ShippingProblem::MethodIneligible | ShippingProblem::NoShippingToDestination),
        ) if choice.is_some() => {
            cart.warnings.push(Warning {
                product_id: None,
                code: if problem == ShippingProblem::MethodIneligible {
                    "shipping_method_unavailable"
                } else {
                    problem.code()
                },
                message: "the chosen shipping is no longer offered for this cart; choose again"
                    .into(),
            });
        }
        _ => {}
    }
    cart.shipping = match (charged.shipping, choice) {
        (Some(q), Some(c)) => Some(CartShipping {
            method_id: q.method_id,
            name: q.name,
            carrier: q.carrier,
            amount: q.amount,
            address: c.address.clone(),
        }),
        _ => None,
    };
    cart.tax = charged.totals.tax;
    cart.total = charged.totals.total;
    cart
}

/// Applies a promotion's verdict to a priced cart: the discount when it
/// applies; otherwise a warning, and the cart cannot be checked out until
/// the code is removed or applies again.
pub fn with_promotion(
    mut cart: CartView,
    code: String,
    verdict: Result<i64, crate::domain::promotions::Inapplicable>,
) -> CartView {
    match verdict {
        Ok(discount) => {
            cart.discount = discount.clamp(0, cart.subtotal);
            cart.total = cart.subtotal - cart.discount;
        }
        Err(why) => {
            cart.warnings.push(Warning {
                product_id: None,
                code: why.code(),
                message: why.to_string(),
            });
            cart.checkout_ready = false;
        }
    }
    cart.promotion_code = Some(code);
    cart
}

/// The most one line may hold: the stock, at most `limit`, never negative.
pub fn max_quantity(stock: i32, limit: i32) -> i32 {
    stock.clamp(0, limit)
}

/// Prices `lines` (in the order they were added) against `products`.
pub fn view(
    id: Uuid,
    lines: &[StoredLine],
    products: &std::collections::HashMap<Uuid, ProductNow>,
    limit: i32,
    updated_at: DateTime<Utc>,
) -> CartView {
    let mut items = Vec::with_capacity(lines.len());
    let mut warnings = Vec::new();
    let mut subtotal: i64 = 0;
    let mut currency: Option<String> = None;
    let mut warn = |product_id, code, message: String| {
        warnings.push(Warning {
            product_id: Some(product_id),
            code,
            message,
        })
    };
    for line in lines {
        let known = products.get(&line.variant_id);
        let product_id = known.map_or(line.variant_id, |p| p.product_id);
        let Some(product) = known.filter(|p| p.is_active) else {
            warn(
                product_id,
                "product_unavailable",
                "this product is no longer for sale".into(),
            );
            items.push(LineView {
                product_id,
                variant_id: line.variant_id,
                name: known.map(|p| p.name.clone()).unwrap_or_default(),
                slug: known.map(|p| p.slug.clone()).unwrap_or_default(),
                sku: known.map(|p| p.sku.clone()),
                options: known.map(|p| p.options.clone()).unwrap_or_default(),
                unit_price: line.seen_price,
                quantity: line.quantity,
                line_total: 0,
                available: false,
                max_quantity: 0,
                price_changed_from: None,
            });
            continue;
        };
        let most = max_quantity(product.stock, limit);
        let cart_currency = currency.get_or_insert_with(|| product.currency.clone());
        let mut available = true;
        if product.currency != *cart_currency {
            available = false;
            warn(
                product_id,
                "currency_mismatch",
                format!(
                    "priced in {}, the cart in {cart_currency}",
                    product.currency
                ),
            );
        } else if product.stock <= 0 {
            available = false;
            warn(product_id, "out_of_stock", "out of stock".into());
        } else if line.quantity > product.stock {
            available = false;
            warn(
                product_id,
                "insufficient_stock",
                format!("requested {}, available {}", line.quantity, product.stock),
            );
        }
        // A price in another currency is not "the same price, changed".
        let changed = (line.seen_currency == product.currency && line.seen_price != product.price)
            .then_some(line.seen_price);
        if changed.is_some() {
            warn(
                product_id,
                "price_changed",
                format!(
                    "the price changed from {} to {}",
                    line.seen_price, product.price
                ),
            );
        }
        let line_total = if available {
            // Both factors are bounded (price ≤ 10^12, quantity ≤ 10^4).
            product
                .price
                .checked_mul(i64::from(line.quantity))
                .unwrap_or(i64::MAX)
        } else {
            0
        };
        subtotal = subtotal.saturating_add(line_total);
        items.push(LineView {
            product_id,
            variant_id: line.variant_id,
            name: product.name.clone(),
            slug: product.slug.clone(),
            sku: Some(product.sku.clone()),
            options: product.options.clone(),
            unit_price: product.price,
            quantity: line.quantity,
            line_total,
            available,
            max_quantity: most,
            price_changed_from: changed,
        });
    }
    let checkout_ready = !items.is_empty() && items.iter().all(|l| l.available);
    CartView {
        id,
        items,
        subtotal,
        discount: 0,
        shipping: None,
        tax: 0,
        prices_include_tax: false,
        total: subtotal,
        currency,
        promotion_code: None,
        warnings,
        checkout_ready,
        updated_at,
    }
}

/// The cart as stored, for when the catalog cannot price it now: every
/// line at the price last seen, one warning saying so, and no checkout
/// until it can be priced again.
pub fn as_stored(id: Uuid, lines: &[StoredLine], updated_at: DateTime<Utc>) -> CartView {
    let items: Vec<LineView> = lines
        .iter()
        .map(|line| LineView {
            // Not known without the catalog; a default variant's id is its
            // product's.
            product_id: line.variant_id,
            variant_id: line.variant_id,
            name: String::new(),
            slug: String::new(),
            sku: None,
            options: OptionValues::new(),
            unit_price: line.seen_price,
            quantity: line.quantity,
            line_total: line
                .seen_price
                .checked_mul(i64::from(line.quantity))
                .unwrap_or(i64::MAX),
            available: false,
            max_quantity: 0,
            price_changed_from: None,
        })
        .collect();
    let subtotal = items
        .iter()
        .fold(0i64, |sum, l| sum.saturating_add(l.line_total));
    CartView {
        id,
        items,
        subtotal,
        discount: 0,
        shipping: None,
        tax: 0,
        prices_include_tax: false,
        total: subtotal,
        currency: lines.first().map(|l| l.seen_currency.clone()),
        promotion_code: None,
        warnings: vec![Warning {
            product_id: None,
            code: "prices_unconfirmed",
            message: "the change is saved; the catalog cannot confirm prices and stock now, so these are the prices last seen".into(),
        }],
        checkout_ready: false,
        updated_at,
    }
}

/// A new guest cart's secret: 32 random bytes, URL-safe base64.
pub fn new_token() -> String {
    use base64::Engine as _;
    use rand::RngCore as _;
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// What is stored of a token: its SHA-256 (the token is random enough that
/// a slow hash adds nothing).
pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Whether `token` is the one `stored` was made from, in constant time.
pub fn token_matches(token: &str, stored: &[u8]) -> bool {
    bool::from(token_hash(token).ct_eq(stored))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(price: i64, stock: i32) -> ProductNow {
        ProductNow {
            product_id: Uuid::nil(),
            sku: "LAMP-1".into(),
            options: OptionValues::new(),
            name: "Lamp".into(),
            slug: "lamp".into(),
            price,
            currency: "EUR".into(),
            stock,
            is_active: true,
            weight_grams: 100,
            requires_shipping: true,
            tax_class: "standard".into(),
        }
    }

    fn line(id: Uuid, quantity: i32, seen_price: i64) -> StoredLine {
        StoredLine {
            variant_id: id,
            quantity,
            seen_price,
            seen_currency: "EUR".into(),
        }
    }

    #[test]
    fn an_available_cart_adds_up_and_is_ready() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let products = HashMap::from([(a, product(250, 10)), (b, product(1000, 3))]);
        let cart = view(
            Uuid::new_v4(),
            &[line(a, 2, 250), line(b, 3, 1000)],
            &products,
            100,
            Utc::now(),
        );
        assert_eq!(cart.subtotal, 3500);
        assert_eq!(cart.total, 3500);
        assert_eq!(cart.currency.as_deref(), Some("EUR"));
        assert!(cart.checkout_ready);
        assert!(cart.warnings.is_empty());
        assert_eq!(cart.items[1].max_quantity, 3);
    }

    #[test]
    fn unavailable_lines_stay_visible_warn_and_block_checkout() {
        let (gone, off, empty, short, dollars) = (
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
        );
        let mut products = HashMap::from([
            (off, product(100, 5)),
            (empty, product(100, 0)),
            (short, product(100, 2)),
            (
                dollars,
                ProductNow {
                    currency: "USD".into(),
                    ..product(100, 5)
                },
            ),
        ]);
        if let Some(p) = products.get_mut(&off) {
            p.is_active = false;
        }
        let lines = [
            line(short, 3, 100),
            line(gone, 1, 100),
            line(off, 1, 100),
            line(empty, 1, 100),
            line(dollars, 1, 100),
        ];
        let cart = view(Uuid::new_v4(), &lines, &products, 100, Utc::now());
        let codes: Vec<&str> = cart.warnings.iter().map(|w| w.code).collect();
        assert_eq!(
            codes,
            [
                "insufficient_stock",
                "product_unavailable",
                "product_unavailable",
                "out_of_stock",
                "currency_mismatch"
            ]
        );
        assert_eq!(cart.items.len(), 5);
        assert!(cart.items.iter().all(|l| !l.available && l.line_total == 0));
        assert_eq!(cart.subtotal, 0);
        assert!(!cart.checkout_ready);
        assert_eq!(cart.items[0].max_quantity, 2);
    }

    #[test]
    fn a_moved_price_is_shown_and_used() {
        let a = Uuid::new_v4();
        let products = HashMap::from([(a, product(300, 10))]);
        let cart = view(
            Uuid::new_v4(),
            &[line(a, 2, 250)],
            &products,
            100,
            Utc::now(),
        );
        assert_eq!(cart.items[0].price_changed_from, Some(250));
        assert_eq!(cart.subtotal, 600);
        assert_eq!(cart.warnings[0].code, "price_changed");
        assert!(cart.checkout_ready, "a price change alone does not block");
    }

    #[test]
    fn an_empty_cart_is_not_ready_and_has_no_currency() {
        let cart = view(Uuid::new_v4(), &[], &HashMap::new(), 100, Utc::now());
        assert!(!cart.checkout_ready);
        assert_eq!(cart.currency, None);
        assert_eq!(cart.total, 0);
    }

    #[test]
    fn a_cart_answered_as_stored_shows_every_line_and_blocks_checkout() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let cart = as_stored(
            Uuid::new_v4(),
            &[line(a, 3, 250), line(b, 1, 1000)],
            Utc::now(),
        );
        let quantities: Vec<(Uuid, i32)> = cart
            .items
            .iter()
            .map(|l| (l.variant_id, l.quantity))
            .collect();
        assert_eq!(quantities, [(a, 3), (b, 1)], "what was stored, in order");
        assert_eq!(cart.subtotal, 3 * 250 + 1000);
        assert_eq!(cart.total, cart.subtotal);
        assert_eq!(cart.currency.as_deref(), Some("EUR"));
        assert!(!cart.checkout_ready);
        assert_eq!(cart.warnings.len(), 1);
        assert_eq!(cart.warnings[0].code, "prices_unconfirmed");
    }

    #[test]
    fn tokens_match_only_themselves() {
        let token = new_token();
        assert_eq!(token.len(), 43);
        let stored = token_hash(&token);
        assert!(token_matches(&token, &stored));
        assert!(!token_matches(&new_token(), &stored));
        assert!(!token_matches("", &stored));
    }

    #[test]
    fn max_quantity_is_the_stock_within_the_limit() {
        assert_eq!(max_quantity(5, 100), 5);
        assert_eq!(max_quantity(500, 100), 100);
        assert_eq!(max_quantity(-3, 100), 0);
    }
}
