-- A guest cart's checkout records no user: the order it became is a guest
-- order.
ALTER TABLE checkouts ALTER COLUMN user_id DROP NOT NULL;
