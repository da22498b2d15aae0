-- Orders. Lines keep a snapshot of name and price taken from the catalog
-- when the order was placed: no foreign key crosses into the catalog.
CREATE TABLE orders (
    id               uuid        PRIMARY KEY,
    user_id          uuid        NOT NULL,
    status           text        NOT NULL,
    total            bigint      NOT NULL,
    currency         text        NOT NULL,
    shipping_address jsonb       NOT NULL,
    -- Set once, by the payment that paid the order.
    payment_id       text,
    -- When the catalog confirmed the paid order's stock as sold. A paid
    -- order without it is retried by the sweep until the catalog answers.
    stock_committed_at timestamptz,
    -- When a still-pending order expires and returns its stock.
    expires_at       timestamptz NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT orders_status_check CHECK (status IN
        ('pending', 'paid', 'shipped', 'delivered', 'cancelled', 'expired', 'refund_pending', 'refunded')),
    CONSTRAINT orders_total_check CHECK (total >= 0)
);

CREATE INDEX orders_user_created_idx ON orders (user_id, created_at DESC, id DESC);
CREATE INDEX orders_created_idx ON orders (created_at DESC, id DESC);
CREATE INDEX orders_status_created_idx ON orders (status, created_at DESC, id DESC);
CREATE INDEX orders_pending_expiry_idx ON orders (expires_at) WHERE status = 'pending';
CREATE INDEX orders_uncommitted_stock_idx ON orders (updated_at)
    WHERE payment_id IS NOT NULL AND stock_committed_at IS NULL;

CREATE TABLE order_items (
    order_id   uuid    NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    position   integer NOT NULL,
    product_id uuid    NOT NULL,
    name       text    NOT NULL,
    unit_price bigint  NOT NULL,
    quantity   integer NOT NULL,
    line_total bigint  NOT NULL,
    PRIMARY KEY (order_id, position),
    CONSTRAINT order_items_quantity_check CHECK (quantity > 0),
    CONSTRAINT order_items_product_key UNIQUE (order_id, product_id)
);

CREATE INDEX order_items_product_id_idx ON order_items (product_id);

-- Every status change: from, to, who or which service, when, why.
CREATE TABLE order_history (
    id          bigserial   PRIMARY KEY,
    order_id    uuid        NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    from_status text,
    to_status   text        NOT NULL,
    actor       text        NOT NULL,
    reason      text        NOT NULL DEFAULT '',
    at          timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX order_history_order_id_idx ON order_history (order_id, id);

-- Events for other domains (the recommender), written in the same
-- transaction as the change they describe, read in id order.
CREATE TABLE order_events (
    id         bigserial   PRIMARY KEY,
    order_id   uuid        NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    kind       text        NOT NULL,
    payload    jsonb       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Idempotency keys (Stripe's semantics), scoped to the user. The primary
-- key is the guard: two requests with one key cannot both claim it.
CREATE TABLE idempotency_keys (
    user_id          uuid        NOT NULL,
    key              text        NOT NULL,
    fingerprint      text        NOT NULL,
    -- NULL while the first request runs; then the saved response.
    response_status  smallint,
    response_type    text,
    response_body    bytea,
    created_at       timestamptz NOT NULL DEFAULT now(),
    locked_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);

CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);
