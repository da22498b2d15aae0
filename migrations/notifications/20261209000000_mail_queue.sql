-- The durable mail queue. A mail is rendered when it is queued (so a
-- template change never alters a mail already promised) and sent by the
-- notifications actor's sender: claimed with FOR UPDATE SKIP LOCKED under a
-- lease, the lease's token fencing every write of the outcome, retried with
-- backoff, and `failed` for good after email.max_attempts.
--
-- (source_id, kind) is unique: source_id is the id of what caused the mail
-- (an outbox event, a token, a user), so an event taken twice mails once.
CREATE TABLE mails (
    id           uuid        PRIMARY KEY,
    kind         text        NOT NULL,
    source_id    uuid        NOT NULL,
    recipient    text        NOT NULL,
    subject      text        NOT NULL,
    body_text    text        NOT NULL,
    body_html    text        NOT NULL,
    status       text        NOT NULL DEFAULT 'pending',
    attempts     integer     NOT NULL DEFAULT 0,
    run_at       timestamptz NOT NULL DEFAULT now(),
    locked_until timestamptz,
    lease_token  uuid,
    last_error   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    sent_at      timestamptz,
    CONSTRAINT mails_source_kind_key UNIQUE (source_id, kind),
    CONSTRAINT mails_status_check CHECK (status IN ('pending', 'sent', 'failed'))
);

CREATE INDEX mails_due_idx ON mails (run_at) WHERE status = 'pending';
CREATE INDEX mails_finished_idx ON mails (updated_at) WHERE status <> 'pending';
CREATE INDEX mails_recipient_idx ON mails (recipient);

-- Who an order's mails go to, and the order as it was placed
-- (order.created): shipping and refund events name only the order.
CREATE TABLE mail_orders (
    order_id   uuid        PRIMARY KEY,
    recipient  text        NOT NULL,
    order_data jsonb       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mail_orders_created_at_idx ON mail_orders (created_at);
