-- Each supporter's billing cycle anchor (Stripe's `billing_cycle_anchor` on the subscription, in
-- every `customer.subscription.*` event): the instant whose day of the month every billing date
-- keeps, clamped to shorter months (Stripe docs, "Set billing cycles"). A pause counts the
-- payments it skips from it (domain::monthly::BillingCycle). NULL until a subscription event
-- tells it. Keep in step with migrations/postgres/0020_supporter_billing_cycle_anchor.sql.

ALTER TABLE supporters ADD COLUMN billing_cycle_anchor TIMESTAMP;
