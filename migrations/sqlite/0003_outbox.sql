-- The durable outbox: emails written in the transaction that causes them, sent by a worker.
-- Keep in step with migrations/postgres/0003_outbox.sql.

CREATE TABLE outbox (
    id                  INTEGER PRIMARY KEY,
    recipient           TEXT NOT NULL,
    -- Fixed when the email is written: every attempt sends the same Message-ID.
    message_key         TEXT NOT NULL UNIQUE,
    payload             TEXT NOT NULL,
    status              TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    attempts            BIGINT NOT NULL DEFAULT 0,
    next_attempt_at     TIMESTAMP,
    first_attempt_at    TIMESTAMP,
    -- A worker's claim; one that dies mid-send lets it lapse and another sends again.
    claimed_until       TIMESTAMP,
    last_error          TEXT,
    created_at          TIMESTAMP NOT NULL,
    sent_at             TIMESTAMP
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);

-- Receipt numbers (PostgreSQL uses a sequence; here the single writer makes a row enough).
CREATE TABLE counters (
    name                TEXT PRIMARY KEY,
    value               BIGINT NOT NULL
);
