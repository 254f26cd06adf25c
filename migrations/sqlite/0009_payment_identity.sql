-- One payment record per real payment, whatever it paid for (a gift, a supporter's invoice,
-- shares), found by any of its references (PaymentIntent, invoice): refunds and disputes name
-- a PaymentIntent, a supporter's payment is known first by its invoice (issue 15, fault 2).
-- Keep in step with migrations/postgres/0009_payment_identity.sql.

-- SQLite cannot drop a NOT NULL: the table is made again, its rows kept (see below).
-- `payment` stays the key: the reference the payment was first known by.
CREATE TABLE payments_by_reference (
    payment             TEXT PRIMARY KEY,
    -- NULL only for shares bought while no share issue was open.
    campaign_id         BIGINT REFERENCES campaigns (id),
    amount_pence        BIGINT NOT NULL,
    refunded_pence      BIGINT NOT NULL DEFAULT 0,
    donation_id         TEXT,
    email               TEXT,
    customer            TEXT,
    paid_at             TIMESTAMP NOT NULL,
    kind                TEXT NOT NULL DEFAULT 'gift' CHECK (kind IN ('gift', 'supporter', 'shares')),
    application_id      TEXT
);
INSERT INTO payments_by_reference (payment, campaign_id, amount_pence, refunded_pence, donation_id, email, customer, paid_at, kind)
SELECT payment, campaign_id, amount_pence, refunded_pence, donation_id, email, customer, paid_at,
       CASE WHEN payment LIKE 'in\_%' ESCAPE '\' THEN 'supporter' ELSE 'gift' END
FROM payments;
DROP TABLE payments;
ALTER TABLE payments_by_reference RENAME TO payments;
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
    id              INTEGER PRIMARY KEY,
    member_number   BIGINT NOT NULL REFERENCES members (member_number),
    application_id  TEXT NOT NULL UNIQUE REFERENCES share_applications (id),
    name            TEXT NOT NULL,
    address_line1   TEXT NOT NULL,
    address_line2   TEXT,
    town            TEXT NOT NULL,
    postcode        TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'accepted')),
    created_at      TIMESTAMP NOT NULL,
    decided_at      TIMESTAMP
);

-- A person is made and changed only by money (issue 16, item 4): an unpaid donation or share
-- application keeps the email and name typed on the form, and gets its person when it is paid.
-- SQLite cannot drop a NOT NULL: both tables are made again, their rows kept (SQLite's own
-- procedure, https://sqlite.org/lang_altertable.html#otheralter: `store::sqlite::open` runs
-- migrations with foreign keys off, so that the tables referring to them keep their rows).
CREATE TABLE donations_paid_by_people (
    id                  TEXT PRIMARY KEY,
    person_id           BIGINT REFERENCES people (id),
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
    created_at          TIMESTAMP NOT NULL,
    paid_at             TIMESTAMP,
    email               TEXT
);
INSERT INTO donations_paid_by_people (id, person_id, campaign_id, amount_pence, frequency, name, display_name, place,
                                      anonymous, marketing_consent, status, checkout_session, created_at, paid_at, email)
SELECT d.id, d.person_id, d.campaign_id, d.amount_pence, d.frequency, d.name, d.display_name, d.place, d.anonymous,
       d.marketing_consent, d.status, d.checkout_session, d.created_at, d.paid_at,
       (SELECT p.email FROM people p WHERE p.id = d.person_id)
FROM donations d;
DROP TABLE donations;
ALTER TABLE donations_paid_by_people RENAME TO donations;
CREATE INDEX donations_paid ON donations (status, paid_at);

CREATE TABLE share_applications_paid_by_people (
    id              TEXT PRIMARY KEY,
    person_id       BIGINT REFERENCES people (id),
    name            TEXT NOT NULL,
    address_line1   TEXT NOT NULL,
    address_line2   TEXT,
    town            TEXT NOT NULL,
    postcode        TEXT NOT NULL,
    email           TEXT NOT NULL,
    amount_pence    BIGINT NOT NULL CHECK (amount_pence > 0),
    shares          BIGINT NOT NULL CHECK (shares > 0),
    cap_pence       BIGINT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'allotted', 'held', 'cancelled')),
    payment         TEXT UNIQUE,
    refunded_pence  BIGINT NOT NULL DEFAULT 0,
    note            TEXT,
    created_at      TIMESTAMP NOT NULL,
    paid_at         TIMESTAMP
);
INSERT INTO share_applications_paid_by_people
SELECT id, person_id, name, address_line1, address_line2, town, postcode, email, amount_pence, shares, cap_pence, status,
       payment, refunded_pence, note, created_at, paid_at
FROM share_applications;
DROP TABLE share_applications;
ALTER TABLE share_applications_paid_by_people RENAME TO share_applications;
