-- A monthly supporter's whole life (SPEC §5, §10, §11): paused, the terms Stripe says the
-- subscription has, how it ended, the invoices that failed or were paid, and a history for staff.
-- Keep in step with migrations/postgres/0013_supporters_lifecycle.sql.

-- SQLite cannot change a CHECK: the table is made again, its rows kept (SQLite's own procedure,
-- https://sqlite.org/lang_altertable.html#otheralter; no table refers to this one).
CREATE TABLE supporters_with_terms (
    id                  INTEGER PRIMARY KEY,
    subscription        TEXT NOT NULL UNIQUE,
    donation_id         TEXT REFERENCES donations (id),
    customer            TEXT,
    -- The monthly amount: the subscription's price.
    amount_pence        BIGINT NOT NULL,
    status              TEXT NOT NULL CHECK (status IN ('active', 'paused', 'past_due', 'cancelled')),
    started_at          TIMESTAMP NOT NULL,
    -- When Stripe said the status was true: an older event never overrides a newer one.
    status_at           TIMESTAMP NOT NULL,
    -- The subscription's terms, and when Stripe said they were true (NULL: only an invoice said).
    paused              BOOLEAN NOT NULL DEFAULT FALSE,
    paused_until        TIMESTAMP,
    cancel_at_period_end BOOLEAN NOT NULL DEFAULT FALSE,
    next_payment_at     TIMESTAMP,
    terms_at            TIMESTAMP,
    ending              TEXT CHECK (ending IN ('involuntary', 'voluntary')),
    ended_at            TIMESTAMP
);
INSERT INTO supporters_with_terms (id, subscription, donation_id, customer, amount_pence, status, started_at, status_at,
                                   terms_at, ending, ended_at)
SELECT id, subscription, donation_id, customer, amount_pence, status, started_at, status_at, started_at,
       CASE WHEN status = 'cancelled' THEN 'voluntary' END, CASE WHEN status = 'cancelled' THEN status_at END
FROM supporters;
DROP TABLE supporters;
ALTER TABLE supporters_with_terms RENAME TO supporters;
CREATE INDEX supporters_by_status ON supporters (status);
CREATE INDEX supporters_by_ending ON supporters (ended_at);

-- A supporter's invoice that failed or was paid: one notice per failed invoice; failed then
-- paid is a recovery.
CREATE TABLE supporter_invoices (
    invoice             TEXT PRIMARY KEY,
    subscription        TEXT NOT NULL,
    amount_pence        BIGINT NOT NULL,
    first_failed_at     TIMESTAMP,
    failed_at           TIMESTAMP,
    -- What the bank said (domain::DeclineReason), by card or Bacs Direct Debit, in Stripe's words.
    decline_reason      TEXT,
    direct_debit        BOOLEAN NOT NULL DEFAULT FALSE,
    decline_detail      TEXT,
    next_attempt_at     TIMESTAMP,
    paid_at             TIMESTAMP
);
CREATE INDEX supporter_invoices_by_subscription ON supporter_invoices (subscription, failed_at);
CREATE INDEX supporter_invoices_paid ON supporter_invoices (paid_at);

-- What staff see of each supporter: pauses, resumptions, new amounts, failures, endings.
CREATE TABLE supporter_changes (
    id                  INTEGER PRIMARY KEY,
    subscription        TEXT NOT NULL,
    change              TEXT NOT NULL,
    at                  TIMESTAMP NOT NULL,
    recorded_at         TIMESTAMP NOT NULL,
    UNIQUE (subscription, change, at)
);
CREATE INDEX supporter_changes_by_time ON supporter_changes (at);
