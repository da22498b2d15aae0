-- Discount codes applied at checkout: the order keeps its subtotal, the
-- discount and the code; each line keeps its share of the discount, and the
-- shares add up to the order's discount (checked by the writer, bounded
-- here).
ALTER TABLE orders ADD COLUMN subtotal bigint;
UPDATE orders SET subtotal = total;
ALTER TABLE orders
    ALTER COLUMN subtotal SET NOT NULL,
    ADD COLUMN discount bigint NOT NULL DEFAULT 0 CHECK (discount >= 0),
    ADD COLUMN promotion_code text,
    ADD CONSTRAINT orders_total_after_discount CHECK (total = subtotal - discount);

ALTER TABLE order_items
    ADD COLUMN discount bigint NOT NULL DEFAULT 0
        CHECK (discount >= 0 AND discount <= line_total);
