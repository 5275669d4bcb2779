-- The durable queue of the local stack (`tds up`): SQS semantics in PostgreSQL (visibility timeout,
-- receive count, a dead-letter queue by name, redrive), so a webhook answered 202 survives kill -9.
-- Deployed stacks use SQS and leave this table empty.
CREATE TABLE tds_queue_messages (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    queue text NOT NULL,
    body text NOT NULL,
    receive_count integer NOT NULL DEFAULT 0,
    visible_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    sent_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX tds_queue_messages_ready_idx ON tds_queue_messages (queue, visible_at, id);
