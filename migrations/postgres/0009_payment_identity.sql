-- One payment record per real payment, whatever it paid for (a gift, a supporter's invoice,
-- shares), found by any of its references (PaymentIntent, invoice): refunds and disputes name
-- a PaymentIntent, a supporter's payment is known first by its invoice (issue 15, fault 2).
-- Keep in step with migrations/sqlite/0009_payment_identity.sql.

-- `payment` stays the key: the reference the payment was first known by.
ALTER TABLE payments ALTER COLUMN campaign_id DROP NOT NULL;
ALTER TABLE payments ADD COLUMN kind TEXT NOT NULL DEFAULT 'gift' CHECK (kind IN ('gift', 'supporter', 'shares'));
ALTER TABLE payments ADD COLUMN application_id TEXT;
UPDATE payments SET kind = 'supporter' WHERE payment LIKE 'in\_%';
-- Share payments were known only to their application.
INSERT INTO payments (payment, kind, campaign_id, amount_pence, refunded_pence, application_id, email, paid_at)
SELECT a.payment, 'shares', (SELECT s.campaign_id FROM share_allotments s WHERE s.source_id = a.payment),
       a.amount_pence, a.refunded_pence, a.id, a.email, a.paid_at
FROM share_applications a WHERE a.payment IS NOT NULL AND a.paid_at IS NOT NULL
ON CONFLICT (payment) DO NOTHING;

CREATE TABLE payment_references (
    reference       TEXT PRIMARY KEY,
    payment         TEXT NOT NULL REFERENCES payments (payment)
);
INSERT INTO payment_references (reference, payment) SELECT payment, payment FROM payments;
CREATE INDEX payment_references_by_payment ON payment_references (payment);
CREATE INDEX payments_paid ON payments (paid_at);

-- A different name or address typed when a member buys more shares: the register keeps what it
-- holds until staff accept the change (SPEC §7; issue 16, item 5).
CREATE TABLE member_changes (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    member_number   BIGINT NOT NULL REFERENCES members (member_number),
    application_id  TEXT NOT NULL UNIQUE REFERENCES share_applications (id),
    name            TEXT NOT NULL,
    address_line1   TEXT NOT NULL,
    address_line2   TEXT,
    town            TEXT NOT NULL,
    postcode        TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'accepted')),
    created_at      TIMESTAMPTZ NOT NULL,
    decided_at      TIMESTAMPTZ
);

-- A person is made and changed only by money (issue 16, item 4): an unpaid donation or share
-- application keeps the email and name typed on the form, and gets its person when it is paid.
ALTER TABLE donations ALTER COLUMN person_id DROP NOT NULL;
ALTER TABLE donations ADD COLUMN email TEXT;
UPDATE donations SET email = (SELECT p.email FROM people p WHERE p.id = donations.person_id);
ALTER TABLE share_applications ALTER COLUMN person_id DROP NOT NULL;
