-- Every receipt's number in a column of its own, unique: a number used twice is refused by the
-- database, whatever the code above it does (issue 15, fault 1: a batched statement had taken one
-- number for several receipts). Emails written before this migration keep a NULL here.
-- Keep in step with migrations/postgres/0008_unique_receipt_numbers.sql.

ALTER TABLE outbox ADD COLUMN receipt_number TEXT;
CREATE UNIQUE INDEX outbox_receipt_number ON outbox (receipt_number);
