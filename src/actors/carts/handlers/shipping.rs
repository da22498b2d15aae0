//! The work behind the cart's shipping messages.

use super::CartsService;
use crate::actors::carts::error::CartsError;
use crate::actors::carts::shipping::*;
use crate::domain::carts::{self, CartView, ShippingChoice};
use crate::domain::pricing::rules::{destination_of, parcel_of, price_checkout, MethodQuote};
use crate::domain::validation::ValidationErrors;
use crate::store::carts as store;

impl CartsService {
    pub async fn quote_shipping(
        &self,
        msg: QuoteCartShipping,
    ) -> Result<Vec<MethodQuote>, CartsError> {
        let cart_id = self.resolve(&msg.owner).await?;
        let priced = self.discounted(cart_id).await?;
        let destination =
            match (msg.destination, &priced.shipping) {
                (Some(d), _) => d,
                (None, Some(choice)) => destination_of(&choice.address),
                (None, None) => return Err(CartsError::Validation(ValidationErrors::single(
                    "country",
                    "required",
                    "give country (and postal_code), or choose an address with PUT /cart/shipping/",
                ))),
            };
        let Some(currency) = priced.cart.currency.clone() else {
            return Ok(Vec::new());
        };
        let rules = self.rules(false).await?;
        let lines = carts::charge_lines(&priced.cart, &priced.products);
        if !lines.iter().any(|l| l.requires_shipping) {
            return Ok(Vec::new());
        }
        Ok(rules.eligible(
            &destination,
            &currency,
            parcel_of(&lines, priced.cart.discount),
        ))
    }

    pub async fn set_shipping(&self, msg: SetCartShipping) -> Result<CartView, CartsError> {
        let cart_id = self.resolve(&msg.owner).await?;
        let priced = self.discounted(cart_id).await?;
        let currency = priced.cart.currency.clone().ok_or(CartsError::CartEmpty)?;
        // Read fresh: a method just created on another instance counts.
        let rules = self.rules(true).await?;
        let lines = carts::charge_lines(&priced.cart, &priced.products);
        let destination = destination_of(&msg.address);
        let charged = price_checkout(
            &rules,
            &lines,
            priced.cart.discount,
            &currency,
            Some(&destination),
            Some(msg.method_id),
        )
        .map_err(|_| CartsError::Unexpected(anyhow::anyhow!("cart total out of range")))?;
        if let Some(problem) = charged.problem {
            return Err(CartsError::Shipping(problem));
        }
        let choice = ShippingChoice {
            method_id: msg.method_id,
            address: msg.address,
        };
        store::set_shipping(&self.pool, cart_id, Some(&choice)).await?;
        self.forget(cart_id).await;
        self.render(cart_id).await
    }

    pub async fn clear_shipping(&self, msg: ClearCartShipping) -> Result<CartView, CartsError> {
        let cart_id = self.resolve(&msg.0).await?;
        store::set_shipping(&self.pool, cart_id, None).await?;
        self.forget(cart_id).await;
        self.render(cart_id).await
    }
}
