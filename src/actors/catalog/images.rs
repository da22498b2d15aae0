//! The work behind the image messages: an upload checked by content and
//! decoded off the actor's thread, its file written to the media store and
//! its row recorded; changes and deletes; files read for the media route.

use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use super::error::CatalogError;
use super::handlers::CatalogService;
use super::messages::*;
use crate::domain::catalog::image::{check_alt, check_variant_ids, inspect, media_key, MAX_IMAGES};
use crate::domain::validation::ValidationErrors;
use crate::store::catalog as store;
use crate::store::product_images::{self as images, NewImage};

/// Highest image position.
const MAX_POSITION: i64 = 10_000;

/// A media store failure: the store, not the request, is at fault.
fn media_unavailable(e: anyhow::Error) -> CatalogError {
    CatalogError::Unavailable(e.context("media store"))
}

impl CatalogService {
    pub async fn add_image(&self, msg: AddProductImage) -> Result<ImageView, CatalogError> {
        let mut errors = ValidationErrors::new();
        let alt = check_alt(&mut errors, &msg.alt);
        errors.into_result().map_err(CatalogError::Validation)?;
        let bytes = msg.bytes;
        let file = bytes.clone();
        // Decoding a large image takes milliseconds of CPU: off the
        // actor's thread, so other catalog messages are not held up.
        let (kind, width, height) = actix_web::rt::task::spawn_blocking(move || inspect(&file))
            .await
            .map_err(|e| CatalogError::Unexpected(anyhow::anyhow!("image check panicked: {e}")))?
            .map_err(|refusal| CatalogError::Validation(refusal.into_errors()))?;
        let size = i32::try_from(bytes.len()).map_err(|_| {
            CatalogError::Validation(ValidationErrors::single("file", "too_large", "too large"))
        })?;

        let mut tx = self.pool.begin().await?;
        let variants = store::lock_variants_of(&mut tx, msg.product_id).await?;
        store::lock_product(&mut tx, msg.product_id)
            .await?
            .ok_or(CatalogError::ProductNotFound)?;
        let mut errors = ValidationErrors::new();
        let ids: Vec<Uuid> = variants.iter().map(|v| v.id).collect();
        check_variant_ids(&mut errors, &msg.variant_ids, &ids);
        if images::count(&mut tx, msg.product_id).await? >= MAX_IMAGES as i64 {
            errors.add(
                "file",
                "too_many",
                format!("a product has at most {MAX_IMAGES} images"),
            );
        }
        errors.into_result().map_err(CatalogError::Validation)?;

        let id = Uuid::new_v4();
        let digest = hex::encode(Sha256::digest(&bytes));
        let key = media_key(msg.product_id, id, &digest, kind);
        let mut variant_ids = msg.variant_ids;
        variant_ids.sort_unstable();
        variant_ids.dedup();
        // The file first: a row never points at a missing file. If the
        // row then fails, the file is removed again.
        self.media
            .put(&key, bytes)
            .await
            .map_err(media_unavailable)?;
        let new = NewImage {
            id,
            product_id: msg.product_id,
            key: &key,
            content_type: kind.content_type(),
            bytes: size,
            width: i32::try_from(width).unwrap_or(i32::MAX),
            height: i32::try_from(height).unwrap_or(i32::MAX),
            alt: &alt,
            variant_ids: &variant_ids,
        };
        let written = async {
            let row = images::insert(&mut tx, &new).await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(row)
        }
        .await;
        let row = match written {
            Ok(row) => row,
            Err(e) => {
                if let Err(cleanup) = self.media.delete(&key).await {
                    tracing::warn!(error = %format!("{cleanup:#}"), key, "image file left behind");
                }
                return Err(e.into());
            }
        };
        self.invalidate().await;
        Ok(row.into())
    }

    pub async fn update_image(&self, msg: UpdateProductImage) -> Result<ImageView, CatalogError> {
        let mut tx = self.pool.begin().await?;
        let variants = store::lock_variants_of(&mut tx, msg.product_id).await?;
        store::lock_product(&mut tx, msg.product_id)
            .await?
            .ok_or(CatalogError::ProductNotFound)?;
        let current = images::lock(&mut tx, msg.product_id, msg.image_id)
            .await?
            .ok_or(CatalogError::ImageNotFound)?;
        let mut errors = ValidationErrors::new();
        let alt = check_alt(
            &mut errors,
            msg.patch.alt.as_deref().unwrap_or(&current.alt),
        );
        let position = msg.patch.position.unwrap_or(i64::from(current.position));
        if !(0..=MAX_POSITION).contains(&position) {
            errors.add(
                "position",
                "out_of_range",
                format!("position must be 0 to {MAX_POSITION}"),
            );
        }
        let mut chosen = msg.patch.variant_ids.unwrap_or(current.variant_ids);
        chosen.sort_unstable();
        chosen.dedup();
        let ids: Vec<Uuid> = variants.iter().map(|v| v.id).collect();
        check_variant_ids(&mut errors, &chosen, &ids);
        errors.into_result().map_err(CatalogError::Validation)?;
        let position = i32::try_from(position).unwrap_or(0);
        let row = images::update(&mut tx, msg.image_id, &alt, position, &chosen).await?;
        tx.commit().await?;
        self.invalidate().await;
        Ok(row.into())
    }

    pub async fn delete_image(&self, msg: DeleteProductImage) -> Result<(), CatalogError> {
        let mut tx = self.pool.begin().await?;
        let current = images::lock(&mut tx, msg.product_id, msg.image_id)
            .await?
            .ok_or(CatalogError::ImageNotFound)?;
        images::delete(&mut tx, msg.image_id).await?;
        tx.commit().await?;
        self.invalidate().await;
        // After the commit: a row never points at a missing file; a file
        // left by a failure here is only unused space.
        if let Err(e) = self.media.delete(&current.key).await {
            tracing::warn!(error = %format!("{e:#}"), key = current.key, "image file left behind");
        }
        Ok(())
    }

    pub async fn media(&self, msg: GetMedia) -> Result<Option<bytes::Bytes>, CatalogError> {
        self.media.get(&msg.0).await.map_err(media_unavailable)
    }
}
