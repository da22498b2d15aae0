-- Guest orders: placed without an account, they belong to no user and
-- record the email the shopper gave instead. Every order has one or the
-- other. The token that opens a guest order is derived from its id with a
-- server key (orders.order_token_secret) and is stored nowhere.
ALTER TABLE orders
    ALTER COLUMN user_id DROP NOT NULL,
    ADD COLUMN email text,
    ADD CONSTRAINT orders_owner_check CHECK (user_id IS NOT NULL OR email IS NOT NULL);
