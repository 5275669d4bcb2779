-- Domain events written in the same transaction as the rows they announce, deleted once the event
-- bus has them: at-least-once delivery. A publish that fails leaves its rows for the next drain
-- (every writer drains rows older than five minutes now and then); consumers dedupe on `event_id`,
-- which is this table's id.
CREATE TABLE tds_outbox (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    detail_type text NOT NULL,
    detail jsonb NOT NULL,
    occurred_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX tds_outbox_created_idx ON tds_outbox (created_at);
