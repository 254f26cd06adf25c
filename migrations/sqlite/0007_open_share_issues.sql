-- A share issue may run without a target or a last day; a fund always has both.
-- Keep in step with migrations/postgres/0007_open_share_issues.sql.
--
-- SQLite cannot drop NOT NULL, so the table is rebuilt. Foreign keys stay on: the tables that
-- refer to campaigns by id are checked at commit, and the rows are copied back only after the
-- new table has taken the name, so that each id they refer to is found again.

PRAGMA defer_foreign_keys = ON;

CREATE TEMP TABLE campaigns_before AS SELECT * FROM campaigns;
CREATE TABLE campaigns_open (
    id              INTEGER PRIMARY KEY,
    slug            TEXT NOT NULL UNIQUE,
    title           TEXT NOT NULL,
    kind            TEXT NOT NULL DEFAULT 'donations' CHECK (kind IN ('donations', 'shares')),
    target_pence    BIGINT CHECK (target_pence > 0),
    starts_on       DATE NOT NULL,
    ends_on         DATE,
    monthly_series  TEXT,
    created_at      TIMESTAMP NOT NULL,
    updated_at      TIMESTAMP NOT NULL,
    CHECK (ends_on >= starts_on),
    CHECK (kind = 'shares' OR (target_pence IS NOT NULL AND ends_on IS NOT NULL))
);
DROP TABLE campaigns;
ALTER TABLE campaigns_open RENAME TO campaigns;
INSERT INTO campaigns (id, slug, title, kind, target_pence, starts_on, ends_on, monthly_series, created_at, updated_at)
    SELECT id, slug, title, kind, target_pence, starts_on, ends_on, monthly_series, created_at, updated_at
    FROM campaigns_before;
DROP TABLE campaigns_before;
CREATE INDEX campaigns_by_dates ON campaigns (kind, starts_on, ends_on);
-- One campaign per month of a series, however many instances roll over at midnight.
CREATE UNIQUE INDEX campaigns_one_per_month ON campaigns (monthly_series, starts_on) WHERE monthly_series IS NOT NULL;
