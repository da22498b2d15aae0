//! The work behind the variant messages: a product's variants listed,
//! added, changed and deleted, each change keeping its product's totals
//! (price, stock, SKU) in the same transaction.

use uuid::Uuid;

use super::error::CatalogError;
use super::handlers::{map_db_error, CatalogService, Op};
use super::messages::*;
use crate::domain::catalog::variant::repeated_combination;
use crate::domain::events::{EventType, StockReason};
use crate::store::catalog::{self as store, VariantRow};
use crate::store::stock as stock_store;

impl CatalogService {
    pub async fn list_variants(&self, msg: ListVariants) -> Result<Vec<VariantView>, CatalogError> {
        if store::get_product(&self.pool, msg.0).await?.is_none() {
            return Err(CatalogError::ProductNotFound);
        }
        let rows = store::variants_of(&self.pool, &[msg.0]).await?;
        Ok(rows.into_iter().map(VariantView::from).collect())
    }

    pub async fn get_variant(&self, msg: GetVariant) -> Result<VariantView, CatalogError> {
        if store::get_product(&self.pool, msg.product_id)
            .await?
            .is_none()
        {
            return Err(CatalogError::ProductNotFound);
        }
        store::variants_of(&self.pool, &[msg.product_id])
            .await?
            .into_iter()
            .find(|v| v.id == msg.variant_id)
            .map(VariantView::from)
            .ok_or(CatalogError::VariantNotFound)
    }

    pub async fn create_variant(&self, msg: CreateVariant) -> Result<VariantView, CatalogError> {
        let mut tx = self.pool.begin().await?;
        let siblings = store::lock_variants_of(&mut tx, msg.product_id).await?;
        let product = store::lock_product(&mut tx, msg.product_id)
            .await?
            .ok_or(CatalogError::ProductNotFound)?;
        if siblings.len() >= crate::domain::catalog::variant::MAX_VARIANTS {
            return Err(CatalogError::Validation(
                crate::domain::validation::ValidationErrors::single(
                    "variants",
                    "too_many",
                    "a product has at most 250 variants",
                ),
            ));
        }
        let fields = msg
            .draft
            .validate(&product.options.0)
            .map_err(CatalogError::Validation)?;
        if siblings.iter().any(|s| s.options.0 == fields.options) {
            return Err(CatalogError::VariantExists);
        }
        let id = Uuid::new_v4();
        let opening = [(id, fields.stock)];
        store::insert_variants(&mut tx, msg.product_id, &[(id, fields)])
            .await
            .map_err(|e| map_db_error(e, Op::Write))?;
        stock_store::record_opening_stock(&mut tx, &opening, Some(msg.admin))
            .await?
            .map_err(CatalogError::Stock)?;
        store::refresh_totals(&mut tx, &[msg.product_id]).await?;
        store::append_product_event(&mut tx, EventType::ProductUpdated, msg.product_id).await?;
        if opening[0].1 > 0 {
            stock_store::append_stock_changed(&mut tx, &[id], StockReason::Adjustment).await?;
        }
        let row = store::lock_variants_of(&mut tx, msg.product_id)
            .await?
            .into_iter()
            .find(|v| v.id == id)
            .ok_or_else(|| CatalogError::Unexpected(anyhow::anyhow!("new variant went missing")))?;
        tx.commit().await?;
        self.invalidate().await;
        Ok(row.into())
    }

    pub async fn update_variant(&self, msg: UpdateVariant) -> Result<VariantView, CatalogError> {
        let mut tx = self.pool.begin().await?;
        let siblings = store::lock_variants_of(&mut tx, msg.product_id).await?;
        let product = store::lock_product(&mut tx, msg.product_id)
            .await?
            .ok_or(CatalogError::ProductNotFound)?;
        let current = find(&siblings, msg.variant_id)?;
        let fields = msg
            .patch
            .apply(&current.fields())
            .validate(&product.options.0)
            .map_err(CatalogError::Validation)?;
        let others: Vec<_> = siblings
            .iter()
            .filter(|s| s.id != msg.variant_id)
            .map(|s| &s.options.0)
            .chain(std::iter::once(&fields.options))
            .collect();
        if repeated_combination(&others).is_some() {
            return Err(CatalogError::VariantExists);
        }
        let row = store::update_variant(&mut tx, msg.variant_id, &fields)
            .await
            .map_err(|e| map_db_error(e, Op::Write))?
            .ok_or(CatalogError::VariantNotFound)?;
        stock_store::adjust_at_home(
            &mut tx,
            msg.variant_id,
            row.stock - current.stock,
            Some(msg.admin),
        )
        .await?
        .map_err(CatalogError::Stock)?;
        let moved = store::refresh_totals(&mut tx, &[msg.product_id]).await?;
        store::append_product_event(&mut tx, EventType::ProductUpdated, msg.product_id).await?;
        tx.commit().await?;
        if current.fields().reshapes_listings(&fields) {
            self.invalidate().await;
        } else {
            self.invalidate_products(&moved).await;
        }
        Ok(row.into())
    }

    pub async fn delete_variant(&self, msg: DeleteVariant) -> Result<(), CatalogError> {
        let mut tx = self.pool.begin().await?;
        let siblings = store::lock_variants_of(&mut tx, msg.product_id).await?;
        if store::lock_product(&mut tx, msg.product_id)
            .await?
            .is_none()
        {
            return Err(CatalogError::ProductNotFound);
        }
        find(&siblings, msg.variant_id)?;
        if siblings.len() == 1 {
            return Err(CatalogError::LastVariant);
        }
        if store::variant_is_held(&mut tx, msg.variant_id).await? {
            return Err(CatalogError::VariantInUse);
        }
        let deleted = store::delete_variant(&mut tx, msg.variant_id)
            .await
            .map_err(|e| match map_db_error(e, Op::Delete) {
                // Committed or released reservations still name it.
                CatalogError::ProductInUse => CatalogError::VariantInUse,
                other => other,
            })?;
        if !deleted {
            return Err(CatalogError::VariantNotFound);
        }
        crate::store::product_images::forget_variant(&mut tx, msg.variant_id).await?;
        store::refresh_totals(&mut tx, &[msg.product_id]).await?;
        store::append_product_event(&mut tx, EventType::ProductUpdated, msg.product_id).await?;
        tx.commit().await?;
        self.invalidate().await;
        Ok(())
    }
}

/// The variant `id` among a product's variants.
fn find(variants: &[VariantRow], id: Uuid) -> Result<&VariantRow, CatalogError> {
    variants
        .iter()
        .find(|v| v.id == id)
        .ok_or(CatalogError::VariantNotFound)
}
