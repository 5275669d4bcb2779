-- Entity tables: one per kind TDS syncs from Zoho.
--
-- Every table has the same common columns:
--   org_id, zoho_id        the Zoho organisation and the row's id in it (primary key);
--   record                 the full record as Zoho sent it (jsonb; item details run to ~3 KB, past the
--                          TOAST threshold, so lz4 compression: several times cheaper to write than pglz);
--   last_modified_time     the row's VERSION: Zoho's last_modified_time where Zoho gives one, otherwise the
--                          time TDS observed the record in Zoho (stock, locations, price books, rates, images);
--   content_hash           SHA-256 of the canonical record JSON; equal hashes mean equal records;
--   completeness           number of non-null top-level fields (a detail GET beats a list page at equal version);
--   deleted_at             tombstone: set when Zoho deleted the record; rows are never hard-deleted by sync;
--   synced_at              when TDS last wrote the row.
-- Writes are version-gated (see shared/store/src/upsert.rs): a row is replaced only by a greater
-- (last_modified_time, completeness, content_hash) with a different hash; a tombstone only by a version
-- newer than its deleted_at.
--
-- Migrations are forward-only (see migrations/README.md).

CREATE TABLE items (
    org_id text NOT NULL,
    zoho_id text NOT NULL,
    name text,
    sku text,
    status text,
    item_type text,
    product_type text,
    unit text,
    category_id text,
    category_name text,
    brand text,
    manufacturer text,
    rate numeric,
    purchase_rate numeric,
    stock_on_hand numeric,
    available_stock numeric,
    actual_available_stock numeric,
    reorder_level numeric,
    track_inventory boolean,
    image_id text,
    image_name text,
    created_time timestamptz,
    record jsonb COMPRESSION lz4 NOT NULL,
    last_modified_time timestamptz NOT NULL,
    content_hash bytea NOT NULL,
    completeness integer NOT NULL DEFAULT 0,
    deleted_at timestamptz,
    synced_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, zoho_id)
);
COMMENT ON TABLE items IS 'Items (goods and services).';
CREATE INDEX items_changed_idx ON items (org_id, last_modified_time, zoho_id);
CREATE INDEX items_sku_idx ON items (org_id, sku);

CREATE TABLE item_stock (
    org_id text NOT NULL,
    zoho_id text NOT NULL,
    item_id text,
    location_id text,
    location_name text,
    is_primary boolean,
    stock_on_hand numeric,
    available_stock numeric,
    actual_available_stock numeric,
    committed_stock numeric,
    available_for_sale_stock numeric,
    actual_available_for_sale_stock numeric,
    quantity_in_transit numeric,
    record jsonb COMPRESSION lz4 NOT NULL,
    last_modified_time timestamptz NOT NULL,
    content_hash bytea NOT NULL,
    completeness integer NOT NULL DEFAULT 0,
    deleted_at timestamptz,
    synced_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, zoho_id)
);
COMMENT ON TABLE item_stock IS 'Stock of one item at one location or warehouse; zoho_id is item_id:location_id; versioned by observation time.';
CREATE INDEX item_stock_changed_idx ON item_stock (org_id, last_modified_time, zoho_id);
CREATE INDEX item_stock_item_id_idx ON item_stock (org_id, item_id);
CREATE INDEX item_stock_location_id_idx ON item_stock (org_id, location_id);

CREATE TABLE locations (
    org_id text NOT NULL,
    zoho_id text NOT NULL,
    name text,
    source text,
    status text,
    is_primary boolean,
    location_type text,
    parent_location_id text,
    country text,
    record jsonb COMPRESSION lz4 NOT NULL,
    last_modified_time timestamptz NOT NULL,
    content_hash bytea NOT NULL,
    completeness integer NOT NULL DEFAULT 0,
    deleted_at timestamptz,
    synced_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, zoho_id)
);
COMMENT ON TABLE locations IS 'Locations, or warehouses in warehouse-mode organisations (source tells which); versioned by observation time.';
CREATE INDEX locations_changed_idx ON locations (org_id, last_modified_time, zoho_id);

CREATE TABLE price_books (
    org_id text NOT NULL,
    zoho_id text NOT NULL,
    name text,
    currency_code text,
    status text,
    pricebook_type text,
    sales_or_purchase_type text,
    is_default boolean,
    percentage numeric,
    is_increase boolean,
    record jsonb COMPRESSION lz4 NOT NULL,
    last_modified_time timestamptz NOT NULL,
    content_hash bytea NOT NULL,
    completeness integer NOT NULL DEFAULT 0,
    deleted_at timestamptz,
    synced_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, zoho_id)
);
COMMENT ON TABLE price_books IS 'Price books (price lists); versioned by observation time.';
CREATE INDEX price_books_changed_idx ON price_books (org_id, last_modified_time, zoho_id);

CREATE TABLE price_book_rates (
    org_id text NOT NULL,
    zoho_id text NOT NULL,
    pricebook_id text,
    item_id text,
    pricebook_rate numeric,
    pricebook_discount numeric,
    base_rate numeric,
    record jsonb COMPRESSION lz4 NOT NULL,
    last_modified_time timestamptz NOT NULL,
    content_hash bytea NOT NULL,
    completeness integer NOT NULL DEFAULT 0,
    deleted_at timestamptz,
    synced_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, zoho_id)
);
COMMENT ON TABLE price_book_rates IS 'Rate of one item in one price book; zoho_id is pricebook_id:item_id; versioned by observation time.';
CREATE INDEX price_book_rates_changed_idx ON price_book_rates (org_id, last_modified_time, zoho_id);
CREATE INDEX price_book_rates_pricebook_id_idx ON price_book_rates (org_id, pricebook_id);
CREATE INDEX price_book_rates_item_id_idx ON price_book_rates (org_id, item_id);

CREATE TABLE contacts (
    org_id text NOT NULL,
    zoho_id text NOT NULL,
    contact_name text,
    company_name text,
    contact_type text,
    customer_sub_type text,
    status text,
    email text,
    currency_code text,
    country text,
    credit_limit numeric,
    outstanding_receivable numeric,
    outstanding_payable numeric,
    created_time timestamptz,
    record jsonb COMPRESSION lz4 NOT NULL,
    last_modified_time timestamptz NOT NULL,
    content_hash bytea NOT NULL,
    completeness integer NOT NULL DEFAULT 0,
    deleted_at timestamptz,
    synced_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, zoho_id)
);
COMMENT ON TABLE contacts IS 'Customers and vendors (contact_type tells which).';
CREATE INDEX contacts_changed_idx ON contacts (org_id, last_modified_time, zoho_id);
CREATE INDEX contacts_contact_type_status_idx ON contacts (org_id, contact_type, status);

CREATE TABLE item_images (
    org_id text NOT NULL,
    zoho_id text NOT NULL,
    item_id text,
    image_id text,
    file_name text,
    content_type text,
    size_bytes bigint,
    sha256 text,
    blob_key text,
    record jsonb COMPRESSION lz4 NOT NULL,
    last_modified_time timestamptz NOT NULL,
    content_hash bytea NOT NULL,
    completeness integer NOT NULL DEFAULT 0,
    deleted_at timestamptz,
    synced_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, zoho_id)
);
COMMENT ON TABLE item_images IS 'Metadata of each items image (bytes in the blob store); zoho_id is the item_id; versioned by observation time.';
CREATE INDEX item_images_changed_idx ON item_images (org_id, last_modified_time, zoho_id);

CREATE TABLE invoices (
    org_id text NOT NULL,
    zoho_id text NOT NULL,
    number text,
    status text,
    date date,
    due_date date,
    contact_id text,
    contact_name text,
    currency_code text,
    total numeric,
    balance numeric,
    reference_number text,
    line_item_count bigint,
    created_time timestamptz,
    record jsonb COMPRESSION lz4 NOT NULL,
    last_modified_time timestamptz NOT NULL,
    content_hash bytea NOT NULL,
    completeness integer NOT NULL DEFAULT 0,
    deleted_at timestamptz,
    synced_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, zoho_id)
);
COMMENT ON TABLE invoices IS 'Sales invoices.';
CREATE INDEX invoices_changed_idx ON invoices (org_id, last_modified_time, zoho_id);
CREATE INDEX invoices_contact_id_idx ON invoices (org_id, contact_id);
CREATE INDEX invoices_date_idx ON invoices (org_id, date);

CREATE TABLE sales_orders (
    org_id text NOT NULL,
    zoho_id text NOT NULL,
    number text,
    status text,
    date date,
    due_date date,
    contact_id text,
    contact_name text,
    currency_code text,
    total numeric,
    balance numeric,
    reference_number text,
    line_item_count bigint,
    created_time timestamptz,
    record jsonb COMPRESSION lz4 NOT NULL,
    last_modified_time timestamptz NOT NULL,
    content_hash bytea NOT NULL,
    completeness integer NOT NULL DEFAULT 0,
    deleted_at timestamptz,
    synced_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, zoho_id)
);
COMMENT ON TABLE sales_orders IS 'Sales orders; due_date holds shipment_date.';
CREATE INDEX sales_orders_changed_idx ON sales_orders (org_id, last_modified_time, zoho_id);
CREATE INDEX sales_orders_contact_id_idx ON sales_orders (org_id, contact_id);
CREATE INDEX sales_orders_date_idx ON sales_orders (org_id, date);

CREATE TABLE bills (
    org_id text NOT NULL,
    zoho_id text NOT NULL,
    number text,
    status text,
    date date,
    due_date date,
    contact_id text,
    contact_name text,
    currency_code text,
    total numeric,
    balance numeric,
    reference_number text,
    line_item_count bigint,
    created_time timestamptz,
    record jsonb COMPRESSION lz4 NOT NULL,
    last_modified_time timestamptz NOT NULL,
    content_hash bytea NOT NULL,
    completeness integer NOT NULL DEFAULT 0,
    deleted_at timestamptz,
    synced_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, zoho_id)
);
COMMENT ON TABLE bills IS 'Vendor bills.';
CREATE INDEX bills_changed_idx ON bills (org_id, last_modified_time, zoho_id);
CREATE INDEX bills_contact_id_idx ON bills (org_id, contact_id);
CREATE INDEX bills_date_idx ON bills (org_id, date);

CREATE TABLE customer_payments (
    org_id text NOT NULL,
    zoho_id text NOT NULL,
    number text,
    status text,
    date date,
    due_date date,
    contact_id text,
    contact_name text,
    currency_code text,
    total numeric,
    balance numeric,
    reference_number text,
    line_item_count bigint,
    created_time timestamptz,
    record jsonb COMPRESSION lz4 NOT NULL,
    last_modified_time timestamptz NOT NULL,
    content_hash bytea NOT NULL,
    completeness integer NOT NULL DEFAULT 0,
    deleted_at timestamptz,
    synced_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, zoho_id)
);
COMMENT ON TABLE customer_payments IS 'Customer payments; total holds amount, balance holds unused_amount.';
CREATE INDEX customer_payments_changed_idx ON customer_payments (org_id, last_modified_time, zoho_id);
CREATE INDEX customer_payments_contact_id_idx ON customer_payments (org_id, contact_id);
CREATE INDEX customer_payments_date_idx ON customer_payments (org_id, date);

CREATE TABLE credit_notes (
    org_id text NOT NULL,
    zoho_id text NOT NULL,
    number text,
    status text,
    date date,
    due_date date,
    contact_id text,
    contact_name text,
    currency_code text,
    total numeric,
    balance numeric,
    reference_number text,
    line_item_count bigint,
    created_time timestamptz,
    record jsonb COMPRESSION lz4 NOT NULL,
    last_modified_time timestamptz NOT NULL,
    content_hash bytea NOT NULL,
    completeness integer NOT NULL DEFAULT 0,
    deleted_at timestamptz,
    synced_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, zoho_id)
);
COMMENT ON TABLE credit_notes IS 'Credit notes.';
CREATE INDEX credit_notes_changed_idx ON credit_notes (org_id, last_modified_time, zoho_id);
CREATE INDEX credit_notes_contact_id_idx ON credit_notes (org_id, contact_id);
CREATE INDEX credit_notes_date_idx ON credit_notes (org_id, date);

CREATE TABLE vendor_payments (
    org_id text NOT NULL,
    zoho_id text NOT NULL,
    number text,
    status text,
    date date,
    due_date date,
    contact_id text,
    contact_name text,
    currency_code text,
    total numeric,
    balance numeric,
    reference_number text,
    line_item_count bigint,
    created_time timestamptz,
    record jsonb COMPRESSION lz4 NOT NULL,
    last_modified_time timestamptz NOT NULL,
    content_hash bytea NOT NULL,
    completeness integer NOT NULL DEFAULT 0,
    deleted_at timestamptz,
    synced_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, zoho_id)
);
COMMENT ON TABLE vendor_payments IS 'Vendor payments; total holds amount.';
CREATE INDEX vendor_payments_changed_idx ON vendor_payments (org_id, last_modified_time, zoho_id);
CREATE INDEX vendor_payments_contact_id_idx ON vendor_payments (org_id, contact_id);
CREATE INDEX vendor_payments_date_idx ON vendor_payments (org_id, date);

CREATE TABLE purchase_orders (
    org_id text NOT NULL,
    zoho_id text NOT NULL,
    number text,
    status text,
    date date,
    due_date date,
    contact_id text,
    contact_name text,
    currency_code text,
    total numeric,
    balance numeric,
    reference_number text,
    line_item_count bigint,
    created_time timestamptz,
    record jsonb COMPRESSION lz4 NOT NULL,
    last_modified_time timestamptz NOT NULL,
    content_hash bytea NOT NULL,
    completeness integer NOT NULL DEFAULT 0,
    deleted_at timestamptz,
    synced_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, zoho_id)
);
COMMENT ON TABLE purchase_orders IS 'Purchase orders; due_date holds delivery_date.';
CREATE INDEX purchase_orders_changed_idx ON purchase_orders (org_id, last_modified_time, zoho_id);
CREATE INDEX purchase_orders_contact_id_idx ON purchase_orders (org_id, contact_id);
CREATE INDEX purchase_orders_date_idx ON purchase_orders (org_id, date);
