-- An email whose content must not be kept once it is out (a sign-in link: SPEC §10 stores a
-- token only as a hash) is queued with what its payload becomes; the outbox's own "sent" or
-- "gave up" write puts it in place, in the same statement that forgets a recipient marked
-- `forget_recipient`. Nothing waits for a later job.
ALTER TABLE outbox ADD COLUMN payload_once_sent TEXT;

-- What the retention job used to forget an hour later, forgotten now.
UPDATE outbox SET recipient = 'erased-' || md5(random()::text || id::text) || '@erased.invalid', forget_recipient = FALSE
WHERE forget_recipient AND status IN ('sent', 'failed');
UPDATE outbox SET payload_once_sent = '{"kind":"sign_in_link","url":"","valid_minutes":30}'
WHERE payload LIKE '{"kind":"sign_in_link"%' AND status = 'pending';
UPDATE outbox SET payload = '{"kind":"sign_in_link","url":"","valid_minutes":30}'
WHERE payload LIKE '{"kind":"sign_in_link"%' AND status IN ('sent', 'failed');
