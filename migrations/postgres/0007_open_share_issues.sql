-- A share issue may run without a target or a last day; a fund always has both.
-- Keep in step with migrations/sqlite/0007_open_share_issues.sql.

ALTER TABLE campaigns ALTER COLUMN target_pence DROP NOT NULL, ALTER COLUMN ends_on DROP NOT NULL;
ALTER TABLE campaigns ADD CONSTRAINT campaigns_fund_has_target_and_last_day
    CHECK (kind = 'shares' OR (target_pence IS NOT NULL AND ends_on IS NOT NULL));
