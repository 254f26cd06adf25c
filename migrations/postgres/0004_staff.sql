-- Staff who sign in at /staff, and the audit log of every change made by hand.
-- Keep in step with migrations/sqlite/0004_staff.sql.

CREATE TABLE staff (
    id              BIGSERIAL PRIMARY KEY,
    email           TEXT NOT NULL,
    -- The address lower-cased: one account per address however it is typed.
    email_key       TEXT NOT NULL UNIQUE,
    -- argon2id, in the PHC string format (salt and parameters inside).
    password_hash   TEXT NOT NULL,
    role            TEXT NOT NULL CHECK (role IN ('viewer', 'finance', 'admin')),
    created_at      TIMESTAMPTZ NOT NULL
);

-- Who did what, when: a row for every change, never updated or deleted.
CREATE TABLE audit_log (
    id              BIGSERIAL PRIMARY KEY,
    -- Empty for the command line, which runs as whoever has the server.
    staff_id        BIGINT REFERENCES staff (id),
    actor           TEXT NOT NULL,
    action          TEXT NOT NULL,
    detail          TEXT NOT NULL,
    at              TIMESTAMPTZ NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);
