-- A monthly supporter's whole life (SPEC §5, §10, §11): paused, the terms Stripe says the
-- subscription has, how it ended, the invoices that failed or were paid, and a history for staff.
-- Keep in step with migrations/sqlite/0013_supporters_lifecycle.sql.

ALTER TABLE supporters DROP CONSTRAINT supporters_status_check;
ALTER TABLE supporters ADD CONSTRAINT supporters_status_check
    CHECK (status IN ('active', 'paused', 'past_due', 'cancelled'));
-- The subscription's terms, and when Stripe said they were true (NULL: only an invoice said).
ALTER TABLE supporters ADD COLUMN paused BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE supporters ADD COLUMN paused_until TIMESTAMPTZ;
ALTER TABLE supporters ADD COLUMN cancel_at_period_end BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE supporters ADD COLUMN next_payment_at TIMESTAMPTZ;
ALTER TABLE supporters ADD COLUMN terms_at TIMESTAMPTZ;
ALTER TABLE supporters ADD COLUMN ending TEXT CHECK (ending IN ('involuntary', 'voluntary'));
ALTER TABLE supporters ADD COLUMN ended_at TIMESTAMPTZ;
UPDATE supporters SET terms_at = started_at;
UPDATE supporters SET ending = 'voluntary', ended_at = status_at WHERE status = 'cancelled';
CREATE INDEX supporters_by_status ON supporters (status);
CREATE INDEX supporters_by_ending ON supporters (ended_at);

-- A supporter's invoice that failed or was paid: one notice per failed invoice; failed then
-- paid is a recovery.
CREATE TABLE supporter_invoices (
    invoice             TEXT PRIMARY KEY,
    subscription        TEXT NOT NULL,
    amount_pence        BIGINT NOT NULL,
    first_failed_at     TIMESTAMPTZ,
    failed_at           TIMESTAMPTZ,
    -- What the bank said (domain::DeclineReason), by card or Bacs Direct Debit, in Stripe's words.
    decline_reason      TEXT,
    direct_debit        BOOLEAN NOT NULL DEFAULT FALSE,
    decline_detail      TEXT,
    next_attempt_at     TIMESTAMPTZ,
    paid_at             TIMESTAMPTZ
);
CREATE INDEX supporter_invoices_by_subscription ON supporter_invoices (subscription, failed_at);
CREATE INDEX supporter_invoices_paid ON supporter_invoices (paid_at);

-- What staff see of each supporter: pauses, resumptions, new amounts, failures, endings.
CREATE TABLE supporter_changes (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subscription        TEXT NOT NULL,
    change              TEXT NOT NULL,
    at                  TIMESTAMPTZ NOT NULL,
    recorded_at         TIMESTAMPTZ NOT NULL,
    UNIQUE (subscription, change, at)
);
CREATE INDEX supporter_changes_by_time ON supporter_changes (at);
