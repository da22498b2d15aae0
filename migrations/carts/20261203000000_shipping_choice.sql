-- The shipping a cart chose: a method (an id in the orders database's
-- rules, so no foreign key) and the address it goes to, copied when chosen.
-- Both or neither.
ALTER TABLE carts
    ADD COLUMN shipping_method_id uuid,
    ADD COLUMN shipping_address jsonb,
    ADD CONSTRAINT carts_shipping_choice CHECK ((shipping_method_id IS NULL) = (shipping_address IS NULL));
