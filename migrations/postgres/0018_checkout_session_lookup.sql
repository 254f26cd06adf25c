-- The thanks page names the gift that Stripe sends the reader back from: it finds the donation
-- by its Checkout Session's id (`?session_id=cs_…`), which the donation keeps from the moment
-- the session is created (issue 18). One session is one donation.
-- Keep in step with migrations/sqlite/0018_checkout_session_lookup.sql.
CREATE UNIQUE INDEX donations_by_checkout_session ON donations (checkout_session) WHERE checkout_session IS NOT NULL;
