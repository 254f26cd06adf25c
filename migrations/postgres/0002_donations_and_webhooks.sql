-- Readers, their gifts and subscriptions, the payments that counted, and every verified Stripe event.
-- Keep in step with migrations/sqlite/0002_donations_and_webhooks.sql.

CREATE TABLE people (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The address in lower case: one person however they capitalise it.
    email_key       TEXT NOT NULL UNIQUE,
    email           TEXT NOT NULL,
    name            TEXT,
    created_at      TIMESTAMPTZ NOT NULL
);

CREATE TABLE donations (
    id                  TEXT PRIMARY KEY,
    person_id           BIGINT NOT NULL REFERENCES people (id),
    campaign_id         BIGINT NOT NULL REFERENCES campaigns (id),
    amount_pence        BIGINT NOT NULL CHECK (amount_pence > 0),
    frequency           TEXT NOT NULL CHECK (frequency IN ('once', 'monthly')),
    name                TEXT,
    display_name        TEXT,
    place               TEXT,
    anonymous           BOOLEAN NOT NULL,
    marketing_consent   BOOLEAN NOT NULL,
    status              TEXT NOT NULL CHECK (status IN ('pending', 'processing', 'paid', 'failed', 'cancelled')),
    checkout_session    TEXT,
    created_at          TIMESTAMPTZ NOT NULL,
    paid_at             TIMESTAMPTZ
);
CREATE INDEX donations_paid ON donations (status, paid_at);

CREATE TABLE supporters (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subscription        TEXT NOT NULL UNIQUE,
    donation_id         TEXT REFERENCES donations (id),
    customer            TEXT,
    amount_pence        BIGINT NOT NULL,
    status              TEXT NOT NULL CHECK (status IN ('active', 'past_due', 'cancelled')),
    started_at          TIMESTAMPTZ NOT NULL,
    -- When Stripe said the status was true: an older event never overrides a newer one.
    status_at           TIMESTAMPTZ NOT NULL
);

-- Every payment that counted, with the campaign it counted towards: refunds and disputes follow it there.
CREATE TABLE payments (
    payment             TEXT PRIMARY KEY,
    campaign_id         BIGINT NOT NULL REFERENCES campaigns (id),
    amount_pence        BIGINT NOT NULL,
    refunded_pence      BIGINT NOT NULL DEFAULT 0,
    donation_id         TEXT,
    -- Where receipts and refund notices for it go.
    email               TEXT,
    -- Stripe's customer: a supporter's invoices are reconciled by it.
    customer            TEXT,
    paid_at             TIMESTAMPTZ NOT NULL
);

CREATE TABLE stripe_events (
    id                  TEXT PRIMARY KEY,
    type                TEXT NOT NULL,
    created             TIMESTAMPTZ NOT NULL,
    payload             TEXT NOT NULL,
    status              TEXT NOT NULL CHECK (status IN ('processed', 'parked', 'ignored', 'unmatched', 'unparsed')),
    waiting_for         TEXT,
    note                TEXT,
    received_at         TIMESTAMPTZ NOT NULL,
    processed_at        TIMESTAMPTZ
);
CREATE INDEX stripe_events_waiting ON stripe_events (status, waiting_for);
