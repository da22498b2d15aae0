-- A guest order is paid by whoever holds its token: the payment has no
-- user. Failed-attempt limits then count by order only.
ALTER TABLE payments ALTER COLUMN user_id DROP NOT NULL;
