//! Kinds of the `batch` group.

mod cron;
mod cronjob;
mod job;

pub use cronjob::CronJobStrategy;
pub use job::JobStrategy;
