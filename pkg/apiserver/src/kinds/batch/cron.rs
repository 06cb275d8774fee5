//! CronJob schedules as the API server judges them: robfig/cron's standard parser (shared
//! with the CronJob controller, in `k1s_apimachinery::cron`), whose error texts upstream
//! puts verbatim into `spec.schedule: Invalid value: …`, and Go's `time.LoadLocation`
//! for time zone names.

use k1s_apimachinery::cron::Schedule;
use std::path::Path as FsPath;

/// Parses a schedule like `cron.ParseStandard`; the error is robfig's text.
pub fn parse_standard(spec: &str) -> Result<(), String> {
    Schedule::parse_standard(spec, load_location).map(|_| ())
}

/// Go's `time.LoadLocation` error for `name` (`unknown time zone X`), looking in the
/// system's zoneinfo. Where this machine has no zoneinfo at all the name is accepted:
/// the API server upstream embeds the database, so nothing can be refused for sure.
pub fn load_location(name: &str) -> Result<(), String> {
    if name.is_empty() || name == "UTC" || name == "Local" {
        return Ok(());
    }
    if name.split('/').any(|p| p == "..") || name.starts_with('/') || name.starts_with('\\') {
        return Err("time: invalid location name".into());
    }
    let mut dirs: Vec<String> = Vec::new();
    if let Ok(z) = std::env::var("ZONEINFO") {
        dirs.push(z);
    }
    dirs.extend(
        [
            "/usr/share/zoneinfo",
            "/usr/share/lib/zoneinfo",
            "/usr/lib/locale/TZ",
            "/etc/zoneinfo",
        ]
        .map(String::from),
    );
    let mut any_database = false;
    for d in &dirs {
        let dir = FsPath::new(d);
        if dir.is_dir() {
            any_database = true;
            if dir.join(name).is_file() {
                return Ok(());
            }
        }
    }
    if any_database {
        Err(format!("unknown time zone {name}"))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_in_schedules_are_looked_up() {
        assert_eq!(parse_standard("TZ=UTC 0 * * * *"), Ok(()));
        assert_eq!(parse_standard("*/5 * * * *"), Ok(()));
        assert!(parse_standard("61 * * * *").is_err());
        if FsPath::new("/usr/share/zoneinfo/Europe/Paris").is_file() {
            assert_eq!(parse_standard("CRON_TZ=Europe/Paris @daily"), Ok(()));
            assert_eq!(
                parse_standard("TZ=Mars/Base 0 * * * *"),
                Err("provided bad location Mars/Base: unknown time zone Mars/Base".into())
            );
        }
        assert_eq!(
            load_location("../etc/passwd"),
            Err("time: invalid location name".into())
        );
    }
}
