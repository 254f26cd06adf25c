-- Shares: applications, the register of members and the history of every allotment.
-- Keep in step with migrations/sqlite/0005_shares.sql.

CREATE TABLE share_applications (
    id              TEXT PRIMARY KEY,
    person_id       BIGINT NOT NULL REFERENCES people (id),
    name            TEXT NOT NULL,
    address_line1   TEXT NOT NULL,
    address_line2   TEXT,
    town            TEXT NOT NULL,
    postcode        TEXT NOT NULL,
    email           TEXT NOT NULL,
    amount_pence    BIGINT NOT NULL CHECK (amount_pence > 0),
    shares          BIGINT NOT NULL CHECK (shares > 0),
    -- The most one member may hold, as the rules said when they applied: judged again at allotment.
    cap_pence       BIGINT NOT NULL,
    -- held: paid, but allotting it would break the cap (two applications raced): staff decide.
    status          TEXT NOT NULL CHECK (status IN ('pending', 'allotted', 'held', 'cancelled')),
    -- The payment that paid for it, and how much of that Stripe has refunded so far.
    payment         TEXT UNIQUE,
    refunded_pence  BIGINT NOT NULL DEFAULT 0,
    note            TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    paid_at         TIMESTAMPTZ
);

-- The register of members (Co-operative and Community Benefit Societies Act 2014, s.30).
CREATE TABLE members (
    member_number       BIGINT PRIMARY KEY,
    person_id           BIGINT NOT NULL UNIQUE REFERENCES people (id),
    name                TEXT NOT NULL,
    address_line1       TEXT NOT NULL,
    address_line2       TEXT,
    town                TEXT NOT NULL,
    postcode            TEXT NOT NULL,
    email               TEXT NOT NULL,
    shares              BIGINT NOT NULL CHECK (shares >= 0),
    amount_paid_pence   BIGINT NOT NULL CHECK (amount_paid_pence >= 0),
    entered_on          DATE NOT NULL,
    ceased_on           DATE
);

-- Every allotment and every reversal of one, never updated: the register's history.
CREATE TABLE share_allotments (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    member_number   BIGINT NOT NULL REFERENCES members (member_number),
    application_id  TEXT NOT NULL REFERENCES share_applications (id),
    -- The payment for an allotment, `{payment}:refunded:{running total}` for a reversal: each once.
    source_id       TEXT NOT NULL UNIQUE,
    -- Negative for a reversal.
    shares          BIGINT NOT NULL,
    amount_pence    BIGINT NOT NULL,
    -- The share campaign whose ticker it moved, if one was open.
    campaign_id     BIGINT REFERENCES campaigns (id),
    allotted_on     DATE NOT NULL,
    recorded_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX share_allotments_by_member ON share_allotments (member_number, id);

-- Member numbers: a row lock hands them out one at a time, and a rolled-back allotment gives
-- its number back, so the register has no gaps (a sequence would leave them).
CREATE TABLE counters (
    name            TEXT PRIMARY KEY,
    value           BIGINT NOT NULL
);
