//! Tests of the whole service over HTTP and the command line, on SQLite and PostgreSQL.

mod helpers;

mod cli;
mod fund;
