-- The statement coopfund runs on PostgreSQL for one paid checkout.session.completed, as a
-- pgbench script: what PostgreSQL alone can do with it, with no HTTP, JSON or client of ours
-- in the way. Kept in step with `gift_in_one_statement` in src/store/postgres.rs; the parked
-- check after it is the service's second round trip. Run by bench/webhooks.sh against the
-- database the service just filled.
\set n random(1, 1000000000)
WITH camp AS (SELECT id, title FROM campaigns WHERE kind = 'donations' ORDER BY starts_on DESC LIMIT 1),
ev AS (
  INSERT INTO stripe_events (id, type, created, payload, status, received_at, processed_at)
  SELECT 'evt_pg_' || :n, 'checkout.session.completed', now(), repeat('{"x": 1234567890}', 200),
         CASE WHEN EXISTS (SELECT 1 FROM camp) THEN 'processed' ELSE 'unmatched' END, now(), now()
  ON CONFLICT (id) DO NOTHING RETURNING id),
pay AS (
  INSERT INTO payments (payment, campaign_id, amount_pence, donation_id, email, customer, paid_at)
  SELECT 'pi_pg_' || :n, camp.id, 2500, NULL, 'reader@example.com', 'cus_pg', now() FROM camp WHERE EXISTS (SELECT 1 FROM ev)
  ON CONFLICT (payment) DO NOTHING),
led AS (
  INSERT INTO ledger (campaign_id, amount_pence, gifts, source, source_id, occurred_at, recorded_at)
  SELECT camp.id, 2500, 1, 'stripe', 'pi_pg_' || :n, now(), now() FROM camp WHERE EXISTS (SELECT 1 FROM ev)
  ON CONFLICT (source, source_id) DO NOTHING RETURNING id, campaign_id),
totals AS (
  INSERT INTO campaign_totals (campaign_id, shard, raised_pence, gifts, updated_at)
  SELECT campaign_id, id % 16, 2500, 1, now() FROM led
  ON CONFLICT (campaign_id, shard) DO UPDATE SET raised_pence = campaign_totals.raised_pence + excluded.raised_pence,
    gifts = campaign_totals.gifts + excluded.gifts, updated_at = excluded.updated_at),
receipt AS (
  INSERT INTO outbox (recipient, message_key, payload, status, created_at, reference)
  SELECT 'reader@example.com', 'pg' || :n || '-' || clock_timestamp(),
         json_build_object('kind', 'receipt', 'number', 'R-2026-' || lpad(n::text, 6, '0'), 'amount', 2500,
                           'paid_on', current_date, 'purpose', 'a one-off gift to the ' || camp.title)::text,
         'pending', now(), 'pi_pg_' || :n
  FROM led, camp, LATERAL (SELECT nextval('receipt_numbers') AS n) seq),
donation AS (
  UPDATE donations SET status = 'paid' WHERE id = 'don_pg_' || :n AND status IN ('pending', 'processing', 'cancelled')
    AND EXISTS (SELECT 1 FROM ev) AND EXISTS (SELECT 1 FROM camp))
SELECT EXISTS (SELECT 1 FROM ev), EXISTS (SELECT 1 FROM camp), EXISTS (SELECT 1 FROM led);
SELECT id, type, created, payload FROM stripe_events WHERE status = 'parked' ORDER BY created, id;
