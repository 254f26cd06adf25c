-- The staff area: sessions, failed logins, staff who leave, and which payment each email is about.
-- Keep in step with migrations/sqlite/0006_staff_area.sql.

-- Staff sessions (tower-sessions records as JSON), so that any instance serves any request.
CREATE TABLE staff_sessions (
    id              TEXT PRIMARY KEY,
    data            TEXT NOT NULL,
    expires_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX staff_sessions_expiry ON staff_sessions (expires_at);

-- Failed logins, counted per account and per address over the last 15 minutes.
CREATE TABLE login_failures (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email_key       TEXT NOT NULL,
    address         TEXT NOT NULL,
    at              TIMESTAMPTZ NOT NULL
);
CREATE INDEX login_failures_by_account ON login_failures (email_key, at);
CREATE INDEX login_failures_by_address ON login_failures (address, at);

-- The payment (or offline gift) an email is about: a gift's page shows its receipt.
-- Not indexed: only that page reads it, and the outbox is written by every payment.
ALTER TABLE outbox ADD COLUMN reference TEXT;

-- Staff who leave keep their row, which the audit log refers to; they can no longer sign in.
ALTER TABLE staff ADD COLUMN removed_at TIMESTAMPTZ;
