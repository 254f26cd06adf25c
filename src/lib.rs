//! coopfund: the fighting fund, monthly supporters and share capital of a readers' co-operative.

pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod fund;
pub mod http;
pub mod jobs;
pub mod ledger;
pub mod mail;
pub mod metrics;
pub mod payments;
pub mod store;
