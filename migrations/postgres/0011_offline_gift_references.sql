-- Offline gifts: one per reference however often it is entered, and joined to their giver.
-- Keep in step with migrations/sqlite/0011_offline_gift_references.sql.

-- The gift's reference and ledger source id: the one-time token of the staff form it was
-- entered on, or `gift-{method}-{reference}` from `coopfund gift add --reference` (issue 15
-- item 8). Gifts entered before keep the id they were booked under.
ALTER TABLE offline_gifts ADD COLUMN source_id TEXT;
UPDATE offline_gifts SET source_id = 'gift-' || id;
ALTER TABLE offline_gifts ALTER COLUMN source_id SET NOT NULL;
CREATE UNIQUE INDEX offline_gifts_by_source ON offline_gifts (source_id);

-- A cheque with an email is money from a person (SPEC §8), who appears on the people page.
ALTER TABLE offline_gifts ADD COLUMN person_id BIGINT REFERENCES people (id);
INSERT INTO people (email_key, email, name, created_at)
    SELECT LOWER(email), MIN(email), MIN(name), MIN(created_at) FROM offline_gifts
    WHERE email IS NOT NULL GROUP BY LOWER(email)
    ON CONFLICT (email_key) DO NOTHING;
UPDATE offline_gifts SET person_id = (SELECT id FROM people WHERE email_key = LOWER(offline_gifts.email))
    WHERE email IS NOT NULL;
CREATE INDEX offline_gifts_by_person ON offline_gifts (person_id);

-- The people page counts each person's payments by address; the public list nets a gift's
-- refunds from its payment.
CREATE INDEX payments_by_email ON payments (LOWER(email));
CREATE INDEX payments_by_donation ON payments (donation_id, paid_at);
