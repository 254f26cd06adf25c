-- Every index is written with every row, so each is kept only for the rows something reads by
-- it (issue 15: a paid gift wrote 17 index entries).
--
-- Only parked events are looked up by the reference they wait for (the look as a payment
-- arrives, the sweep, the week's expiry); the staff list filters by status without an index.
DROP INDEX stripe_events_waiting;
CREATE INDEX stripe_events_parked ON stripe_events (waiting_for) WHERE status = 'parked';

-- Emails due are claimed oldest first by `outbox_pending`, the backlog is counted by it, and
-- staff list pending and failed emails by id: nothing reads by (status, next attempt).
DROP INDEX outbox_due;
