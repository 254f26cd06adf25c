-- One session store for both private areas, a member's own answer to a pending change, and
-- what the retention job needs (SPEC §10, issue 17). Keep in step with
-- migrations/sqlite/0016_one_session_store_and_retention.sql.

-- Staff and readers' sessions in one table, told apart by their area: a session id is looked
-- up only within its own area, so a reader's cookie never opens the staff area. Live sessions
-- are carried over, so that nobody is signed out by the upgrade.
CREATE TABLE sessions (
    area            TEXT NOT NULL CHECK (area IN ('staff', 'reader')),
    id              TEXT NOT NULL,
    data            TEXT NOT NULL,
    expires_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (area, id)
);
CREATE INDEX sessions_expiry ON sessions (expires_at);
INSERT INTO sessions (area, id, data, expires_at) SELECT 'staff', id, data, expires_at FROM staff_sessions;
INSERT INTO sessions (area, id, data, expires_at) SELECT 'reader', id, data, expires_at FROM reader_sessions;
DROP TABLE staff_sessions;
DROP TABLE reader_sessions;

-- A pending change may now be rejected by the member on their own page.
ALTER TABLE member_changes DROP CONSTRAINT member_changes_status_check;
ALTER TABLE member_changes ADD CONSTRAINT member_changes_status_check
    CHECK (status IN ('pending', 'accepted', 'rejected'));

-- The erasure's confirmation goes to the reader's own address, through the outbox, after
-- everything else holding it has been pseudonymised: once it is sent (or given up), the
-- retention job replaces the address in the outbox too.
ALTER TABLE outbox ADD COLUMN forget_recipient BOOLEAN NOT NULL DEFAULT FALSE;

-- A former member's register entry is removed 10 years after they ceased: the row stays for
-- the allotments that refer to it, without name, address or email, and leaves the register.
ALTER TABLE members ADD COLUMN removed_on DATE;
