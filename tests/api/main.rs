//! Tests of the whole service over HTTP and the command line, on SQLite and PostgreSQL.

mod browser;
mod helpers;
mod smtp;
mod stripe;

mod bad_input;
mod cli;
mod edge;
mod exports;
mod faults;
mod fund;
mod giving;
mod live;
mod migrations;
mod outbox_claims;
mod receipts;
mod shares;
mod staff;
mod webhooks;
