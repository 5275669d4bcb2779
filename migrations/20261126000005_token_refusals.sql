-- When Zoho refused an access token right after it was refreshed (401 code 57: a revoked grant or a
-- missing scope). Callers that meet the same token refused again fail at once instead of refreshing
-- it again, so a scope problem cannot burn Zoho's 10-refreshes-per-10-minutes allowance; after a
-- cool-down one caller may try a refresh again (the operator may have re-authorised).
ALTER TABLE tds_token_cache ADD COLUMN refused_at timestamptz;
