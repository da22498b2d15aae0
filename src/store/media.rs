//! The media store: product image files, behind `object_store` so that a
//! local folder (the default) and an S3-compatible bucket are one API.

use std::sync::Arc;

use anyhow::Context as _;
use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, PutPayload};
use secrecy::ExposeSecret as _;

use crate::config::{MediaBackend, MediaSettings};

/// Where image files are kept.
#[derive(Clone)]
pub struct MediaStore {
    inner: Arc<dyn ObjectStore>,
}

impl std::fmt::Debug for MediaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MediaStore({})", self.inner)
    }
}

impl MediaStore {
    /// The store `settings` name; the local folder is created if missing.
    pub fn from_settings(settings: &MediaSettings) -> anyhow::Result<Self> {
        let inner: Arc<dyn ObjectStore> = match settings.backend {
            MediaBackend::Local => {
                std::fs::create_dir_all(&settings.root).with_context(|| {
                    format!(
                        "creating the media folder {:?} (set media.root to a writable folder)",
                        settings.root
                    )
                })?;
                Arc::new(
                    object_store::local::LocalFileSystem::new_with_prefix(&settings.root)
                        .context("opening the media folder")?,
                )
            }
            MediaBackend::S3 => {
                let s3 = settings
                    .s3
                    .as_ref()
                    .context("media.backend = \"s3\" needs [media.s3]")?;
                let mut builder = object_store::aws::AmazonS3Builder::from_env()
                    .with_bucket_name(&s3.bucket)
                    .with_allow_http(s3.allow_http);
                if let Some(region) = &s3.region {
                    builder = builder.with_region(region);
                }
                if let Some(endpoint) = &s3.endpoint {
                    builder = builder.with_endpoint(endpoint);
                }
                if let Some(key) = &s3.access_key_id {
                    builder = builder.with_access_key_id(key);
                }
                if let Some(secret) = &s3.secret_access_key {
                    builder = builder.with_secret_access_key(secret.expose_secret());
                }
                Arc::new(builder.build().context("configuring the S3 media store")?)
            }
        };
        Ok(Self { inner })
    }

    /// Writes `bytes` under `key`.
    pub async fn put(&self, key: &str, bytes: Bytes) -> anyhow::Result<()> {
        self.inner
            .put(&Path::from(key), PutPayload::from_bytes(bytes))
            .await
            .with_context(|| format!("writing media {key}"))?;
        Ok(())
    }

    /// The bytes under `key`; `None` when there are none.
    pub async fn get(&self, key: &str) -> anyhow::Result<Option<Bytes>> {
        match self.inner.get(&Path::from(key)).await {
            Ok(found) => Ok(Some(found.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading media {key}")),
        }
    }

    /// Removes `key` (nothing when it is already gone).
    pub async fn delete(&self, key: &str) -> anyhow::Result<()> {
        match self.inner.delete(&Path::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e).with_context(|| format!("deleting media {key}")),
        }
    }
}
