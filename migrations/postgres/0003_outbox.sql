-- The durable outbox: emails written in the transaction that causes them, sent by a worker.
-- Keep in step with migrations/sqlite/0003_outbox.sql.

CREATE TABLE outbox (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    recipient           TEXT NOT NULL,
    -- Fixed when the email is written: every attempt sends the same Message-ID.
    message_key         TEXT NOT NULL UNIQUE,
    payload             TEXT NOT NULL,
    status              TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    attempts            BIGINT NOT NULL DEFAULT 0,
    next_attempt_at     TIMESTAMPTZ,
    first_attempt_at    TIMESTAMPTZ,
    -- A worker's claim; one that dies mid-send lets it lapse and another sends again.
    claimed_until       TIMESTAMPTZ,
    last_error          TEXT,
    created_at          TIMESTAMPTZ NOT NULL,
    sent_at             TIMESTAMPTZ
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);

-- Receipt numbers: unique across every instance, and taken without holding a lock until commit.
CREATE SEQUENCE receipt_numbers;
