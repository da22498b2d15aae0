-- Accounts of every role. Emails are stored normalised (trimmed, lower-case),
-- so the unique constraint is the single guard against duplicates, including
-- two registrations racing each other.
CREATE TABLE users (
    id            uuid        PRIMARY KEY,
    email         text        NOT NULL,
    password_hash text        NOT NULL,
    name          text        NOT NULL DEFAULT '',
    role          text        NOT NULL DEFAULT 'customer',
    is_active     boolean     NOT NULL DEFAULT true,
    -- Carried in every access token as `ver`; bumping it revokes them all.
    token_version integer     NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_email_key UNIQUE (email),
    CONSTRAINT users_role_check CHECK (role IN ('customer', 'admin'))
);

-- Admin listing pages through users oldest first with a stable tiebreak.
CREATE INDEX users_created_at_id_idx ON users (created_at, id);

-- Refresh tokens are opaque; only their SHA-256 digest is kept. Every use
-- rotates the token within its family (one login session); presenting a used
-- token again revokes the whole family.
CREATE TABLE refresh_tokens (
    id         uuid        PRIMARY KEY,
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family_id  uuid        NOT NULL,
    token_hash bytea       NOT NULL,
    issued_at  timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    revoked_at timestamptz,
    CONSTRAINT refresh_tokens_token_hash_key UNIQUE (token_hash)
);

CREATE INDEX refresh_tokens_user_id_idx ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_family_id_idx ON refresh_tokens (family_id);
