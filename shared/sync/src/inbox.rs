//! The inbox applier (what entity-processor runs on an SQS batch).
//!
//! Each body is parsed once into an [`InboxBody`]: a webhook inbox message, a sync job (handed to the
//! [`SyncRunner`]), or unreadable (dead-lettered with the reason); a dead letter moved back by a
//! redrive is unwrapped first. Webhooks are deduped against their receipts (one read per batch),
//! grouped per (organisation, kind), completed where the payload lacks what the detail GET has (items
//! in bulk by `/itemdetails`; documents without line items, contacts, price books without rates and
//! payloads without Zoho's time by their detail GET; a record Zoho no longer has becomes a tombstone
//! as of now, one it never had leaves a receipt and no row; a deletion is applied only once Zoho
//! answers "does not exist", so a replayed or mis-routed delivery cannot delete live data) and
//! written through the [`EntityWriter`], in one transaction with each message's receipt and outcome.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use tracing::Instrument;

use chrono::Utc;
use serde_json::{json, Value};
use tds_core::ports::Queue;
use tds_core::webhook::{Action, InboxMessage};
use tds_core::EntityKind;
use tds_store::upsert::Tombstone;
use tds_store::{NewReceipt, Outcome, Store};
use tds_zoho::{Priority, ZohoClient};

use crate::jobs::SyncJob;
use crate::runner::{JobVerdict, SyncRunner};
use crate::writer::{EntityWriter, Freshness, Prepared};
use crate::{needs_refetch, unwrap_dead_letter, Disposition, Failure, Incoming};

/// An inbox message body, parsed once.
#[derive(Debug, Clone, PartialEq)]
pub enum InboxBody {
    /// A sync job (`{"sync": {...}}`).
    Sync(SyncJob),
    /// A webhook as webhook-ingest enqueued it.
    Webhook(Box<InboxMessage>),
    /// Neither: why it cannot be read.
    Unreadable(String),
}

impl InboxBody {
    /// Parses a body (already unwrapped from a dead-letter wrapper).
    pub fn parse(body: &str) -> InboxBody {
        // The common case first, straight into its struct (no intermediate `Value`).
        if let Ok(m) = serde_json::from_str::<InboxMessage>(body) {
            return InboxBody::Webhook(Box::new(m));
        }
        let value: Value = match serde_json::from_str(body) {
            Ok(v) => v,
            Err(e) => return InboxBody::Unreadable(format!("not an inbox message: {e}")),
        };
        if let Some(job) = value.get("sync") {
            return match serde_json::from_value(job.clone()) {
                Ok(job) => InboxBody::Sync(job),
                Err(e) => InboxBody::Unreadable(format!("not a sync job: {e}")),
            };
        }
        match serde_json::from_value::<InboxMessage>(value) {
            Ok(m) => InboxBody::Webhook(Box::new(m)),
            Err(e) => InboxBody::Unreadable(format!("not an inbox message: {e}")),
        }
    }
}

/// A queue message's body read once: the body to process (a dead letter this processor wrapped,
/// moved back by a redrive, is unwrapped to what it carried) and what it is. The wrapper is looked
/// for only in a body that is not an inbox message, so the common case is parsed once.
fn read_body(body: &str) -> (std::borrow::Cow<'_, str>, InboxBody) {
    let parsed = InboxBody::parse(body);
    if let InboxBody::Unreadable(_) = parsed {
        if let std::borrow::Cow::Owned(original) = unwrap_dead_letter(body) {
            let parsed = InboxBody::parse(&original);
            return (std::borrow::Cow::Owned(original), parsed);
        }
    }
    (std::borrow::Cow::Borrowed(body), parsed)
}

/// Applies inbox batches; constructed with the dead-letter queue and the runner for sync jobs.
#[derive(Clone)]
pub struct Processor {
    zoho: Arc<ZohoClient>,
    writer: EntityWriter,
    dead_letters: Arc<dyn Queue>,
    runner: SyncRunner,
}

/// A webhook on its way through the batch.
struct Work {
    index: usize,
    message: InboxMessage,
    /// The payload lacks what the detail GET has ([`needs_refetch`]), decided once.
    refetch: bool,
}

impl Processor {
    /// An applier re-fetching through `zoho`, writing with `writer`, dead-lettering to
    /// `dead_letters`, and handing sync jobs to `runner`.
    pub fn new(
        zoho: Arc<ZohoClient>,
        writer: EntityWriter,
        dead_letters: Arc<dyn Queue>,
        runner: SyncRunner,
    ) -> Processor {
        Processor {
            zoho,
            writer,
            dead_letters,
            runner,
        }
    }

    /// The store the processor writes to.
    pub fn store(&self) -> &Store {
        self.writer.store()
    }

    /// The runner sync jobs go to.
    pub fn runner(&self) -> &SyncRunner {
        &self.runner
    }

    /// Processes a batch; one disposition per message, in order.
    pub async fn process(&self, batch: Vec<Incoming>) -> Vec<(String, Disposition)> {
        let mut out: Vec<Option<Disposition>> = vec![None; batch.len()];
        let mut work: Vec<Work> = Vec::new();
        let started = std::time::Instant::now();
        // A dead letter this processor wrapped, moved back by a redrive: process what it carried.
        let (bodies, parsed): (Vec<std::borrow::Cow<'_, str>>, Vec<InboxBody>) =
            batch.iter().map(|m| read_body(&m.body)).unzip();
        for (index, (body, parsed)) in bodies.iter().map(|b| b.as_ref()).zip(parsed).enumerate() {
            let disposition = match parsed {
                InboxBody::Webhook(message) => {
                    let refetch = needs_refetch(message.kind, &message.payload);
                    work.push(Work {
                        index,
                        message: *message,
                        refetch,
                    });
                    continue;
                }
                InboxBody::Sync(_)
                    if started.elapsed() > self.runner.settings().job_time_budget =>
                {
                    self.verdict(body, self.runner.defer(body).await).await
                }
                InboxBody::Sync(job) => {
                    let span =
                        tracing::info_span!("sync_job", message_id = %batch[index].message_id);
                    let verdict = self.runner.handle_job(job).instrument(span.clone()).await;
                    self.verdict(body, verdict).instrument(span).await
                }
                InboxBody::Unreadable(reason) => self.dead_letter(body, &reason).await,
            };
            out[index] = Some(disposition);
        }

        // Duplicates of messages already applied (or earlier in this batch) are done. Receipts are
        // read only when a message would cost a Zoho call: re-applying a complete payload is a
        // no-op under the version gate, and its receipt keeps the first outcome.
        let mut fresh = Vec::new();
        let keys: Vec<&str> = if work.iter().any(Work::asks_zoho) {
            work.iter().map(|w| w.message.dedupe_key.as_str()).collect()
        } else {
            Vec::new()
        };
        match self.store().applied_receipts(&keys).await {
            Ok(applied) => {
                let mut seen = HashSet::new();
                for w in work {
                    if !applied.contains(&w.message.dedupe_key)
                        && seen.insert(w.message.dedupe_key.clone())
                    {
                        fresh.push(w);
                    } else {
                        out[w.index] = Some(Disposition::Done);
                    }
                }
            }
            Err(e) => {
                for w in work {
                    out[w.index] = Some(Disposition::Retry(e.to_string()));
                }
            }
        }

        // One group per (organisation, kind): re-fetches and writes are batched per group.
        let mut groups: BTreeMap<(String, EntityKind), Vec<Work>> = BTreeMap::new();
        for w in fresh {
            groups
                .entry((w.message.org_id.clone(), w.message.kind))
                .or_default()
                .push(w);
        }
        // Complete every group from Zoho first (no transaction is held while Zoho is asked), then
        // write them all in one transaction with their receipts; if that fails, group by group, so
        // one group's failure does not hold back the others.
        let mut planned = Vec::with_capacity(groups.len());
        for ((org, kind), items) in groups {
            // An organisation this process does not know yet may have been added to the
            // credentials since it started: look again before its messages fail.
            if let Err(e) = self.zoho.ensure_org(&org).await {
                tracing::warn!(org = %tds_core::fields::truncate(&org, 40), error = %e, "organisation not configured");
            }
            let mut items = items;
            let span = tracing::info_span!("webhook_group", org = %tds_core::fields::truncate(&org, 40), %kind, messages = items.len());
            let plan = self
                .complete_group(&org, kind, &mut items)
                .instrument(span)
                .await;
            planned.push((org, kind, items, plan));
        }
        let message_ids: Vec<&str> = batch.iter().map(|m| m.message_id.as_str()).collect();
        let results = self.write_all(&mut planned, &message_ids, &bodies).await;
        for ((_, _, items, _), results) in planned.iter().zip(results) {
            for (w, result) in items.iter().zip(results) {
                let disposition = match result {
                    Ok(_) => Disposition::Done,
                    Err(Failure::Retry(reason)) => Disposition::Retry(reason),
                    Err(Failure::Permanent(reason)) => {
                        let span = tracing::info_span!("webhook", message_id = %batch[w.index].message_id,
                            org = %w.message.org_id, kind = %w.message.kind, zoho_id = %w.message.zoho_id);
                        self.dead_letter(&bodies[w.index], &reason)
                            .instrument(span)
                            .await
                    }
                };
                out[w.index] = Some(disposition);
            }
        }
        batch
            .iter()
            .zip(out)
            .map(|(m, d)| {
                (
                    m.message_id.clone(),
                    d.unwrap_or(Disposition::Retry("unprocessed".into())),
                )
            })
            .collect()
    }

    async fn verdict(&self, body: &str, verdict: JobVerdict) -> Disposition {
        match verdict {
            JobVerdict::Done => Disposition::Done,
            JobVerdict::Retry(reason) => Disposition::Retry(reason),
            JobVerdict::Reject(reason) => self.dead_letter(body, &reason).await,
        }
    }

    /// Sends `body` to the dead-letter queue as `{"reason", "failed_at", "original": body}`; a
    /// redrive moves that back to the inbox, where [`unwrap_dead_letter`] recovers `body`.
    async fn dead_letter(&self, body: &str, reason: &str) -> Disposition {
        let wrapped =
            json!({"reason": reason, "failed_at": Utc::now(), "original": body}).to_string();
        match self.dead_letters.send(wrapped).await {
            Ok(_) => {
                tracing::warn!(%reason, "message dead-lettered");
                self.writer
                    .metrics()
                    .count(tds_core::metrics::Metric::DeadLetters, 1);
                self.writer
                    .publish(vec![crate::event(
                        "tds.deadletter.added",
                        json!({"reason": reason}),
                    )])
                    .await;
                Disposition::DeadLettered(reason.to_string())
            }
            // Not lost: the queue redelivers it and redrive moves it after maxReceiveCount.
            Err(e) => Disposition::Retry(format!("dead-letter queue unavailable ({e}); {reason}")),
        }
    }

    /// Completes one (organisation, kind) group from Zoho: what to write, what to tombstone, and the
    /// messages that already failed.
    /// Complete payloads are moved into the plan (a message's payload is not read after this).
    async fn complete_group(&self, org: &str, kind: EntityKind, items: &mut [Work]) -> GroupPlan {
        let mut failed: Vec<(usize, Failure)> = Vec::new();
        let mut deletions: Vec<(usize, Tombstone)> = Vec::new();
        let mut gone: Vec<(usize, Tombstone)> = Vec::new();
        let mut records: Vec<(usize, Value)> = Vec::new();

        // Every message is answered from Zoho where the payload cannot be trusted on its own: items
        // always (in bulk), a payload lacking what the detail has, and every deletion (a replayed or
        // mis-routed delivery must not delete live data: only Zoho's "does not exist" does).
        let asked: Vec<usize> = (0..items.len()).filter(|&i| items[i].asks_zoho()).collect();
        for (i, w) in items.iter_mut().enumerate() {
            if !asked.contains(&i) {
                records.push((i, std::mem::take(&mut w.message.payload)));
            }
        }
        // What Zoho answered for message `i`: its record, or that it does not exist.
        let mut answer = |i: usize, found: Option<Value>, items: &[Work]| {
            let m = &items[i].message;
            match (found, m.action) {
                (Some(record), Action::Deleted) => {
                    tracing::warn!(org, %kind, zoho_id = %m.zoho_id, "deletion not confirmed: Zoho still has the record; kept and refreshed");
                    records.push((i, record));
                }
                (Some(record), _) => records.push((i, record)),
                // Confirmed: deleted as the webhook said.
                (None, Action::Deleted) => deletions.push((i, tombstone(m))),
                // Deleted in Zoho since the webhook (or never there).
                (None, _) => gone.push((i, gone_now(m))),
            }
        };
        if kind == EntityKind::Item && !asked.is_empty() {
            let ids: Vec<String> = asked
                .iter()
                .map(|&i| items[i].message.zoho_id.clone())
                .collect();
            match self.zoho.item_details(org, &ids, Priority::Webhook).await {
                Ok(found) => {
                    let by_id: HashMap<String, Value> = found
                        .into_iter()
                        .map(|item| (item.item_id.clone(), item.record))
                        .collect();
                    for &i in &asked {
                        // A record asked twice in the group (two messages) is answered for both.
                        let record = by_id.get(&items[i].message.zoho_id).cloned();
                        answer(i, record, items);
                    }
                }
                Err(e) => {
                    let f = Failure::from(e);
                    failed.extend(asked.iter().map(|&i| (i, f.clone())));
                }
            }
        } else {
            for &i in &asked {
                let id = items[i].message.zoho_id.clone();
                match self
                    .zoho
                    .get_record(org, kind, &id, Priority::Webhook)
                    .await
                {
                    Ok(record) => answer(i, Some(record), items),
                    Err(e) if e.is_not_found() => answer(i, None, items),
                    Err(e) => failed.push((i, Failure::from(e))),
                }
            }
        }

        GroupPlan {
            failed,
            records,
            deletions,
            gone,
        }
    }

    /// Writes every completed group: all in one transaction; if that fails, group by group, so one
    /// group's failure does not hold back the others; and a group that fails permanently, message by
    /// message, so only the message that cannot be written is dead-lettered. One result per message of
    /// each group.
    async fn write_all(
        &self,
        planned: &mut [Planned],
        message_ids: &[&str],
        bodies: &[std::borrow::Cow<'_, str>],
    ) -> Vec<Vec<Result<Outcome, Failure>>> {
        // Records are kept for the group-by-group retry only when there is more than one group; a
        // message-by-message retry (rare: a permanent failure) completes the group again instead.
        let keep = planned.len() > 1;
        let f = match self.write_groups(planned, message_ids, keep).await {
            Ok(results) => return results,
            Err(f) => f,
        };
        let mut results = Vec::with_capacity(planned.len());
        // With one group, the write that failed was already that group's own.
        let alone = planned.len() == 1;
        if !alone {
            tracing::warn!(error = %f, groups = planned.len(), "batch write failed: writing group by group");
        }
        for group in planned.iter_mut() {
            let n = group.2.len();
            let first = if alone {
                Err(f.clone())
            } else {
                self.write_groups(std::slice::from_mut(group), message_ids, false)
                    .await
                    .map(|mut r| r.remove(0))
            };
            match first {
                Ok(r) => results.push(r),
                Err(Failure::Permanent(reason)) if n > 1 => {
                    tracing::warn!(%reason, messages = n, "group write failed permanently: writing message by message");
                    // The failed write consumed the records: read the messages (and, where they
                    // need it, Zoho) again.
                    for w in group.2.iter_mut() {
                        if let InboxBody::Webhook(m) = InboxBody::parse(&bodies[w.index]) {
                            w.message = *m;
                        }
                    }
                    group.3 = self.complete_group(&group.0, group.1, &mut group.2).await;
                    let mut singles = split(group);
                    let mut r = Vec::with_capacity(n);
                    for single in singles.iter_mut() {
                        match self
                            .write_groups(std::slice::from_mut(single), message_ids, false)
                            .await
                        {
                            Ok(mut one) => r.append(&mut one.remove(0)),
                            Err(f) => r.push(Err(f)),
                        }
                    }
                    group.2 = singles.into_iter().flat_map(|s| s.2).collect();
                    results.push(r);
                }
                Err(f) => results.push(vec![Err(f); n]),
            }
        }
        results
    }

    /// Writes completed groups in one transaction with the receipts of their messages (`message_ids`:
    /// the batch's queue message ids by index); one result (the row's outcome) per message of each
    /// group. An error means nothing was written. The records are moved out of the plans unless
    /// `keep` (for a retry).
    async fn write_groups(
        &self,
        groups: &mut [Planned],
        message_ids: &[&str],
        keep: bool,
    ) -> Result<Vec<Vec<Result<Outcome, Failure>>>, Failure> {
        // The transaction's BEGIN goes out first; its round trip overlaps the parse of the records.
        let mut begin = std::pin::pin!(self.writer.begin());
        let started = crate::writer::poll_once(&mut begin).await;
        let mut prepared = Vec::with_capacity(groups.len());
        for (org, kind, items, plan) in groups.iter_mut() {
            if plan.records.is_empty() {
                prepared.push(None);
                continue;
            }
            // Each record versioned by its arrival where Zoho gives no time.
            let records = if keep {
                plan.records.clone()
            } else {
                std::mem::take(&mut plan.records)
            };
            let (slots, values): (Vec<usize>, Vec<(Value, chrono::DateTime<Utc>)>) = records
                .into_iter()
                .map(|(i, r)| (i, (r, items[i].message.received_at)))
                .unzip();
            prepared.push(Some((slots, Prepared::new(org, *kind, values))));
        }
        let mut batch = match started {
            Some(started) => started?,
            None => begin.await?,
        };
        let mut all = Vec::with_capacity(groups.len());
        let mut receipts: Vec<NewReceipt> = Vec::new();
        for ((_, kind, items, plan), prepared) in groups.iter_mut().zip(prepared) {
            let mut results: Vec<Result<Outcome, Failure>> = (0..items.len())
                .map(|_| Err(Failure::Retry("not applied".into())))
                .collect();
            for (i, f) in &plan.failed {
                results[*i] = Err(f.clone());
            }
            if let Some((slots, prepared)) = prepared {
                let written = batch.write_prepared(prepared, Freshness::Received).await?;
                for (i, r) in slots.into_iter().zip(written.records) {
                    results[i] = r.map_err(Failure::Permanent);
                }
            }
            if !plan.deletions.is_empty() {
                let tombstones: Vec<Tombstone> =
                    plan.deletions.iter().map(|(_, t)| t.clone()).collect();
                let report = batch.tombstone(*kind, &tombstones).await?;
                for ((i, _), outcome) in plan.deletions.iter().zip(report.rows) {
                    results[*i] = Ok(outcome.outcome);
                }
            }
            if !plan.gone.is_empty() {
                let tombstones: Vec<Tombstone> = plan.gone.iter().map(|(_, t)| t.clone()).collect();
                let report = batch.tombstone_known(*kind, &tombstones).await?;
                for ((i, _), outcome) in plan.gone.iter().zip(report.rows) {
                    results[*i] = Ok(outcome.outcome);
                }
            }
            for (w, r) in items.iter().zip(&results) {
                receipts.push(receipt(&w.message, message_ids[w.index], r.as_ref().ok()));
            }
            all.push(results);
        }
        batch.record_receipts(receipts);
        batch.commit().await?;
        Ok(all)
    }
}

/// A group with its completion: organisation, kind, messages, plan.
type Planned = (String, EntityKind, Vec<Work>, GroupPlan);

/// Splits a group into one group per message (each plan entry re-indexed to 0); the group is left
/// empty until the caller puts the messages back.
fn split(group: &mut Planned) -> Vec<Planned> {
    let (org, kind) = (group.0.clone(), group.1);
    let items = std::mem::take(&mut group.2);
    let plan = std::mem::take(&mut group.3);
    let mut singles: Vec<Planned> = items
        .into_iter()
        .map(|w| (org.clone(), kind, vec![w], GroupPlan::default()))
        .collect();
    for (i, f) in plan.failed {
        singles[i].3.failed.push((0, f));
    }
    for (i, r) in plan.records {
        singles[i].3.records.push((0, r));
    }
    for (i, t) in plan.deletions {
        singles[i].3.deletions.push((0, t));
    }
    for (i, t) in plan.gone {
        singles[i].3.gone.push((0, t));
    }
    singles
}

/// What a group's completion found.
#[derive(Default)]
struct GroupPlan {
    /// Messages that failed already (a re-fetch error), by index in the group.
    failed: Vec<(usize, Failure)>,
    /// Complete records to write, by index in the group.
    records: Vec<(usize, Value)>,
    /// Deletions webhooks announced, by index in the group.
    deletions: Vec<(usize, Tombstone)>,
    /// Records a re-fetch found gone, by index in the group: tombstoned only where stored (a
    /// webhook for an id Zoho does not know leaves a receipt, not a row).
    gone: Vec<(usize, Tombstone)>,
}

impl Work {
    /// Whether applying it needs a Zoho call (items are always read in bulk by `/itemdetails`, and
    /// every deletion is confirmed).
    fn asks_zoho(&self) -> bool {
        self.message.kind == EntityKind::Item || self.refetch || is_delete(self)
    }
}

fn is_delete(w: &Work) -> bool {
    w.message.action == Action::Deleted
}

/// The receipt of `m`, carried by queue message `message_id`, applied with `outcome` (or not).
fn receipt(m: &InboxMessage, message_id: &str, outcome: Option<&Outcome>) -> NewReceipt {
    NewReceipt {
        org_id: m.org_id.clone(),
        entity: m.kind.as_str().to_string(),
        zoho_id: m.zoho_id.clone(),
        action: match m.action {
            Action::Created => "created",
            Action::Edited => "edited",
            Action::Upserted => "upserted",
            Action::Deleted => "deleted",
        },
        dedupe_key: m.dedupe_key.clone(),
        last_modified_time: m.last_modified_time,
        message_id: message_id.to_string(),
        received_at: m.received_at,
        outcome: outcome.cloned(),
    }
}

/// The tombstone of a Deleted webhook: deleted when Zoho said so.
fn tombstone(m: &InboxMessage) -> Tombstone {
    Tombstone {
        org_id: m.org_id.clone(),
        zoho_id: m.zoho_id.clone(),
        deleted_at: m.received_at,
    }
}

/// The tombstone of a record a re-fetch found gone: deleted as of now, not as of the webhook (a
/// retried message may be older than a version a sync stored meanwhile).
fn gone_now(m: &InboxMessage) -> Tombstone {
    Tombstone {
        deleted_at: Utc::now(),
        ..tombstone(m)
    }
}
