-- Server-side carts: one per customer (user_id), or a guest cart reached
-- with its id and a secret token (only the token's SHA-256 is kept).
CREATE TABLE carts (
    id          uuid PRIMARY KEY,
    user_id     uuid UNIQUE,
    token_hash  bytea,
    -- A merged guest cart is kept (emptied) until the sweep, so that
    -- merging it again is recognised and changes nothing.
    merged_into uuid,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT carts_owner CHECK ((user_id IS NULL) <> (token_hash IS NULL))
);

-- The sweep of abandoned guest carts.
CREATE INDEX carts_guest_updated_at ON carts (updated_at) WHERE user_id IS NULL;

-- A cart's lines. `seen_price` is the unit price (in `seen_currency`) when
-- the line was last added to or changed, so the cart can say a price moved.
CREATE TABLE cart_items (
    cart_id        uuid NOT NULL REFERENCES carts (id) ON DELETE CASCADE,
    product_id     uuid NOT NULL,
    quantity       integer NOT NULL CHECK (quantity > 0),
    seen_price     bigint NOT NULL,
    seen_currency  text NOT NULL,
    added_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (cart_id, product_id)
);
