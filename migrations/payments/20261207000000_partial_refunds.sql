-- Partial and repeated refunds. A payment may have any number of refunds,
-- each of an amount or of some order lines (priced from the order's
-- snapshots), each run through the payment pool and the provider under
-- its own id, each with its own status. The sum of pending and succeeded
-- refunds never passes the captured amount: the refund is written while
-- the payment's row is locked, after that sum is checked.

CREATE TABLE refunds (
    id             uuid        PRIMARY KEY,
    payment_id     uuid        NOT NULL REFERENCES payments (id),
    order_id       uuid        NOT NULL,
    status         text        NOT NULL DEFAULT 'pending',
    amount         bigint      NOT NULL,
    currency       text        NOT NULL,
    reason         text        NOT NULL DEFAULT '',
    -- The order lines refunded, `[{"line_id", "quantity", "amount"}]`, and
    -- whether the shipping charge is refunded; `[]` and false for a
    -- refund of an amount.
    lines          jsonb       NOT NULL DEFAULT '[]',
    shipping       boolean     NOT NULL DEFAULT false,
    failure_code   text,
    -- `admin:<id>`.
    created_by     text        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT refunds_status_check CHECK (status IN ('pending', 'succeeded', 'failed')),
    CONSTRAINT refunds_amount_check CHECK (amount > 0)
);

CREATE INDEX refunds_payment_idx ON refunds (payment_id, created_at, id);

-- What has gone back, full refunds included.
ALTER TABLE payments
    ADD COLUMN refunded_amount bigint NOT NULL DEFAULT 0,
    ADD CONSTRAINT payments_refunded_check CHECK (refunded_amount >= 0 AND refunded_amount <= amount);
UPDATE payments SET refunded_amount = amount WHERE status = 'refunded';

-- A job runs one refund: a partial refund's job names it. Charges and full
-- refunds stay one per kind and payment.
ALTER TABLE payment_jobs ADD COLUMN refund_id uuid REFERENCES refunds (id);
DROP INDEX payment_jobs_one_per_kind;
CREATE UNIQUE INDEX payment_jobs_one_per_kind ON payment_jobs (payment_id, kind) WHERE refund_id IS NULL;
CREATE UNIQUE INDEX payment_jobs_one_per_refund ON payment_jobs (refund_id) WHERE refund_id IS NOT NULL;

-- Orders hear of each partial refund that went through.
ALTER TABLE payment_outbox ADD COLUMN refund_id uuid REFERENCES refunds (id);
ALTER TABLE payment_outbox DROP CONSTRAINT payment_outbox_kind_check;
ALTER TABLE payment_outbox ADD CONSTRAINT payment_outbox_kind_check CHECK (kind IN
    ('payment_succeeded', 'refund_started', 'refund_succeeded', 'refund_failed', 'partial_refund_succeeded'));

-- A return's refund: one per return (the orders domain's return id).
ALTER TABLE refunds ADD COLUMN return_id uuid;
-- A failed one no longer counts: the return may be refunded again.
CREATE UNIQUE INDEX refunds_return_key ON refunds (return_id)
    WHERE return_id IS NOT NULL AND status <> 'failed';
