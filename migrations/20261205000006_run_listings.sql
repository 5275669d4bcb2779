-- The ids a full sync listed, page by page: when its last page is listed, the live rows it did not
-- list are deletion candidates (confirmed with Zoho before they are tombstoned). A run's rows are
-- removed when a later full run of the same organisation and kind completes its listing.
CREATE TABLE tds_run_listed (
    run_id bigint NOT NULL REFERENCES tds_sync_runs (id) ON DELETE CASCADE,
    zoho_id text NOT NULL,
    PRIMARY KEY (run_id, zoho_id)
);
