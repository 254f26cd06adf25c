-- Sessions that end when their account changes, attempt limits that hold under a crowd,
-- and outbox claims that name their worker (issue 16).

-- Bumped when an account is removed or its role changes: a session signed in under an older
-- value is over, and adding the address again later never revives it.
ALTER TABLE staff ADD COLUMN session_epoch BIGINT NOT NULL DEFAULT 0;

-- Attempts (at signing in, or anything else worth limiting) are counted before they are
-- judged; a key names what is limited, such as an account or an address. Replaces
-- login_failures, which counted only after the password had been checked.
DROP TABLE login_failures;
CREATE TABLE attempts (
    id              INTEGER PRIMARY KEY,
    key             TEXT NOT NULL,
    at              TIMESTAMP NOT NULL
);
CREATE INDEX attempts_by_key ON attempts (key, at);
CREATE INDEX attempts_at ON attempts (at);

-- One row per key, locked while an attempt is counted, so that attempts arriving at once
-- are counted one after another.
CREATE TABLE attempt_keys (
    key             TEXT PRIMARY KEY,
    last_at         TIMESTAMP NOT NULL
);
CREATE INDEX attempt_keys_last_at ON attempt_keys (last_at);

-- Keys the instances share, made once by whichever starts first (the login form's CSRF
-- cookie is signed with one, so that a form served by one instance is accepted by another).
CREATE TABLE secrets (
    name            TEXT PRIMARY KEY,
    value           TEXT NOT NULL
);

-- The worker holding an email's claim: only it may record how sending went.
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
