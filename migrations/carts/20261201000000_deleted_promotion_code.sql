-- The code of the cart's chosen promotion, kept when the promotion itself
-- is deleted (its id is then set null): the cart can say the code is gone
-- and checkout refuse it, instead of silently charging full price.
ALTER TABLE carts ADD COLUMN promotion_code text;

UPDATE carts c SET promotion_code = p.code
  FROM promotions p WHERE p.id = c.promotion_id;
