//! Kinds of the `batch` group.

mod cronjob;
mod job;

pub use cronjob::CronJobStrategy;
pub use job::JobStrategy;
