//! The work behind each carts message. Products are asked of the catalog
//! by message; the carts database never holds a price as the truth.

use std::collections::HashMap;

use sqlx::PgPool;
use uuid::Uuid;

use super::error::CartsError;
use super::messages::*;
use crate::actors::catalog::messages::GetProductsByIds;
use crate::actors::catalog::CatalogActor;
use crate::actors::runtime::ActorClient;
use crate::config::CartSettings;
use crate::domain::carts::{self, CartView, ProductNow};
use crate::domain::validation::ValidationErrors;
use crate::store::carts::{self as store, Change, Limits, Merge};

/// The carts domain's state, shared by every in-flight handler.
#[derive(Clone)]
pub struct CartsService {
    pool: PgPool,
    catalog: ActorClient<CatalogActor>,
    settings: CartSettings,
}

fn invalid(field: &str, code: &'static str, message: impl Into<String>) -> CartsError {
    CartsError::Validation(ValidationErrors::single(field, code, message))
}

impl CartsService {
    /// A service around the carts pool, asking the catalog by messages.
    pub fn new(pool: PgPool, catalog: ActorClient<CatalogActor>, settings: CartSettings) -> Self {
        Self {
            pool,
            catalog,
            settings,
        }
    }

    /// The pool, for lifecycle messages.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The cart a message is about; a guest cart only with its token, and
    /// never once merged or expired (all `NotFound`: ids leak nothing).
    async fn resolve(&self, owner: &CartOwner) -> Result<Uuid, CartsError> {
        match owner {
            CartOwner::User(user_id) => Ok(store::user_cart(&self.pool, *user_id).await?.0),
            CartOwner::Guest { id, token } => {
                let row = store::guest(&self.pool, *id, self.settings.guest_ttl_days)
                    .await?
                    .ok_or(CartsError::NotFound)?;
                if !carts::token_matches(token, &row.token_hash) || row.merged_into.is_some() {
                    return Err(CartsError::NotFound);
                }
                Ok(*id)
            }
        }
    }

    async fn products(&self, ids: Vec<Uuid>) -> Result<HashMap<Uuid, ProductNow>, CartsError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let rows = self
            .catalog
            .call(GetProductsByIds(ids))
            .await
            .map_err(|e| CartsError::CatalogUnavailable(e.to_string()))?;
        Ok(rows
            .into_iter()
            .map(|r| {
                (
                    r.id,
                    ProductNow {
                        name: r.name,
                        slug: r.slug,
                        price: r.price,
                        currency: r.currency,
                        stock: r.stock,
                        is_active: r.is_active,
                    },
                )
            })
            .collect())
    }

    /// The cart priced now.
    async fn render(&self, cart_id: Uuid) -> Result<CartView, CartsError> {
        let lines = store::lines(&self.pool, cart_id).await?;
        let products = self
            .products(lines.iter().map(|l| l.product_id).collect())
            .await?;
        let updated_at = store::updated_at(&self.pool, cart_id).await?;
        Ok(carts::view(
            cart_id,
            &lines,
            &products,
            self.settings.max_quantity,
            updated_at,
        ))
    }

    /// A product that can go into a cart now.
    async fn sellable(&self, product_id: Uuid) -> Result<ProductNow, CartsError> {
        match self.products(vec![product_id]).await?.remove(&product_id) {
            None => Err(invalid("product_id", "unknown", "no such product")),
            Some(p) if !p.is_active => Err(invalid(
                "product_id",
                "inactive",
                "this product is not for sale",
            )),
            Some(p) => Ok(p),
        }
    }

    fn check_quantity(&self, quantity: i32, least: i32) -> Result<(), CartsError> {
        let most = self.settings.max_quantity;
        if (least..=most).contains(&quantity) {
            Ok(())
        } else {
            Err(invalid(
                "quantity",
                "out_of_range",
                format!("quantity must be {least} to {most}"),
            ))
        }
    }

    /// Applies a line change and answers the cart, or why not.
    async fn change(
        &self,
        owner: &CartOwner,
        product_id: Uuid,
        quantity: i32,
        add: bool,
    ) -> Result<CartView, CartsError> {
        let cart_id = self.resolve(owner).await?;
        let product = self.sellable(product_id).await?;
        let limits = Limits {
            max_lines: self.settings.max_lines,
            max_quantity: self.settings.max_quantity,
            stock: product.stock,
        };
        let price = (product.price, product.currency.as_str());
        let outcome = store::change_line(
            &self.pool, cart_id, product_id, quantity, add, price, limits,
        )
        .await?;
        match outcome {
            Change::Done => self.render(cart_id).await,
            Change::NoSuchLine => Err(CartsError::NoSuchLine),
            Change::TooManyLines => Err(invalid(
                "product_id",
                "too_many",
                format!("a cart holds at most {} products", self.settings.max_lines),
            )),
            Change::OverMaxQuantity { requested } => Err(invalid(
                "quantity",
                "out_of_range",
                format!(
                    "a line holds at most {} (this would make {requested})",
                    self.settings.max_quantity
                ),
            )),
            Change::OverStock { requested } => Err(CartsError::InsufficientStock {
                requested,
                available: product.stock.max(0),
            }),
        }
    }

    pub async fn get_cart(&self, msg: GetCart) -> Result<CartView, CartsError> {
        let cart_id = self.resolve(&msg.0).await?;
        self.render(cart_id).await
    }

    pub async fn add_item(&self, msg: AddItem) -> Result<CartView, CartsError> {
        self.check_quantity(msg.quantity, 1)?;
        self.change(&msg.owner, msg.product_id, msg.quantity, true)
            .await
    }

    pub async fn set_quantity(&self, msg: SetItemQuantity) -> Result<CartView, CartsError> {
        self.check_quantity(msg.quantity, 0)?;
        if msg.quantity == 0 {
            return self
                .remove_item(RemoveItem {
                    owner: msg.owner,
                    product_id: msg.product_id,
                })
                .await;
        }
        self.change(&msg.owner, msg.product_id, msg.quantity, false)
            .await
    }

    pub async fn remove_item(&self, msg: RemoveItem) -> Result<CartView, CartsError> {
        let cart_id = self.resolve(&msg.owner).await?;
        if !store::remove_line(&self.pool, cart_id, msg.product_id).await? {
            return Err(CartsError::NoSuchLine);
        }
        self.render(cart_id).await
    }

    pub async fn clear(&self, msg: ClearCart) -> Result<CartView, CartsError> {
        let cart_id = self.resolve(&msg.0).await?;
        store::clear(&self.pool, cart_id).await?;
        self.render(cart_id).await
    }

    pub async fn create_guest(&self, _: CreateGuestCart) -> Result<GuestCart, CartsError> {
        let id = Uuid::new_v4();
        let token = carts::new_token();
        store::create_guest(&self.pool, id, &carts::token_hash(&token)).await?;
        Ok(GuestCart { id, token })
    }

    pub async fn delete_guest(&self, msg: DeleteGuestCart) -> Result<(), CartsError> {
        let owner = CartOwner::Guest {
            id: msg.id,
            token: msg.token,
        };
        let cart_id = self.resolve(&owner).await?;
        store::delete_guest(&self.pool, cart_id).await?;
        Ok(())
    }

    pub async fn merge(&self, msg: MergeGuestCart) -> Result<CartView, CartsError> {
        let guest = store::guest(&self.pool, msg.cart_id, self.settings.guest_ttl_days)
            .await?
            .filter(|g| carts::token_matches(&msg.token, &g.token_hash))
            .ok_or(CartsError::NotFound)?;
        let (user_cart, _) = store::user_cart(&self.pool, msg.user_id).await?;
        match guest.merged_into {
            // Merging again changes nothing.
            Some(into) if into == user_cart => return self.render(user_cart).await,
            Some(_) => return Err(CartsError::NotFound),
            None => {}
        }
        let lines = store::lines(&self.pool, msg.cart_id).await?;
        let products = self
            .products(lines.iter().map(|l| l.product_id).collect())
            .await?;
        let sellable = products
            .into_iter()
            .filter(|(_, p)| p.is_active)
            .map(|(id, p)| (id, (p.stock, p.price, p.currency)))
            .collect();
        let outcome = store::merge(
            &self.pool,
            msg.cart_id,
            user_cart,
            &sellable,
            self.settings.max_lines,
            self.settings.max_quantity,
        )
        .await?;
        match outcome {
            Merge::Merged => {}
            Merge::AlreadyMerged { into } if into == user_cart => {}
            Merge::AlreadyMerged { .. } => return Err(CartsError::NotFound),
        }
        self.render(user_cart).await
    }

    pub async fn sweep(&self, _: SweepGuestCarts) -> Result<u64, CartsError> {
        let deleted = store::sweep_guests(&self.pool, self.settings.guest_ttl_days).await?;
        if deleted > 0 {
            tracing::info!(deleted, "abandoned guest carts deleted");
        }
        Ok(deleted)
    }
}
