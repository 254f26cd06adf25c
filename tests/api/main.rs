//! Tests of the whole service over HTTP and the command line, on SQLite and PostgreSQL.

mod browser;
mod helpers;
mod smtp;
mod stripe;

mod accessibility;
mod account;
mod account_browser;
mod account_records;
mod account_refusals;
mod bad_input;
mod cli;
mod edge;
mod equivalence;
mod erasure_races;
mod exports;
mod faults;
mod fund;
mod giving;
mod ledger;
mod live;
mod migrations;
mod monthly;
mod outbox_claims;
mod parked_races;
mod receipts;
mod retention;
mod shares;
mod staff;
mod staff_records;
mod supporters;
mod webhooks;
