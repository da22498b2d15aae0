-- Email verification. Accounts made before verification existed are taken
-- as verified (they have been ordering with that address); new accounts
-- start unverified.
ALTER TABLE users ADD COLUMN email_verified boolean NOT NULL DEFAULT true;
ALTER TABLE users ALTER COLUMN email_verified SET DEFAULT false;

-- Single-use tokens sent by mail: password resets and email verification.
-- Only the SHA-256 digest of a token is kept. `email` is the address the
-- token was sent to: a verification proves that address, no other.
CREATE TABLE email_tokens (
    token_hash bytea       PRIMARY KEY,
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    text        NOT NULL,
    email      text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    CONSTRAINT email_tokens_purpose_check CHECK (purpose IN ('password_reset', 'email_verification'))
);

CREATE INDEX email_tokens_user_purpose_idx ON email_tokens (user_id, purpose);
CREATE INDEX email_tokens_expires_at_idx ON email_tokens (expires_at);
