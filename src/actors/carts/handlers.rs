//! The work behind each carts message (promotions' in `promotions`). Products are asked of the catalog
//! by message; the carts database never holds a price as the truth.

use std::collections::HashMap;
use std::time::Duration;

use sqlx::PgPool;
use uuid::Uuid;

use super::error::CartsError;
use super::messages::*;
use super::promotions::ReconcilePromotionUses;
use super::reader::product_now;
use crate::actors::catalog::messages::{GetItemSnapshots, ItemSnapshots};
use crate::actors::catalog::CatalogActor;
use crate::actors::idempotency::SuccessAnswer;
use crate::actors::orders::messages::{CreateOrder, GetOrder, GetOrderStatuses, OrderView};
use crate::actors::orders::rules::GetPricingRules;
use crate::actors::orders::OrdersActor;
use crate::actors::read_view::{cart_key, CartsView, CatalogView, StoredCart};
use crate::actors::runtime::{ActorClient, CallError};
use crate::config::CartSettings;
use crate::domain::carts::{self, CartView, ProductNow};
use crate::domain::catalog::stock::Resolved;
use crate::domain::idempotency::KeyedOutcome;
use crate::domain::orders::guest::{Buyer, OrderViewer};
use crate::domain::orders::pricing::OrderItem;
use crate::domain::pricing::rules::Rules;
use crate::domain::promotions::{self as promotion_rules, Context};
use crate::domain::validation::ValidationErrors;
use crate::store::carts::{self as store, Begin, Change, Limits, Merge};
use crate::store::promotions::{self as promotion_store, PromotionRow, Spend};
use std::sync::Arc;

mod promotions;
mod shipping;

/// A cart priced from the catalog, with its stored promotion and shipping
/// choice, and the catalog's answers (for shipping weights and tax classes).
struct Priced {
    cart: CartView,
    promotion: store::ChosenPromotion,
    shipping: Option<carts::ShippingChoice>,
    products: HashMap<Uuid, ProductNow>,
}

/// Unsettled uses reconciled with orders per sweep.
const RECONCILE_BATCH: i64 = 500;

/// The carts domain's state, shared by every in-flight handler.
#[derive(Clone)]
pub struct CartsService {
    pool: PgPool,
    catalog: ActorClient<CatalogActor>,
    orders: ActorClient<OrdersActor>,
    settings: CartSettings,
    /// A checkout claim older than this belongs to a checkout that stopped.
    checkout_lock: Duration,
    /// Customers' carts as stored, for `GET /cart/` at the edge: filled by
    /// reads here, dropped on every instance by each write to a cart.
    view: CartsView,
    /// The catalog's view, for variants without a hop when it holds them.
    catalog_view: CatalogView,
}

fn invalid(field: &str, code: &'static str, message: impl Into<String>) -> CartsError {
    CartsError::Validation(ValidationErrors::single(field, code, message))
}

impl CartsService {
    /// A service around the carts pool, asking the catalog and orders by
    /// messages.
    pub fn new(
        pool: PgPool,
        catalog: ActorClient<CatalogActor>,
        orders: ActorClient<OrdersActor>,
        settings: CartSettings,
        checkout_lock: Duration,
        views: (CartsView, CatalogView),
    ) -> Self {
        let (view, catalog_view) = views;
        Self {
            pool,
            catalog,
            orders,
            settings,
            checkout_lock,
            view,
            catalog_view,
        }
    }

    /// The pool, for lifecycle messages.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The carts' read view, for starting its channel.
    pub fn view(&self) -> &CartsView {
        &self.view
    }

    /// After a committed write to `cart_id`: no instance shows it as it
    /// was once this returns.
    async fn forget(&self, cart_id: Uuid) {
        self.view.forget([cart_id]).await;
    }

    /// The cart a message is about; a guest cart only with its token, and
    /// never once merged or expired (all `NotFound`: ids leak nothing).
    async fn resolve(&self, owner: &CartOwner) -> Result<Uuid, CartsError> {
        match owner {
            // A customer's cart is never deleted nor replaced: the view's
            // copy names it as well as the database.
            CartOwner::User(user_id) => match self.view.get(&cart_key(*user_id)) {
                Some(held) => Ok(held.cart_id),
                None => Ok(store::user_cart(&self.pool, *user_id).await?),
            },
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

    /// What the catalog says now of each id (a variant, or a product with
    /// one variant), keyed by the id asked.
    async fn items(&self, ids: Vec<Uuid>) -> Result<ItemSnapshots, CartsError> {
        if ids.is_empty() {
            return Ok(ItemSnapshots::default());
        }
        self.catalog
            .call(GetItemSnapshots(ids))
            .await
            .map_err(|e| CartsError::CatalogUnavailable(e.to_string()))
    }

    /// The variants among `ids` as carts price them, by variant id.
    async fn products(&self, ids: Vec<Uuid>) -> Result<HashMap<Uuid, ProductNow>, CartsError> {
        // All from the catalog's view, or all from the catalog: a variant
        // the view holds is as fresh as the catalog's answer.
        let held: Option<HashMap<Uuid, ProductNow>> = ids
            .iter()
            .map(|id| {
                self.catalog_view
                    .variant(*id)
                    .map(|v| (v.id, product_now(&v)))
            })
            .collect();
        if let Some(held) = held {
            return Ok(held);
        }
        let found = self.items(ids).await?;
        Ok(found
            .snapshots
            .values()
            .map(|s| (s.id, product_now(s)))
            .collect())
    }

    /// The cart priced now, without its promotion or charges; with what
    /// pricing it further needs.
    async fn priced(&self, cart_id: Uuid) -> Result<Priced, CartsError> {
        let contents = self.contents(cart_id).await?;
        self.priced_from(cart_id, contents).await
    }

    /// The cart as stored.
    async fn contents(&self, cart_id: Uuid) -> Result<store::Contents, CartsError> {
        match store::contents(&self.pool, cart_id).await {
            Ok(contents) => Ok(contents),
            // Deleted (a guest cart) since it was resolved.
            Err(sqlx::Error::RowNotFound) => Err(CartsError::NotFound),
            Err(e) => Err(e.into()),
        }
    }

    /// [`Self::priced`] of contents already read.
    async fn priced_from(
        &self,
        cart_id: Uuid,
        contents: store::Contents,
    ) -> Result<Priced, CartsError> {
        let products = self
            .products(contents.lines.iter().map(|l| l.variant_id).collect())
            .await?;
        let cart = carts::view(
            cart_id,
            &contents.lines,
            &products,
            self.settings.max_quantity,
            contents.updated_at,
        );
        Ok(Priced {
            cart,
            promotion: contents.promotion,
            shipping: contents.shipping,
            products,
        })
    }

    /// The shop's shipping and tax rules, from orders (a copy at most a
    /// moment old unless `fresh`).
    async fn rules(&self, fresh: bool) -> Result<Arc<Rules>, CartsError> {
        self.orders
            .call(GetPricingRules { fresh })
            .await
            .map_err(|e| CartsError::OrdersUnavailable(e.to_string()))
    }

    /// The cart priced now with its promotion's discount (or why none),
    /// without shipping and tax.
    async fn discounted(&self, cart_id: Uuid) -> Result<Priced, CartsError> {
        let priced = self.priced(cart_id).await?;
        self.discount(priced).await
    }

    /// A priced cart with its promotion's discount (or why none).
    async fn discount(&self, mut priced: Priced) -> Result<Priced, CartsError> {
        let cart_id = priced.cart.id;
        let Some((promotion_id, code)) = priced.promotion.clone() else {
            return Ok(priced);
        };
        let promotion = match promotion_id {
            Some(id) => promotion_store::by_id(&self.pool, id).await?,
            None => None,
        };
        let Some(promotion) = promotion else {
            // Deleted since it was chosen: say so until the code is removed.
            priced.cart = carts::with_promotion(
                priced.cart,
                code,
                Err(promotion_rules::Inapplicable::Deleted),
            );
            return Ok(priced);
        };
        let user = store::owner(&self.pool, cart_id).await?;
        let verdict = self.verdict(&promotion, &priced.cart, user).await?;
        priced.cart = carts::with_promotion(priced.cart, promotion.code.clone(), verdict);
        Ok(priced)
    }

    /// The cart priced now: promotion, shipping and tax. If orders cannot
    /// give the rules now, the cart is shown without them and says so.
    async fn render(&self, cart_id: Uuid) -> Result<CartView, CartsError> {
        self.render_from(cart_id, None).await
    }

    /// [`Self::render`], of contents already read when given.
    async fn render_from(
        &self,
        cart_id: Uuid,
        contents: Option<store::Contents>,
    ) -> Result<CartView, CartsError> {
        let priced = async {
            let priced = match contents {
                Some(contents) => self.priced_from(cart_id, contents).await,
                None => self.priced(cart_id).await,
            };
            self.discount(priced?).await
        };
        // The rules do not depend on the cart: asked for beside it, so the
        // hop to orders overlaps the hops to the catalog.
        let (priced, rules) = futures_util::join!(priced, self.rules(false));
        let priced = priced?;
        match rules {
            Ok(rules) => Ok(carts::with_charges(
                priced.cart,
                &priced.products,
                &rules,
                priced.shipping.as_ref(),
            )),
            Err(e) => {
                tracing::warn!(error = %e, cart = %cart_id, "cart shown without shipping and tax");
                let mut cart = priced.cart;
                cart.warnings.push(carts::Warning {
                    product_id: None,
                    code: "charges_unconfirmed",
                    message: "shipping and tax cannot be priced now; checkout prices them".into(),
                });
                Ok(cart)
            }
        }
    }

    /// The cart after a change that committed: priced now or, when the
    /// catalog cannot answer at this moment, as stored (lines at the prices
    /// last seen, a `prices_unconfirmed` warning, no checkout). A retryable
    /// 503 here would make a client's retry apply the change twice.
    ///
    /// A customer's cart read here also fills the view (under a ticket
    /// taken after this write's invalidation), so the next read and the
    /// next checkout find it.
    async fn render_committed(
        &self,
        owner: &CartOwner,
        cart_id: Uuid,
    ) -> Result<CartView, CartsError> {
        self.forget(cart_id).await;
        let rendered = match owner {
            CartOwner::User(user_id) => {
                let contents = self.read_and_keep(*user_id, cart_id).await?;
                self.render_from(cart_id, Some(contents)).await
            }
            CartOwner::Guest { .. } => self.render(cart_id).await,
        };
        match rendered {
            Err(CartsError::CatalogUnavailable(why)) => {
                tracing::warn!(why, cart = %cart_id, "cart changed; answered as stored while the catalog is unavailable");
                let contents = store::contents(&self.pool, cart_id).await?;
                Ok(carts::as_stored(
                    cart_id,
                    &contents.lines,
                    contents.updated_at,
                ))
            }
            other => other,
        }
    }

    /// Whether `promotion` applies to `cart` now, and its discount.
    async fn verdict(
        &self,
        promotion: &PromotionRow,
        cart: &CartView,
        user: Option<Uuid>,
    ) -> Result<Result<i64, promotion_rules::Inapplicable>, CartsError> {
        let customer_uses = match user {
            Some(user) => {
                let mut conn = self.pool.acquire().await?;
                promotion_store::held_uses(&mut conn, promotion.id, user)
                    .await?
                    .1
            }
            None => 0,
        };
        let rule = promotion.rule();
        let context = Context {
            now: chrono::Utc::now(),
            subtotal: cart.subtotal,
            currency: cart.currency.as_deref().unwrap_or_default(),
            uses: promotion.uses,
            customer_uses,
        };
        Ok(promotion_rules::check(&rule, &context)
            .map(|()| promotion_rules::discount(&rule, cart.subtotal)))
    }

    /// The variant `item_id` names, if it can go into a cart now; errors
    /// name `field`, the request field that sent the id.
    async fn sellable(
        &self,
        item_id: Uuid,
        field: &'static str,
    ) -> Result<(Uuid, ProductNow), CartsError> {
        // A variant's id the catalog's view holds names that variant. (Not
        // a product's id: a product's first variant may share it, and a
        // product with several needs one named.)
        if field == "variant_id" {
            if let Some(v) = self.catalog_view.variant(item_id) {
                return match product_now(&v) {
                    p if !p.is_active => {
                        Err(invalid(field, "inactive", "this product is not for sale"))
                    }
                    p => Ok((item_id, p)),
                };
            }
        }
        let found = self.items(vec![item_id]).await?;
        let variant_id = match found.resolved.get(&item_id) {
            Some(Resolved::Variant(id)) => *id,
            Some(Resolved::NeedsVariant) => {
                return Err(invalid(
                    field,
                    "variant_required",
                    "this product has several variants; name one with variant_id",
                ))
            }
            _ => return Err(invalid(field, "unknown", "no such product")),
        };
        match self.products(vec![variant_id]).await?.remove(&variant_id) {
            None => Err(invalid(field, "unknown", "no such product")),
            Some(p) if !p.is_active => {
                Err(invalid(field, "inactive", "this product is not for sale"))
            }
            Some(p) => Ok((variant_id, p)),
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
        (item_id, field): (Uuid, &'static str),
        quantity: i32,
        add: bool,
    ) -> Result<CartView, CartsError> {
        let cart_id = self.resolve(owner).await?;
        let (variant_id, product) = self.sellable(item_id, field).await?;
        let limits = Limits {
            max_lines: self.settings.max_lines,
            max_quantity: self.settings.max_quantity,
            stock: product.stock,
        };
        let price = (product.price, product.currency.as_str());
        let outcome = store::change_line(
            &self.pool, cart_id, variant_id, quantity, add, price, limits,
        )
        .await?;
        match outcome {
            Change::Done => self.render_committed(owner, cart_id).await,
            Change::NoSuchLine => Err(CartsError::NoSuchLine),
            Change::TooManyLines => Err(invalid(
                field,
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
        let CartOwner::User(user_id) = msg.0 else {
            let cart_id = self.resolve(&msg.0).await?;
            return self.render(cart_id).await;
        };
        let cart_id = self.resolve(&msg.0).await?;
        let contents = self.read_and_keep(user_id, cart_id).await?;
        self.render_from(cart_id, Some(contents)).await
    }

    /// A customer's cart as stored, kept in the view for the edge's reads
    /// and the next checkout.
    async fn read_and_keep(
        &self,
        user_id: Uuid,
        cart_id: Uuid,
    ) -> Result<store::Contents, CartsError> {
        // Taken before the read: what it finds feeds the view only if no
        // write to this cart answered meanwhile.
        let ticket = self.view.ticket();
        let contents = self.contents(cart_id).await?;
        self.view.put_cart(
            ticket,
            user_id,
            StoredCart {
                cart_id,
                contents: contents.clone(),
            },
        );
        Ok(contents)
    }

    /// A customer's cart as the view holds it, if it does.
    fn held(&self, shopper: &Shopper, cart_id: Uuid) -> Option<store::Contents> {
        let Shopper::Customer(user) = shopper else {
            return None;
        };
        self.view
            .get(&cart_key(user.user_id))
            .filter(|held| held.cart_id == cart_id)
            .map(|held| held.contents.clone())
    }

    pub async fn add_item(&self, msg: AddItem) -> Result<CartView, CartsError> {
        self.check_quantity(msg.quantity, 1)?;
        let field = if msg.by_variant {
            "variant_id"
        } else {
            "product_id"
        };
        self.change(&msg.owner, (msg.item_id, field), msg.quantity, true)
            .await
    }

    pub async fn set_quantity(&self, msg: SetItemQuantity) -> Result<CartView, CartsError> {
        self.check_quantity(msg.quantity, 0)?;
        if msg.quantity == 0 {
            return self
                .remove_item(RemoveItem {
                    owner: msg.owner,
                    item_id: msg.item_id,
                })
                .await;
        }
        self.change(&msg.owner, (msg.item_id, "product_id"), msg.quantity, false)
            .await
    }

    pub async fn remove_item(&self, msg: RemoveItem) -> Result<CartView, CartsError> {
        let cart_id = self.resolve(&msg.owner).await?;
        if !store::remove_line(&self.pool, cart_id, msg.item_id).await? {
            // A product's id names its one variant's line. Without the
            // catalog, the id is taken as a variant's: a retried removal
            // finds its line gone (404), as it would with the catalog up.
            let found = self.items(vec![msg.item_id]).await.unwrap_or_default();
            let removed = match found.resolved.get(&msg.item_id) {
                Some(Resolved::Variant(id)) if *id != msg.item_id => {
                    store::remove_line(&self.pool, cart_id, *id).await?
                }
                _ => false,
            };
            if !removed {
                return Err(CartsError::NoSuchLine);
            }
        }
        self.render_committed(&msg.owner, cart_id).await
    }

    pub async fn clear(&self, msg: ClearCart) -> Result<CartView, CartsError> {
        let cart_id = self.resolve(&msg.0).await?;
        store::clear(&self.pool, cart_id).await?;
        self.render_committed(&msg.0, cart_id).await
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
        let user_cart = store::user_cart(&self.pool, msg.user_id).await?;
        match guest.merged_into {
            // Merging again changes nothing.
            Some(into) if into == user_cart => return self.render(user_cart).await,
            Some(_) => return Err(CartsError::NotFound),
            None => {}
        }
        let lines = store::lines(&self.pool, msg.cart_id).await?;
        let products = self
            .products(lines.iter().map(|l| l.variant_id).collect())
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
        self.forget(user_cart).await;
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

/// The cart a shopper checks out, as a message names it.
fn owner_of(shopper: &Shopper) -> CartOwner {
    match shopper {
        Shopper::Customer(user) => CartOwner::User(user.user_id),
        Shopper::Guest { cart_id, token, .. } => CartOwner::Guest {
            id: *cart_id,
            token: token.clone(),
        },
    }
}

/// How a checkout reads back the order it placed: a customer's as its
/// owner; a guest's as its token's holder (the cart's token opened it).
fn viewer_of(shopper: &Shopper) -> OrderViewer {
    match shopper {
        Shopper::Customer(user) => OrderViewer::User(*user),
        Shopper::Guest { .. } => OrderViewer::TokenHolder,
    }
}

/// Whether an order call's failure leaves its outcome unknown (the order
/// may still be written): then the checkout's claim is kept, and the next
/// checkout finds out.
fn uncertain(e: &CallError<crate::actors::orders::OrdersError>) -> bool {
    matches!(e, CallError::Timeout(_))
}

impl CartsService {
    /// Whether the order exists, asked of orders.
    async fn order_exists(&self, order_id: Uuid) -> Result<bool, CartsError> {
        let found = self
            .orders
            .call(GetOrderStatuses(vec![order_id]))
            .await
            .map_err(|e| CartsError::OrdersUnavailable(e.to_string()))?;
        Ok(!found.is_empty())
    }

    /// The order a checkout placed, and the cart emptied into it.
    async fn finish(
        &self,
        cart_id: Uuid,
        order_id: Uuid,
        msg: &Checkout,
    ) -> Result<OrderView, CartsError> {
        let view = self
            .orders
            .call(GetOrder {
                id: order_id,
                viewer: viewer_of(&msg.shopper),
            })
            .await
            .map_err(CartsError::Order)?;
        self.take_into(cart_id, &view).await?;
        Ok(view)
    }

    /// Ends the cart's checkout into `order`: the order's lines leave it.
    async fn take_into(&self, cart_id: Uuid, order: &OrderView) -> Result<(), CartsError> {
        let taken = taken_lines(order);
        store::finish_checkout(&self.pool, cart_id, order.id, order.user_id, &taken).await?;
        self.forget(cart_id).await;
        Ok(())
    }

    /// The cart a shopper checks out (a guest's only with its token).
    async fn cart_of(&self, shopper: &Shopper) -> Result<Uuid, CartsError> {
        self.resolve(&owner_of(shopper)).await
    }

    pub async fn checkout(&self, msg: Checkout) -> Result<OrderView, CartsError> {
        let cart_id = self.cart_of(&msg.shopper).await?;
        // An empty cart with an address at hand is refused before the
        // claim (which would only be given back), as `place` would refuse it.
        if let Some(held) = self.held(&msg.shopper, cart_id) {
            if held.lines.is_empty() && (msg.shipping_address.is_some() || held.shipping.is_some())
            {
                return Err(CartsError::CartEmpty);
            }
        }
        let lock = i64::try_from(self.checkout_lock.as_secs()).unwrap_or(i64::MAX);
        let order_id = match store::begin_checkout(&self.pool, cart_id, lock).await? {
            Begin::InProgress => return Err(CartsError::CheckoutInProgress),
            Begin::Started { order_id } => order_id,
            Begin::Unfinished { order_id } => {
                // An earlier checkout stopped while placing `order_id`.
                if self.order_exists(order_id).await? {
                    return self.finish(cart_id, order_id, &msg).await;
                }
                promotion_store::release(&self.pool, &[order_id]).await?;
                store::abandon_checkout(&self.pool, cart_id, order_id).await?;
                match store::begin_checkout(&self.pool, cart_id, lock).await? {
                    Begin::Started { order_id } => order_id,
                    _ => return Err(CartsError::CheckoutInProgress),
                }
            }
        };
        match self.place(cart_id, order_id, &msg).await {
            Ok(view) => {
                self.take_into(cart_id, &view).await?;
                Ok(view)
            }
            Err(CartsError::Order(e)) if uncertain(&e) => Err(CartsError::Order(e)),
            Err(e) => {
                // Nothing was placed: give the use back and free the cart.
                promotion_store::release(&self.pool, &[order_id]).await?;
                store::abandon_checkout(&self.pool, cart_id, order_id).await?;
                Err(e)
            }
        }
    }

    /// Prices the cart, counts its promotion's use, and places the order.
    async fn place(
        &self,
        cart_id: Uuid,
        order_id: Uuid,
        msg: &Checkout,
    ) -> Result<OrderView, CartsError> {
        // The view's copy is as fresh as a read: every change to the cart
        // that answered before this checkout dropped it on every instance.
        // (A line added while the checkout runs stays in the cart either
        // way: the checkout takes out only what the order took.)
        let contents = match self.held(&msg.shopper, cart_id) {
            Some(contents) => contents,
            None => self.contents(cart_id).await?,
        };
        let Priced {
            cart,
            promotion: chosen,
            shipping: choice,
            ..
        } = self.priced_from(cart_id, contents).await?;
        // The request's address and method, else the cart's choice; a
        // missing address is the body's mistake, named before the cart's.
        let shipping_address = match (&msg.shipping_address, &choice) {
            (Some(address), _) => address.clone(),
            (None, Some(choice)) => choice.address.clone(),
            (None, None) => {
                return Err(invalid(
                    "shipping_address",
                    "required",
                    "give shipping_address or shipping_address_id, or choose one with PUT /cart/shipping/",
                ))
            }
        };
        let shipping_method_id = msg
            .shipping_method_id
            .or(choice.as_ref().map(|c| c.method_id));
        if cart.items.is_empty() {
            return Err(CartsError::CartEmpty);
        }
        if !cart.checkout_ready {
            let why: Vec<String> = cart
                .warnings
                .iter()
                .filter(|w| w.code != "price_changed")
                .map(|w| w.code.to_owned())
                .collect();
            return Err(CartsError::CartNotReady(why.join(", ")));
        }
        let promotion = match chosen {
            None => None,
            // The code was deleted: never charge full price silently.
            Some((None, _)) => {
                return Err(CartsError::PromotionRefused(
                    promotion_rules::Inapplicable::Deleted,
                ))
            }
            Some((Some(promotion_id), _)) => {
                // Codes are applied by account (their per-customer limit
                // counts by it), so a guest cart never carries one.
                let Shopper::Customer(user) = &msg.shopper else {
                    return Err(CartsError::PromotionNotFound);
                };
                let spent = promotion_store::spend(
                    &self.pool,
                    promotion_id,
                    order_id,
                    user.user_id,
                    cart.subtotal,
                    cart.currency.as_deref().unwrap_or_default(),
                )
                .await?;
                match spent {
                    Spend::Spent(rule) => Some(rule),
                    Spend::Gone => return Err(CartsError::PromotionNotFound),
                    Spend::Refused(why) => return Err(CartsError::PromotionRefused(why)),
                }
            }
        };
        let items = cart
            .items
            .iter()
            .map(|l| OrderItem {
                id: l.variant_id,
                by_variant: true,
                quantity: l.quantity,
            })
            .collect();
        let buyer = match &msg.shopper {
            Shopper::Customer(user) => Buyer::Customer(user.user_id),
            Shopper::Guest { email, .. } => Buyer::Guest {
                email: email.clone(),
            },
        };
        let order = CreateOrder {
            order_id: Some(order_id),
            buyer,
            items,
            shipping_address,
            shipping_method_id,
            key: msg.key.clone(),
            promotion,
            expected_total: msg.expected_total,
        };
        self.orders.call(order).await.map_err(|e| match e {
            CallError::Domain(crate::actors::orders::OrdersError::PromotionInapplicable(why)) => {
                CartsError::PromotionRefused(why)
            }
            other => CartsError::Order(other),
        })
    }

    /// [`Checkout`] at most once per key: one message from the edge; the
    /// key is claimed and answered through orders.
    pub async fn checkout_once(&self, msg: CheckoutOnce) -> Result<KeyedOutcome, CartsError> {
        let shopper = msg.message.shopper.clone();
        // A guest's key is scoped to the cart: without the cart's token
        // neither a run nor a replay of its saved answer.
        if let Shopper::Guest { .. } = &shopper {
            self.cart_of(&shopper).await?;
        }
        let viewer = viewer_of(&shopper);
        // The order commits before the cart is emptied: the answer is
        // saved once the checkout is over, so a retry between the two
        // recovers the order and finishes the cart.
        msg.run(
            &self.orders,
            SuccessAnswer::SavedAfter,
            |checkout, key| {
                self.checkout(Checkout {
                    key: Some(key),
                    ..checkout
                })
            },
            |id| async move {
                // The order exists but its answer was lost (a crash): the
                // cart may still hold its lines under that checkout's claim.
                let view = self
                    .orders
                    .call(GetOrder { id, viewer })
                    .await
                    .map_err(CartsError::Order)?;
                let finish = FinishCheckout {
                    owner: owner_of(&shopper),
                    order_id: id,
                    taken: taken_lines(&view),
                };
                self.finish_checkout(finish).await?;
                Ok(view)
            },
        )
        .await
    }

    pub async fn finish_checkout(&self, msg: FinishCheckout) -> Result<(), CartsError> {
        let cart_id = self.resolve(&msg.owner).await?;
        let user_id = match &msg.owner {
            CartOwner::User(id) => Some(*id),
            CartOwner::Guest { .. } => None,
        };
        store::finish_checkout(&self.pool, cart_id, msg.order_id, user_id, &msg.taken).await?;
        self.forget(cart_id).await;
        Ok(())
    }

    pub async fn reconcile_uses(&self, msg: ReconcilePromotionUses) -> Result<u64, CartsError> {
        let held =
            promotion_store::held_orders(&self.pool, msg.min_age_secs, RECONCILE_BATCH).await?;
        if held.is_empty() {
            return Ok(0);
        }
        let statuses: HashMap<Uuid, String> = self
            .orders
            .call(GetOrderStatuses(held.clone()))
            .await
            .map_err(|e| CartsError::OrdersUnavailable(e.to_string()))?
            .into_iter()
            .collect();
        let mut release = Vec::new();
        let mut settle = Vec::new();
        for order_id in held {
            match statuses.get(&order_id).map(String::as_str) {
                // Never placed (the checkout failed past its claim).
                None | Some("cancelled" | "expired") => release.push(order_id),
                Some("pending") => {}
                Some(_) => settle.push(order_id),
            }
        }
        let released = promotion_store::release(&self.pool, &release).await?;
        promotion_store::settle(&self.pool, &settle).await?;
        if released > 0 {
            tracing::info!(released, "promotion uses given back");
        }
        Ok(released)
    }
}
