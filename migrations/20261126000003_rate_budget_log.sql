-- The shared Zoho API budget becomes an exact sliding window: the grant times of the last
-- per_minute_limit requests (a fixed window lets two adjacent windows burst to twice the limit, which
-- Zoho answers with 429). A high-priority caller that had to wait claims the next free slots until
-- priority_claim_until, so polling and comparisons step aside for webhook re-fetches.
-- Forward-only (see migrations/README.md).
ALTER TABLE tds_rate_budget
    DROP COLUMN window_start,
    DROP COLUMN window_used,
    DROP COLUMN in_flight,
    ADD COLUMN window_ms integer NOT NULL DEFAULT 61000 CHECK (window_ms > 0),
    ADD COLUMN grants timestamptz[] NOT NULL DEFAULT '{}',
    ADD COLUMN priority_claim_until timestamptz;

COMMENT ON COLUMN tds_rate_budget.window_ms IS
    'Sliding window length: 60 s plus a guard for the time between a grant and its arrival at Zoho.';
COMMENT ON COLUMN tds_rate_budget.max_in_flight IS
    'Concurrent requests per process and organisation (enforced in-process).';
