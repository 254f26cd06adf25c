-- The statements coopfund runs for one paid checkout.session.completed, as a pgbench script:
-- what PostgreSQL alone can do with them, with no HTTP, JSON or client of ours in the way.
-- Run by bench/webhooks.sh against the database the service just filled.
\set n random(1, 1000000000)
BEGIN;
INSERT INTO stripe_events (id, type, created, payload, status, received_at, processed_at)
  VALUES ('evt_pg_' || :n, 'checkout.session.completed', now(), repeat('{"x": 1234567890}', 200), 'processed', now(), now())
  ON CONFLICT (id) DO NOTHING RETURNING id;
SELECT id, title FROM campaigns WHERE kind = 'donations' ORDER BY starts_on DESC LIMIT 1;
INSERT INTO payments (payment, campaign_id, amount_pence, donation_id, email, customer, paid_at)
  VALUES ('pi_pg_' || :n, 1, 2500, NULL, 'reader@example.com', 'cus_pg', now()) ON CONFLICT (payment) DO NOTHING;
INSERT INTO ledger (campaign_id, amount_pence, gifts, source, source_id, occurred_at, recorded_at)
  VALUES (1, 2500, 1, 'stripe', 'pi_pg_' || :n, now(), now()) ON CONFLICT (source, source_id) DO NOTHING RETURNING id;
INSERT INTO campaign_totals (campaign_id, shard, raised_pence, gifts, updated_at) VALUES (1, :n % 16, 2500, 1, now())
  ON CONFLICT (campaign_id, shard) DO UPDATE SET raised_pence = campaign_totals.raised_pence + excluded.raised_pence,
    gifts = campaign_totals.gifts + excluded.gifts, updated_at = excluded.updated_at;
SELECT nextval('receipt_numbers');
INSERT INTO outbox (recipient, message_key, payload, status, created_at)
  VALUES ('reader@example.com', 'pg' || :n || '-' || clock_timestamp(), '{"kind":"receipt"}', 'pending', now());
UPDATE donations SET status = 'paid' WHERE id = 'don_pg_' || :n AND status IN ('pending', 'processing', 'cancelled');
COMMIT;
SELECT id, type, created, payload FROM stripe_events WHERE status = 'parked' ORDER BY created, id;
