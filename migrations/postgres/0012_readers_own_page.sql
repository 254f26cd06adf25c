-- Readers' own page (SPEC §10): sign-in links, readers' sessions, and consent with its history.
-- Keep in step with migrations/sqlite/0012_readers_own_page.sql.

-- A sign-in link: only the SHA-256 of its token is kept; used once, within 30 minutes.
CREATE TABLE reader_links (
    token_hash      TEXT PRIMARY KEY,
    email_key       TEXT NOT NULL,
    -- The address as the reader typed it: where their page's emails go.
    email           TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    expires_at      TIMESTAMPTZ NOT NULL,
    -- When it signed the reader in: the sign-ins an export lists.
    used_at         TIMESTAMPTZ
);
CREATE INDEX reader_links_by_email ON reader_links (email_key, created_at);

-- Every request for a link, for a known address or not: the hourly limits per address and per
-- client address count these, across instances.
CREATE TABLE reader_link_requests (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email_key       TEXT NOT NULL,
    client          TEXT NOT NULL,
    at              TIMESTAMPTZ NOT NULL
);
CREATE INDEX reader_link_requests_by_email ON reader_link_requests (email_key, at);
CREATE INDEX reader_link_requests_by_client ON reader_link_requests (client, at);

-- Readers' sessions (tower-sessions records as JSON), apart from the staff's.
CREATE TABLE reader_sessions (
    id              TEXT PRIMARY KEY,
    data            TEXT NOT NULL,
    expires_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX reader_sessions_expiry ON reader_sessions (expires_at);

-- Each change of a person's marketing consent, with where it was made; the newest holds.
CREATE TABLE consent_changes (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    person_id       BIGINT NOT NULL REFERENCES people (id),
    marketing_consent BOOLEAN NOT NULL,
    source          TEXT NOT NULL,
    at              TIMESTAMPTZ NOT NULL
);
CREATE INDEX consent_changes_by_person ON consent_changes (person_id, at);
