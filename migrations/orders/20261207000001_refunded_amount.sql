-- Money given back on an order: every refund that went through, partial
-- or full. Each partial refund is applied once, by its id.
ALTER TABLE orders
    ADD COLUMN refunded_amount bigint NOT NULL DEFAULT 0,
    ADD CONSTRAINT orders_refunded_check CHECK (refunded_amount >= 0 AND refunded_amount <= total);
UPDATE orders SET refunded_amount = total WHERE status = 'refunded';

-- A refunded order gives back the units it had not shipped (the sweep
-- retries until the catalog confirms, as for cancelled orders). Orders
-- refunded before this sold their units when paid: nothing to give back.
UPDATE orders SET stock_released_at = updated_at WHERE status = 'refunded';
DROP INDEX orders_unreleased_stock_idx;
CREATE INDEX orders_unreleased_stock_idx ON orders (updated_at)
    WHERE status IN ('cancelled', 'expired', 'refunded') AND stock_released_at IS NULL;

CREATE TABLE order_refunds (
    refund_id  uuid        PRIMARY KEY,
    order_id   uuid        NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    amount     bigint      NOT NULL CHECK (amount > 0),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX order_refunds_order_idx ON order_refunds (order_id);
