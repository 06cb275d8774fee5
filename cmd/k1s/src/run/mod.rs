//! Wiring of each subcommand.

pub mod datastore;
pub mod kubectl;
pub mod server;
pub mod simulate;
