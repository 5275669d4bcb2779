-- TDS's own tables: sync runs and cursors, webhook receipts, statistics and comparison history,
-- scheduled jobs, alerts, the per-organisation Zoho API budget and the shared access-token cache.
-- Migrations are forward-only (see migrations/README.md).

-- One row per sync run (full, incremental, stock-poller mode, targeted heal).
CREATE TABLE tds_sync_runs (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id text NOT NULL,
    entity text NOT NULL,
    mode text NOT NULL,
    trigger text NOT NULL DEFAULT 'manual',
    status text NOT NULL DEFAULT 'running'
        CHECK (status IN ('running', 'completed', 'failed', 'cancelled')),
    params jsonb NOT NULL DEFAULT '{}',
    started_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    pages_total integer,
    pages_done integer NOT NULL DEFAULT 0,
    fetched bigint NOT NULL DEFAULT 0,
    changed bigint NOT NULL DEFAULT 0,
    unchanged bigint NOT NULL DEFAULT 0,
    failed bigint NOT NULL DEFAULT 0,
    api_calls bigint NOT NULL DEFAULT 0,
    duration_ms bigint,
    error text,
    CHECK (finished_at IS NULL OR finished_at >= started_at)
);
CREATE INDEX tds_sync_runs_org_entity_idx ON tds_sync_runs (org_id, entity, started_at DESC);
CREATE INDEX tds_sync_runs_started_idx ON tds_sync_runs (started_at DESC);
CREATE INDEX tds_sync_runs_running_idx ON tds_sync_runs (org_id) WHERE status = 'running';

-- Incremental-sync position per (organisation, entity kind): the newest last_modified_time committed and
-- the id that broke the tie at that time. Advanced only after the rows it covers are committed.
CREATE TABLE tds_sync_cursors (
    org_id text NOT NULL,
    entity text NOT NULL,
    cursor_time timestamptz NOT NULL,
    cursor_id text NOT NULL DEFAULT '',
    run_id bigint REFERENCES tds_sync_runs (id) ON DELETE SET NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, entity)
);

-- Every webhook TDS accepted, for audit and dedupe (dedupe_key is unique).
CREATE TABLE tds_webhook_receipts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id text NOT NULL,
    entity text NOT NULL,
    zoho_id text NOT NULL,
    action text NOT NULL CHECK (action IN ('created', 'edited', 'upserted', 'deleted')),
    dedupe_key text NOT NULL UNIQUE,
    last_modified_time timestamptz,
    message_id text,
    received_at timestamptz NOT NULL,
    processed_at timestamptz,
    outcome text,
    detail text
);
CREATE INDEX tds_webhook_receipts_record_idx ON tds_webhook_receipts (org_id, entity, zoho_id, received_at DESC);
CREATE INDEX tds_webhook_receipts_received_idx ON tds_webhook_receipts (received_at DESC);

-- Statistics snapshots, from Zoho and from the database, per organisation and entity.
CREATE TABLE tds_statistics_history (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id text NOT NULL,
    taken_at timestamptz NOT NULL DEFAULT now(),
    source text NOT NULL CHECK (source IN ('zoho', 'database')),
    entity text NOT NULL,
    stats jsonb NOT NULL
);
CREATE INDEX tds_statistics_history_org_idx ON tds_statistics_history (org_id, entity, taken_at DESC);

-- Record-by-record comparison reports of Zoho against the database.
CREATE TABLE tds_comparison_reports (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    scope text NOT NULL,
    match_pct numeric(6, 3) NOT NULL CHECK (match_pct BETWEEN 0 AND 100),
    health_score numeric(6, 3) NOT NULL,
    severity text NOT NULL CHECK (severity IN ('perfect', 'good', 'warning', 'critical')),
    missing_locally bigint NOT NULL DEFAULT 0,
    deleted_in_zoho bigint NOT NULL DEFAULT 0,
    stale bigint NOT NULL DEFAULT 0,
    mismatched bigint NOT NULL DEFAULT 0,
    heal_jobs bigint NOT NULL DEFAULT 0,
    report jsonb NOT NULL
);
CREATE INDEX tds_comparison_reports_org_idx ON tds_comparison_reports (org_id, created_at DESC);

-- Schedules TDS runs itself (the local stack) or tracks (EventBridge), and their last outcome.
CREATE TABLE tds_scheduled_jobs (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id text NOT NULL,
    name text NOT NULL,
    job_kind text NOT NULL,
    schedule text NOT NULL,
    payload jsonb NOT NULL DEFAULT '{}',
    enabled boolean NOT NULL DEFAULT true,
    next_run_at timestamptz,
    last_run_at timestamptz,
    last_status text,
    locked_until timestamptz,
    UNIQUE (org_id, name)
);
CREATE INDEX tds_scheduled_jobs_due_idx ON tds_scheduled_jobs (next_run_at) WHERE enabled;

-- Alerts raised by statistics, syncs and the dead-letter queue; one open alert per dedupe key.
CREATE TABLE tds_alerts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id text NOT NULL,
    raised_at timestamptz NOT NULL DEFAULT now(),
    severity text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    kind text NOT NULL,
    entity text,
    message text NOT NULL,
    details jsonb NOT NULL DEFAULT '{}',
    dedupe_key text NOT NULL,
    acknowledged_at timestamptz,
    resolved_at timestamptz
);
CREATE UNIQUE INDEX tds_alerts_open_idx ON tds_alerts (org_id, dedupe_key) WHERE resolved_at IS NULL;
CREATE INDEX tds_alerts_recent_idx ON tds_alerts (org_id, raised_at DESC);

-- The Zoho API budget one organisation shares across every function instance: a per-minute window,
-- in-flight requests, the daily quota Zoho reports in X-Rate-Limit-* headers, and a 429 back-off.
CREATE TABLE tds_rate_budget (
    org_id text PRIMARY KEY,
    per_minute_limit integer NOT NULL DEFAULT 90 CHECK (per_minute_limit > 0),
    max_in_flight integer NOT NULL DEFAULT 5 CHECK (max_in_flight > 0),
    window_start timestamptz NOT NULL DEFAULT now(),
    window_used integer NOT NULL DEFAULT 0 CHECK (window_used >= 0),
    in_flight integer NOT NULL DEFAULT 0 CHECK (in_flight >= 0),
    daily_limit integer,
    daily_remaining integer,
    daily_reset_at timestamptz,
    blocked_until timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- One shared Zoho access token per credential (refresh token), used by every process, refreshed
-- single-flight under refresh_lock_*; refresh_window_* counts refreshes against Zoho's 10-per-10-minutes.
-- The access token is short-lived (1 h); the refresh token never leaves Secrets Manager.
CREATE TABLE tds_token_cache (
    credential_id text PRIMARY KEY,
    access_token text,
    api_domain text,
    expires_at timestamptz,
    refreshed_at timestamptz,
    refresh_lock_owner text,
    refresh_lock_until timestamptz,
    refresh_window_start timestamptz,
    refresh_window_count integer NOT NULL DEFAULT 0,
    last_error text,
    updated_at timestamptz NOT NULL DEFAULT now()
);
