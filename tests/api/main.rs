//! Tests of the whole service over HTTP and the command line, on SQLite and PostgreSQL.

mod browser;
mod helpers;
mod smtp;
mod stripe;

mod accessibility;
mod bad_input;
mod cli;
mod faults;
mod fund;
mod giving;
mod live;
mod migrations;
mod receipts;
mod shares;
mod staff;
mod webhooks;
