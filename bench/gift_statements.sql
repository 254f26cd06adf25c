-- The statement coopfund runs on PostgreSQL for a batch of paid checkout.session.completed
-- events, as a pgbench script: what PostgreSQL alone can do with it, with no HTTP, JSON or
-- client of ours in the way. Kept in step with `book_gifts` in src/store/postgres.rs (there
-- the rows come from arrays bound to unnest; here from generate_series). `batch` is the number
-- of gifts in one statement. Run by bench/webhooks.sh against the database the service filled.
\set n random(1, 1000000000)
WITH input AS (
  SELECT 'evt_pg_' || (:n::bigint * 1000 + g) AS event_id, 'checkout.session.completed' AS kind, now() AS created,
         repeat('{"x": 1234567890}', 200) AS payload, now() AS received_at, current_date AS counts_on,
         'pi_pg_' || (:n::bigint * 1000 + g) AS payment, 2500::bigint AS amount, NULL::text AS donation,
         'reader@example.com' AS email, 'cus_pg' AS customer, md5(random()::text) AS message_key, g AS ord
  FROM generate_series(1, :batch) g),
camp AS (
  SELECT day.counts_on, c.id, c.title FROM (SELECT DISTINCT counts_on FROM input) day,
    LATERAL (SELECT id, title FROM campaigns WHERE kind = 'donations'
             ORDER BY CASE WHEN starts_on <= day.counts_on AND ends_on >= day.counts_on THEN 0
                           WHEN starts_on <= day.counts_on THEN 1 ELSE 2 END,
                      CASE WHEN starts_on <= day.counts_on THEN starts_on END DESC, starts_on, id DESC LIMIT 1) c),
ev AS (
  INSERT INTO stripe_events (id, type, created, payload, status, received_at, processed_at)
  SELECT i.event_id, i.kind, i.created, i.payload,
         CASE WHEN camp.id IS NULL THEN 'unmatched' ELSE 'processed' END, i.received_at, i.received_at
  FROM input i LEFT JOIN camp USING (counts_on) ORDER BY i.event_id
  ON CONFLICT (id) DO NOTHING RETURNING id),
fresh AS (SELECT i.*, camp.id AS campaign_id, camp.title FROM input i JOIN ev ON ev.id = i.event_id JOIN camp USING (counts_on)),
pay AS (
  INSERT INTO payments (payment, campaign_id, amount_pence, donation_id, email, customer, paid_at)
  SELECT payment, campaign_id, amount, donation, email, customer, created FROM fresh ORDER BY payment
  ON CONFLICT (payment) DO NOTHING),
led AS (
  INSERT INTO ledger (campaign_id, amount_pence, gifts, source, source_id, occurred_at, recorded_at)
  SELECT campaign_id, amount, 1, 'stripe', payment, created, received_at FROM fresh ORDER BY payment
  ON CONFLICT (source, source_id) DO NOTHING RETURNING id, campaign_id, amount_pence, source_id, recorded_at),
totals AS (
  INSERT INTO campaign_totals (campaign_id, shard, raised_pence, gifts, updated_at)
  SELECT campaign_id, min(id) % 16, sum(amount_pence), count(*), max(recorded_at) FROM led
  GROUP BY campaign_id ORDER BY campaign_id
  ON CONFLICT (campaign_id, shard) DO UPDATE SET
    raised_pence = campaign_totals.raised_pence + excluded.raised_pence,
    gifts = campaign_totals.gifts + excluded.gifts,
    updated_at = excluded.updated_at),
receipt AS (
  INSERT INTO outbox (recipient, message_key, payload, status, created_at, reference)
  SELECT f.email, f.message_key,
         json_build_object('kind', 'receipt',
                           'number', 'R-' || to_char(f.counts_on, 'YYYY') || '-' || lpad(n::text, GREATEST(6, length(n::text)), '0'),
                           'amount', f.amount, 'paid_on', f.counts_on, 'purpose', 'a one-off gift to the ' || f.title)::text,
         'pending', f.received_at, f.payment
  FROM fresh f JOIN led ON led.source_id = f.payment, LATERAL (SELECT nextval('receipt_numbers') AS n) seq
  WHERE f.email IS NOT NULL),
donation AS (
  UPDATE donations d SET status = 'paid', paid_at = COALESCE(d.paid_at, f.created) FROM fresh f
  WHERE d.id = f.donation AND d.status IN ('pending', 'processing', 'cancelled'))
SELECT ev.id IS NOT NULL, camp.id IS NOT NULL, led.id IS NOT NULL,
       EXISTS (SELECT 1 FROM stripe_events WHERE status = 'parked')
FROM input i LEFT JOIN ev ON ev.id = i.event_id LEFT JOIN camp USING (counts_on)
  LEFT JOIN led ON led.source_id = i.payment
ORDER BY i.ord;
