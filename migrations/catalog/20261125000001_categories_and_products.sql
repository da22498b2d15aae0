-- The category tree. A parent cannot be deleted while it has children, and a
-- category cannot be deleted while products use it (both RESTRICT), so the
-- API can answer 409 instead of orphaning rows.
CREATE TABLE categories (
    id         uuid        PRIMARY KEY,
    name       text        NOT NULL,
    slug       text        NOT NULL,
    parent_id  uuid        REFERENCES categories (id) ON DELETE RESTRICT,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT categories_slug_key UNIQUE (slug),
    CONSTRAINT categories_not_own_parent CHECK (parent_id IS NULL OR parent_id <> id)
);

CREATE INDEX categories_parent_id_idx ON categories (parent_id);

-- Products. Money is integer minor units with an ISO 4217 code; stock can
-- never go negative, whatever the application does.
CREATE TABLE products (
    id          uuid        PRIMARY KEY,
    name        text        NOT NULL,
    slug        text        NOT NULL,
    sku         text        NOT NULL,
    description text        NOT NULL DEFAULT '',
    category_id uuid        REFERENCES categories (id) ON DELETE RESTRICT,
    price       bigint      NOT NULL,
    currency    text        NOT NULL,
    stock       integer     NOT NULL,
    tags        text[]      NOT NULL DEFAULT '{}',
    is_active   boolean     NOT NULL DEFAULT true,
    -- Full-text search over name (weight A) and description (weight B).
    search      tsvector    GENERATED ALWAYS AS (
                    setweight(to_tsvector('english', name), 'A') ||
                    setweight(to_tsvector('english', description), 'B')
                ) STORED,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT products_slug_key UNIQUE (slug),
    CONSTRAINT products_sku_key UNIQUE (sku),
    CONSTRAINT products_price_check CHECK (price >= 0),
    CONSTRAINT products_stock_check CHECK (stock >= 0),
    CONSTRAINT products_currency_check CHECK (currency ~ '^[A-Z]{3}$')
);

-- One index per common listing: each ordering with its id tiebreak, the
-- category filter with each ordering, and the search and tag filters.
CREATE INDEX products_created_at_id_idx ON products (created_at, id);
CREATE INDEX products_price_id_idx ON products (price, id);
CREATE INDEX products_name_id_idx ON products (name, id);
CREATE INDEX products_category_created_idx ON products (category_id, created_at, id);
CREATE INDEX products_category_price_idx ON products (category_id, price, id);
CREATE INDEX products_search_idx ON products USING gin (search);
CREATE INDEX products_tags_idx ON products USING gin (tags);

-- Stock held for an order. Each reservation holds its lines until it is
-- committed (paid), released (cancelled) or expires (swept back to stock).
CREATE TABLE reservations (
    id         uuid        PRIMARY KEY,
    status     text        NOT NULL DEFAULT 'held',
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT reservations_status_check CHECK (status IN ('held', 'committed', 'released'))
);

CREATE INDEX reservations_held_expiry_idx ON reservations (expires_at) WHERE status = 'held';

CREATE TABLE reservation_items (
    reservation_id uuid    NOT NULL REFERENCES reservations (id) ON DELETE CASCADE,
    product_id     uuid    NOT NULL REFERENCES products (id) ON DELETE RESTRICT,
    quantity       integer NOT NULL,
    PRIMARY KEY (reservation_id, product_id),
    CONSTRAINT reservation_items_quantity_check CHECK (quantity > 0)
);

CREATE INDEX reservation_items_product_id_idx ON reservation_items (product_id);
