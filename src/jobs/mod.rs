//! Work that runs by itself in the background of `serve`.

pub mod rollover;
