-- A monthly supporter knows their person (issue 17 review): one whose subscription carries no
-- `metadata.donation` (set up in Stripe's dashboard, or by a Payment Link) is on their page,
-- blocks their erasure and is kept from the retention job like any other. The donation form's
-- marketing consent becomes a change in the consent history, in the order it was recorded.
-- Keep in step with migrations/sqlite/0019_supporters_know_their_person.sql.

ALTER TABLE supporters ADD COLUMN person_id BIGINT REFERENCES people (id);
-- The person of the supporter's donation, else the person their customer's payments were sent to.
UPDATE supporters SET person_id = COALESCE(
    (SELECT d.person_id FROM donations d WHERE d.id = supporters.donation_id),
    (SELECT pe.id FROM payments p JOIN people pe ON pe.email_key = LOWER(p.email)
     WHERE p.customer = supporters.customer ORDER BY p.paid_at DESC LIMIT 1));
CREATE INDEX supporters_by_person ON supporters (person_id);

-- Each paid donation's consent, at the time it was paid, oldest first: ids keep their order.
INSERT INTO consent_changes (person_id, marketing_consent, source, at)
SELECT person_id, marketing_consent, 'the donation form', paid_at FROM donations
WHERE status = 'paid' AND person_id IS NOT NULL AND paid_at IS NOT NULL
ORDER BY paid_at, created_at, id;
