//! The work behind the promotion messages: admins' CRUD, and a customer
//! putting a code on their cart or taking it off.

use uuid::Uuid;

use super::CartsService;
use crate::actors::carts::error::CartsError;
use crate::actors::carts::messages::CartOwner;
use crate::actors::carts::promotions::*;
use crate::domain::carts::CartView;
use crate::domain::promotions;
use crate::store::carts as store;
use crate::store::database::OnConstraint as _;
use crate::store::promotions as promotion_store;

impl CartsService {
    pub async fn create_promotion(
        &self,
        msg: CreatePromotion,
    ) -> Result<PromotionView, CartsError> {
        let rule = promotions::validate(msg.0).map_err(CartsError::Validation)?;
        let row = promotion_store::insert(&self.pool, Uuid::new_v4(), &rule)
            .await
            .on_constraint(promotion_store::CODE_TAKEN, || CartsError::CodeTaken)?;
        Ok(row.into())
    }

    pub async fn list_promotions(
        &self,
        msg: ListPromotions,
    ) -> Result<(Vec<PromotionView>, i64), CartsError> {
        let (rows, count) = promotion_store::list(&self.pool, msg.0).await?;
        Ok((rows.into_iter().map(PromotionView::from).collect(), count))
    }

    pub async fn get_promotion(&self, msg: GetPromotion) -> Result<PromotionView, CartsError> {
        promotion_store::by_id(&self.pool, msg.0)
            .await?
            .map(PromotionView::from)
            .ok_or(CartsError::PromotionNotFound)
    }

    pub async fn update_promotion(
        &self,
        msg: UpdatePromotion,
    ) -> Result<PromotionView, CartsError> {
        let row = promotion_store::by_id(&self.pool, msg.id)
            .await?
            .ok_or(CartsError::PromotionNotFound)?;
        let rule =
            promotions::validate(msg.patch.apply(row.rule())).map_err(CartsError::Validation)?;
        promotion_store::update(&self.pool, msg.id, &rule)
            .await
            .on_constraint(promotion_store::CODE_TAKEN, || CartsError::CodeTaken)?
            .map(PromotionView::from)
            .ok_or(CartsError::PromotionNotFound)
    }

    pub async fn delete_promotion(&self, msg: DeletePromotion) -> Result<(), CartsError> {
        if promotion_store::delete(&self.pool, msg.0).await? {
            Ok(())
        } else {
            Err(CartsError::PromotionNotFound)
        }
    }

    pub async fn apply_promotion(&self, msg: ApplyPromotion) -> Result<CartView, CartsError> {
        let cart_id = store::user_cart(&self.pool, msg.user_id).await?;
        let promotion = promotion_store::by_code(&self.pool, msg.code.trim())
            .await?
            .ok_or(CartsError::PromotionNotFound)?;
        let cart = self.priced(cart_id).await?.cart;
        if let Err(why) = self.verdict(&promotion, &cart, Some(msg.user_id)).await? {
            return Err(CartsError::PromotionRefused(why));
        }
        store::set_promotion(&self.pool, cart_id, Some((promotion.id, &promotion.code))).await?;
        self.forget(cart_id).await;
        self.render(cart_id).await
    }

    pub async fn remove_promotion(&self, msg: RemovePromotion) -> Result<CartView, CartsError> {
        let cart_id = store::user_cart(&self.pool, msg.user_id).await?;
        store::set_promotion(&self.pool, cart_id, None).await?;
        self.render_committed(&CartOwner::User(msg.user_id), cart_id)
            .await
    }
}
