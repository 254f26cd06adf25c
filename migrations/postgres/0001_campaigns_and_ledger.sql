-- Campaigns with their running totals, offline gifts, and the ledger of every movement of money.
-- Keep in step with migrations/sqlite/0001_campaigns_and_ledger.sql.

CREATE TABLE campaigns (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug            TEXT NOT NULL UNIQUE,
    title           TEXT NOT NULL,
    kind            TEXT NOT NULL DEFAULT 'donations' CHECK (kind IN ('donations', 'shares')),
    target_pence    BIGINT NOT NULL CHECK (target_pence > 0),
    starts_on       DATE NOT NULL,
    ends_on         DATE NOT NULL,
    monthly_series  TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    CHECK (ends_on >= starts_on)
);
CREATE INDEX campaigns_by_dates ON campaigns (kind, starts_on, ends_on);
-- One campaign per month of a series, however many instances roll over at midnight.
CREATE UNIQUE INDEX campaigns_one_per_month ON campaigns (monthly_series, starts_on) WHERE monthly_series IS NOT NULL;

-- Each campaign's running totals, kept by the same transaction as each ledger row, so reading
-- them never sums the ledger. Striped over 16 rows so that concurrent payments do not queue on one.
CREATE TABLE campaign_totals (
    campaign_id     BIGINT NOT NULL REFERENCES campaigns (id),
    shard           BIGINT NOT NULL,
    raised_pence    BIGINT NOT NULL,
    gifts           BIGINT NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (campaign_id, shard)
);

CREATE TABLE offline_gifts (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    campaign_id     BIGINT NOT NULL REFERENCES campaigns (id),
    amount_pence    BIGINT NOT NULL CHECK (amount_pence > 0),
    method          TEXT NOT NULL CHECK (method IN ('cheque', 'phone', 'standing_order', 'cash', 'bank_transfer')),
    received_on     DATE NOT NULL,
    email           TEXT,
    name            TEXT,
    note            TEXT,
    created_at      TIMESTAMPTZ NOT NULL
);

CREATE TABLE ledger (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    campaign_id     BIGINT NOT NULL REFERENCES campaigns (id),
    amount_pence    BIGINT NOT NULL,
    gifts           BIGINT NOT NULL CHECK (gifts IN (0, 1)),
    source          TEXT NOT NULL,
    source_id       TEXT NOT NULL,
    occurred_at     TIMESTAMPTZ NOT NULL,
    recorded_at     TIMESTAMPTZ NOT NULL,
    UNIQUE (source, source_id)
);
CREATE INDEX ledger_by_campaign ON ledger (campaign_id, occurred_at);
