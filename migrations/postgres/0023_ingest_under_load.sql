-- The outbox worker claims the oldest pending emails (`claim_emails`): by this index it reads
-- just those, not every pending email sorted, which under a burst of payments were thousands
-- (issue 15: 6 ms a claim while 17,000 receipts waited).
CREATE INDEX outbox_pending ON outbox (id) WHERE status = 'pending';

-- Every event's payload (a few kilobytes) is compressed as it is stored: lz4 does it in a
-- fraction of the CPU of the default pglz, which was the most of storing a batch of events.
ALTER TABLE stripe_events ALTER COLUMN payload SET COMPRESSION lz4;
