-- Consecutive refusals of just-refreshed tokens: the cool-down before one caller may refresh again
-- backs off from seconds (5 s, doubling, at most the configured maximum) instead of a fixed 10
-- minutes, so a brief denial at Zoho costs seconds; the first successful call clears it.
ALTER TABLE tds_token_cache ADD COLUMN refusals integer NOT NULL DEFAULT 0;
