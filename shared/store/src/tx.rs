//! A unit of work: writes that commit together, in one transaction on one connection. The write path
//! puts a batch's rows, their child rows, tombstones and receipt marks in one [`WriteTx`], so a batch
//! costs one commit (one WAL flush) and a constant number of round trips whatever its size, and a
//! failure leaves nothing half-written.

use sqlx::{PgConnection, Postgres, Transaction};
use tds_core::{Entity, EntityKind, VersionedRow};

use crate::upsert::{BatchReport, Tombstone};
use crate::{Store, StoreError};

/// An open write transaction; dropped without [`WriteTx::commit`], it rolls back.
pub struct WriteTx {
    tx: Transaction<'static, Postgres>,
}

impl std::fmt::Debug for WriteTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteTx").finish_non_exhaustive()
    }
}

impl Store {
    /// Opens a write transaction.
    pub async fn begin(&self) -> Result<WriteTx, StoreError> {
        let tx = self
            .pool
            .begin()
            .await
            .map_err(StoreError::db("begin a transaction"))?;
        Ok(WriteTx { tx })
    }

    /// A connection of the pool (tested before it is handed out).
    pub(crate) async fn acquire(&self) -> Result<sqlx::pool::PoolConnection<Postgres>, StoreError> {
        self.pool
            .acquire()
            .await
            .map_err(StoreError::db("acquire a connection"))
    }
}

impl WriteTx {
    fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// [`Store::upsert`] in this transaction.
    pub async fn upsert<E: Entity>(
        &mut self,
        rows: &[VersionedRow<E>],
    ) -> Result<BatchReport, StoreError> {
        crate::upsert::upsert_gated(self.conn(), rows, false).await
    }

    /// [`Store::upsert_fresh`] in this transaction.
    pub async fn upsert_fresh<E: Entity>(
        &mut self,
        rows: &[VersionedRow<E>],
    ) -> Result<BatchReport, StoreError> {
        crate::upsert::upsert_gated(self.conn(), rows, true).await
    }

    /// [`Store::tombstone`] in this transaction.
    pub async fn tombstone(
        &mut self,
        kind: EntityKind,
        deletions: &[Tombstone],
    ) -> Result<BatchReport, StoreError> {
        crate::upsert::tombstone(self.conn(), kind, deletions, true).await
    }

    /// Tombstones the live child rows (an item's stock, a price book's rates) of `parents` as of
    /// each parent's time, except those in `keep`; `None` for kinds without children.
    pub async fn tombstone_children(
        &mut self,
        kind: EntityKind,
        parents: &[Tombstone],
        keep: &[String],
    ) -> Result<Option<BatchReport>, StoreError> {
        crate::upsert::tombstone_children(self.conn(), kind, parents, keep).await
    }

    /// Tombstones only rows already stored (a record Zoho answered "does not exist" for): an id
    /// never stored gets no row and is reported [`crate::Outcome::Unknown`].
    pub async fn tombstone_known(
        &mut self,
        kind: EntityKind,
        deletions: &[Tombstone],
    ) -> Result<BatchReport, StoreError> {
        crate::upsert::tombstone(self.conn(), kind, deletions, false).await
    }

    /// Records webhook `receipts`, stages domain `events` in the outbox (one row) and forgets
    /// `published` outbox rows, all in one statement of this transaction (the last round trip before
    /// COMMIT); returns the new outbox row's id (`None` without events), from which each event's
    /// `event_id` is made ([`crate::outbox::with_event_id`]).
    pub async fn stage(
        &mut self,
        receipts: &[crate::NewReceipt],
        events: &[tds_core::ports::DomainEvent],
        published: &[i64],
    ) -> Result<Option<i64>, StoreError> {
        crate::outbox::stage(self.conn(), receipts, events, published).await
    }

    /// Commits every write of the transaction.
    pub async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await.map_err(StoreError::db("commit"))
    }
}
