-- Scheduled syncs fan out as job messages on the inbox (one list page, one batch of detail GETs, one
-- batch of images each). Every job a run enqueues has a row here, written before its message is sent,
-- so a redelivered job that already committed is recognised and skipped (no duplicate work), a job
-- whose successors were never sent re-sends them, and a run completes exactly when its last job row is
-- done. The high-water mark of each page (newest last_modified_time, id) is kept with the job so the
-- run can advance the incremental cursor once, after everything committed.
-- Forward-only (see migrations/README.md).
CREATE TABLE tds_sync_jobs (
    run_id bigint NOT NULL REFERENCES tds_sync_runs (id) ON DELETE CASCADE,
    job_key text NOT NULL,
    parent_key text,
    body jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    attempts integer NOT NULL DEFAULT 0,
    last_error text,
    done_at timestamptz,
    high_time timestamptz,
    high_id text,
    PRIMARY KEY (run_id, job_key)
);
CREATE INDEX tds_sync_jobs_pending_idx ON tds_sync_jobs (run_id) WHERE done_at IS NULL;

-- The cursor a run started from (incremental runs), so every job of the run lists the same window.
ALTER TABLE tds_sync_runs
    ADD COLUMN since_time timestamptz,
    ADD COLUMN since_id text,
    ADD COLUMN last_activity_at timestamptz NOT NULL DEFAULT now();
