//! Wiring of each subcommand.

pub mod datastore;
pub mod image;
pub mod kubectl;
pub mod server;
pub mod simulate;
