-- Discount codes. Codes compare case-insensitively.
CREATE TABLE promotions (
    id                     uuid PRIMARY KEY,
    code                   text NOT NULL,
    kind                   text NOT NULL CHECK (kind IN ('percent', 'fixed')),
    value                  bigint NOT NULL,
    currency               text,
    starts_at              timestamptz,
    ends_at                timestamptz,
    min_subtotal           bigint NOT NULL DEFAULT 0,
    max_uses               bigint,
    max_uses_per_customer  bigint,
    active                 boolean NOT NULL DEFAULT true,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX promotions_code ON promotions (upper(code));

-- One row per order placed with a promotion. A use counts while
-- `released_at` is null; it is released when the checkout fails or the
-- order is cancelled or expires unpaid. Counting happens under the
-- promotion's row lock, so concurrent checkouts cannot overspend it.
CREATE TABLE promotion_uses (
    order_id      uuid PRIMARY KEY,
    promotion_id  uuid NOT NULL REFERENCES promotions (id) ON DELETE CASCADE,
    user_id       uuid NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    released_at   timestamptz,
    -- The order was paid: the use is final and no longer reconciled.
    settled_at    timestamptz
);
CREATE INDEX promotion_uses_held ON promotion_uses (promotion_id, user_id)
    WHERE released_at IS NULL;
CREATE INDEX promotion_uses_unsettled ON promotion_uses (created_at)
    WHERE released_at IS NULL AND settled_at IS NULL;

-- The cart's chosen promotion, and the order it is becoming while a
-- checkout runs (chosen before the order is placed, so a crash between
-- placing it and emptying the cart is recovered, never placed twice).
ALTER TABLE carts
    ADD COLUMN promotion_id uuid REFERENCES promotions (id) ON DELETE SET NULL,
    ADD COLUMN checkout_order_id uuid,
    ADD COLUMN checkout_started_at timestamptz;

-- What each checkout became.
CREATE TABLE checkouts (
    order_id    uuid PRIMARY KEY,
    cart_id     uuid NOT NULL REFERENCES carts (id) ON DELETE CASCADE,
    user_id     uuid NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
