//! Image sync: which item images to fetch or remove, and downloading them into the blob store with
//! their metadata rows (`item_images`). An image run follows every item run; only images whose id
//! changed are downloaded.

use std::sync::Arc;

use chrono::Utc;
use tds_core::ports::BlobStore;
use tds_core::{EntityKind, ItemImage, VersionedRow};
use tds_zoho::{Priority, Product, ZohoClient};

use crate::jobs::{JobOutput, SyncJob};
use crate::writer::EntityWriter;
use crate::Failure;

/// Downloads item images; constructed with the blob store they go to.
#[derive(Clone)]
pub struct ImageSync {
    zoho: Arc<ZohoClient>,
    writer: EntityWriter,
    blobs: Arc<dyn BlobStore>,
}

impl ImageSync {
    /// Image sync through `zoho` into `blobs`, recording metadata with `writer`.
    pub fn new(
        zoho: Arc<ZohoClient>,
        writer: EntityWriter,
        blobs: Arc<dyn BlobStore>,
    ) -> ImageSync {
        ImageSync {
            zoho,
            writer,
            blobs,
        }
    }

    /// Tombstones images of items that lost theirs and splits the downloads into jobs of `per_job`.
    pub(crate) async fn plan(
        &self,
        run_id: i64,
        org: &str,
        per_job: usize,
    ) -> Result<Vec<SyncJob>, Failure> {
        let store = self.writer.store();
        let gone = store.images_to_remove(org).await?;
        self.writer
            .tombstone_ids(org, EntityKind::ItemImage, gone, Utc::now())
            .await?;
        let work = store.images_to_fetch(org).await?;
        Ok(work
            .chunks(per_job.max(1))
            .enumerate()
            .map(|(n, chunk)| SyncJob::Images {
                run_id,
                key: format!("images:{n}"),
                org_id: org.to_string(),
                images: chunk
                    .iter()
                    .map(|w| (w.item_id.clone(), w.image_id.clone(), w.image_name.clone()))
                    .collect(),
            })
            .collect())
    }

    /// Downloads images into the blob store and records their metadata.
    pub(crate) async fn download(
        &self,
        org: &str,
        images: &[(String, String, Option<String>)],
    ) -> Result<JobOutput, Failure> {
        let mut out = JobOutput::default();
        let mut rows = Vec::new();
        for (item_id, image_id, image_name) in images {
            out.counts.api_calls += 1;
            out.counts.fetched += 1;
            let (content_type, bytes) = match self
                .zoho
                .get_bytes(
                    org,
                    Product::Inventory,
                    &format!("items/{item_id}/image"),
                    Priority::Poll,
                )
                .await
            {
                Ok(x) => x,
                Err(e) if e.is_not_found() => {
                    // The image went away since the item was synced; the next item sync records that.
                    out.counts.failed += 1;
                    continue;
                }
                Err(e) => return Err(Failure::from(e)),
            };
            let extension = match content_type.as_str() {
                "image/png" => "png",
                "image/gif" => "gif",
                "image/webp" => "webp",
                _ => "jpg",
            };
            let key = format!("{org}/item-images/{item_id}/{image_id}.{extension}");
            self.blobs
                .put(&key, bytes.clone(), &content_type)
                .await
                .map_err(|e| {
                    if e.is_retriable() {
                        Failure::Retry(format!("blob store: {e}"))
                    } else {
                        Failure::Permanent(format!("blob store: {e}"))
                    }
                })?;
            let image = ItemImage::new(
                item_id.clone(),
                image_id.clone(),
                image_name.clone(),
                Some(content_type),
                &bytes,
                key,
            );
            rows.push(VersionedRow::new(org, image, Utc::now()));
        }
        if !rows.is_empty() {
            let report = self.writer.write_rows(&rows).await?;
            out.counts.changed += report.changed() as i64;
            out.counts.unchanged += report.unchanged() as i64;
        }
        Ok(out)
    }
}
