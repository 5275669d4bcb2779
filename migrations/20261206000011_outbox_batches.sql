-- The outbox keeps one row per staged batch of events (`events`, a JSON array of
-- {detail_type, detail, time}) instead of one row per event, so a write batch inserts one outbox
-- row and forgets one, whatever its size. Rows staged before this migration become batches of one
-- event and keep their ids, so an event still waiting keeps its `event_id` (a batch's first event
-- is `<id>`, its n-th after that `<id>.<n>`).
ALTER TABLE tds_outbox ADD COLUMN events jsonb;
UPDATE tds_outbox
   SET events = jsonb_build_array(jsonb_build_object(
       'detail_type', detail_type, 'detail', detail,
       'time', to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')));
ALTER TABLE tds_outbox
    ALTER COLUMN events SET NOT NULL,
    DROP COLUMN detail_type,
    DROP COLUMN detail,
    DROP COLUMN occurred_at;
