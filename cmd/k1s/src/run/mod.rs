//! Wiring of each subcommand.

pub mod kubectl;
pub mod server;
