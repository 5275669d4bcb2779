-- Every webhook the entity processor applies adds a receipt and an outbox row in its batch's
-- transaction, beside the entity row itself; each index on those tables is written once per message.
-- Indexes no statement reads are dropped, so a receipt costs one index entry and an outbox row one:
-- * receipts are looked up by dedupe_key only (the dedupe) and scanned by processed_at (activity per
--   hour): dedupe_key becomes the primary key (the identity column was never read), the two btrees no
--   query used go, and a BRIN index (a few pages; receipts are written in time order) serves the scan.
--   A deployment that audits one record's deliveries can add (org_id, entity, zoho_id) back.
-- * outbox rows are drained oldest first by id, which the primary key serves (the rows older than five
--   minutes come first in id order, so the drain stops after its limit).
ALTER TABLE tds_webhook_receipts DROP CONSTRAINT tds_webhook_receipts_pkey;
ALTER TABLE tds_webhook_receipts DROP COLUMN id;
ALTER TABLE tds_webhook_receipts
    DROP CONSTRAINT tds_webhook_receipts_dedupe_key_key,
    ADD CONSTRAINT tds_webhook_receipts_pkey PRIMARY KEY (dedupe_key);
DROP INDEX tds_webhook_receipts_record_idx;
DROP INDEX tds_webhook_receipts_received_idx;
CREATE INDEX tds_webhook_receipts_processed_brin ON tds_webhook_receipts USING brin (processed_at);
DROP INDEX tds_outbox_created_idx;
