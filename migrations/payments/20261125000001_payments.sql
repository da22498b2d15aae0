-- Payments, the durable job queue of the payment pool, the payment's
-- timeline, the outbox towards orders, webhook de-duplication, idempotency
-- keys, and the simulated provider's own ledger.

CREATE TABLE payments (
    id              uuid        PRIMARY KEY,
    order_id        uuid        NOT NULL,
    user_id         uuid        NOT NULL,
    status          text        NOT NULL,
    -- From the order, never from the client.
    amount          bigint      NOT NULL,
    currency        text        NOT NULL,
    -- What the shop keeps of a card: the provider's token, brand, last four.
    card_token      text        NOT NULL,
    card_brand      text        NOT NULL,
    card_last4      text        NOT NULL,
    attempts        integer     NOT NULL DEFAULT 0,
    failure_code    text,
    failure_message text,
    -- The refund in progress or done; its id is the provider's idempotency key.
    refund_id       uuid,
    refund_failure_code text,
    -- Set when the shop refunded on its own (the order could not take the
    -- payment): the order is not told, it was never paid.
    auto_refund     boolean     NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT payments_status_check CHECK (status IN
        ('processing', 'succeeded', 'failed', 'refund_pending', 'refunded')),
    CONSTRAINT payments_amount_check CHECK (amount >= 0)
);

-- At most one live payment per order: any payment that is not failed
-- (processing, succeeded, or on its way to a refund) holds the order.
CREATE UNIQUE INDEX payments_one_live_per_order ON payments (order_id) WHERE status <> 'failed';
CREATE INDEX payments_user_created_idx ON payments (user_id, created_at DESC, id DESC);
CREATE INDEX payments_created_idx ON payments (created_at DESC, id DESC);
CREATE INDEX payments_order_idx ON payments (order_id);

-- The payment pool's queue. A job is claimed with FOR UPDATE SKIP LOCKED
-- under a lease (locked_until + lease_token); the finishing write must
-- still hold the token, so a worker whose lease was taken over cannot
-- overwrite the new owner's result. Done jobs are deleted.
CREATE TABLE payment_jobs (
    id           bigserial   PRIMARY KEY,
    payment_id   uuid        NOT NULL REFERENCES payments (id),
    kind         text        NOT NULL,
    run_at       timestamptz NOT NULL DEFAULT now(),
    attempts     integer     NOT NULL DEFAULT 0,
    locked_until timestamptz,
    lease_token  uuid,
    created_at   timestamptz NOT NULL DEFAULT now(),
    -- When a worker first claimed it: enqueue-to-start latency.
    started_at   timestamptz,
    CONSTRAINT payment_jobs_kind_check CHECK (kind IN ('charge', 'refund'))
);

CREATE INDEX payment_jobs_due_idx ON payment_jobs (run_at);
-- One job of a kind per payment at a time.
CREATE UNIQUE INDEX payment_jobs_one_per_kind ON payment_jobs (payment_id, kind);

-- The payment's timeline, as sent by GET /payments/{id}/events/.
CREATE TABLE payment_events (
    id         bigserial   PRIMARY KEY,
    payment_id uuid        NOT NULL REFERENCES payments (id),
    kind       text        NOT NULL,
    detail     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    at         timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX payment_events_payment_idx ON payment_events (payment_id, id);

-- Outcomes the orders service must hear of, written in the same
-- transaction as the outcome and relayed until acknowledged.
CREATE TABLE payment_outbox (
    id           bigserial   PRIMARY KEY,
    payment_id   uuid        NOT NULL REFERENCES payments (id),
    order_id     uuid        NOT NULL,
    kind         text        NOT NULL,
    attempts     integer     NOT NULL DEFAULT 0,
    delivered_at timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT payment_outbox_kind_check CHECK (kind IN
        ('payment_succeeded', 'refund_started', 'refund_succeeded', 'refund_failed'))
);

CREATE INDEX payment_outbox_pending_idx ON payment_outbox (id) WHERE delivered_at IS NULL;

-- Provider webhook events seen, by the provider's event id.
CREATE TABLE webhook_events (
    event_id    text        PRIMARY KEY,
    kind        text        NOT NULL,
    payment_id  uuid,
    received_at timestamptz NOT NULL DEFAULT now()
);

-- Idempotency keys (Stripe's semantics), as in the orders database.
CREATE TABLE idempotency_keys (
    user_id          uuid        NOT NULL,
    key              text        NOT NULL,
    fingerprint      text        NOT NULL,
    response_status  smallint,
    response_type    text,
    response_body    bytea,
    created_at       timestamptz NOT NULL DEFAULT now(),
    locked_at        timestamptz NOT NULL DEFAULT now(),
    lock_token       uuid,
    resource_id      uuid,
    PRIMARY KEY (user_id, key)
);

CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);

-- The simulated provider's ledger: one row per charge or refund it made,
-- keyed by the caller's idempotency key (the payment id, or the refund id),
-- so a retried call after a crash returns the first outcome and never
-- charges twice. A real provider keeps this on its side.
CREATE TABLE provider_ledger (
    idempotency_key uuid        PRIMARY KEY,
    kind            text        NOT NULL,
    payment_id      uuid        NOT NULL,
    amount          bigint      NOT NULL,
    currency        text        NOT NULL,
    outcome         text        NOT NULL,
    code            text,
    message         text,
    created_at      timestamptz NOT NULL DEFAULT now()
);
