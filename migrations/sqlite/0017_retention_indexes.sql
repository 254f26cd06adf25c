-- What the retention job and the readers' page look people up by (SPEC §10): without these,
-- each hourly run read every donation, application and email once per person.
-- Keep in step with migrations/postgres/0017_retention_indexes.sql.
CREATE INDEX donations_by_person ON donations (person_id);
CREATE INDEX donations_by_email ON donations (LOWER(email));
CREATE INDEX share_applications_by_email ON share_applications (LOWER(email));
CREATE INDEX outbox_by_recipient ON outbox (LOWER(recipient));
CREATE INDEX people_created ON people (created_at);
