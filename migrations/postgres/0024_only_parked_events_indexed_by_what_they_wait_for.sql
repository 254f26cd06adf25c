-- Only parked events are looked up by the reference they wait for (the look as a payment
-- arrives, the sweep, the week's expiry), so only they are indexed by it: every other event, by
-- far the most, writes no entry (issue 15). The staff list filters by status without an index.
DROP INDEX stripe_events_waiting;
CREATE INDEX stripe_events_parked ON stripe_events (waiting_for) WHERE status = 'parked';
