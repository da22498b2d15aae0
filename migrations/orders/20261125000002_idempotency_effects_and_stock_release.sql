-- An idempotency key is bound to the effect it produced in the effect's own
-- transaction, so a key can never produce two effects, whatever crashes.
--
-- lock_token: set by each claim; the effect's transaction writes only while
--   its claim still holds the key (a fencing token), so a request whose key
--   was re-claimed after it was presumed dead cannot commit a second effect.
-- resource_id: the created resource (an order), written with it. A key with
--   a resource but no saved response (the process died between the two) is
--   answered by rendering that resource again, never by running again.
ALTER TABLE idempotency_keys
    ADD COLUMN lock_token  uuid,
    ADD COLUMN resource_id uuid;

-- When the catalog confirmed that a cancelled or expired order's reservation
-- was given back. The intent is recorded with the status change; the sweep
-- retries orders without it until the catalog answers.
ALTER TABLE orders ADD COLUMN stock_released_at timestamptz;

-- Orders cancelled or expired before this column existed were released in
-- the same request (or by the reservation's own expiry).
UPDATE orders SET stock_released_at = updated_at WHERE status IN ('cancelled', 'expired');

CREATE INDEX orders_unreleased_stock_idx ON orders (updated_at)
    WHERE status IN ('cancelled', 'expired') AND stock_released_at IS NULL;
