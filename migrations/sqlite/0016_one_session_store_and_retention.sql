-- One session store for both private areas, a member's own answer to a pending change, and
-- what the retention job needs (SPEC §10, issue 17). Keep in step with
-- migrations/postgres/0016_one_session_store_and_retention.sql.

-- Staff and readers' sessions in one table, told apart by their area: a session id is looked
-- up only within its own area, so a reader's cookie never opens the staff area. Live sessions
-- are carried over, so that nobody is signed out by the upgrade.
CREATE TABLE sessions (
    area            TEXT NOT NULL CHECK (area IN ('staff', 'reader')),
    id              TEXT NOT NULL,
    data            TEXT NOT NULL,
    expires_at      TIMESTAMP NOT NULL,
    PRIMARY KEY (area, id)
);
CREATE INDEX sessions_expiry ON sessions (expires_at);
INSERT INTO sessions (area, id, data, expires_at) SELECT 'staff', id, data, expires_at FROM staff_sessions;
INSERT INTO sessions (area, id, data, expires_at) SELECT 'reader', id, data, expires_at FROM reader_sessions;
DROP TABLE staff_sessions;
DROP TABLE reader_sessions;

-- A pending change may now be rejected by the member on their own page. SQLite cannot change a
-- CHECK: the table is made again with its rows (https://sqlite.org/lang_altertable.html#otheralter;
-- nothing refers to it).
CREATE TABLE member_changes_decided (
    id              INTEGER PRIMARY KEY,
    member_number   BIGINT NOT NULL REFERENCES members (member_number),
    application_id  TEXT NOT NULL UNIQUE REFERENCES share_applications (id),
    name            TEXT NOT NULL,
    address_line1   TEXT NOT NULL,
    address_line2   TEXT,
    town            TEXT NOT NULL,
    postcode        TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'accepted', 'rejected')),
    created_at      TIMESTAMP NOT NULL,
    decided_at      TIMESTAMP
);
INSERT INTO member_changes_decided SELECT * FROM member_changes;
DROP TABLE member_changes;
ALTER TABLE member_changes_decided RENAME TO member_changes;

-- The erasure's confirmation goes to the reader's own address, through the outbox, after
-- everything else holding it has been pseudonymised: once it is sent (or given up), the
-- retention job replaces the address in the outbox too.
ALTER TABLE outbox ADD COLUMN forget_recipient BOOLEAN NOT NULL DEFAULT FALSE;

-- A former member's register entry is removed 10 years after they ceased: the row stays for
-- the allotments that refer to it, without name, address or email, and leaves the register.
ALTER TABLE members ADD COLUMN removed_on DATE;
