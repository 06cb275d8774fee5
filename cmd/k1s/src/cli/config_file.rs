//! `/etc/k1s/config.yaml`: flags read from a file, as k3s reads `/etc/rancher/k3s/config.yaml`.
//!
//! Keys are a subcommand's long flag names without the dashes (`node-name: pi1`); lists give
//! repeatable flags (`tls-san: [a, b]`); `true` turns a switch on. Files in
//! `<config>.d/*.yaml` follow in name order, a later file's key replacing an earlier one's,
//! and `key+:` appending to it instead. Flags given on the command line win: a key whose
//! flag was given there is ignored, lists included. The file's flags count as command-line
//! flags, so they win over environment variables (as in k3s).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap::parser::ValueSource;
use serde_json::Value;

/// The config file read when neither --config nor K1S_CONFIG_FILE names one.
pub const DEFAULT_CONFIG_FILE: &str = "/etc/k1s/config.yaml";

/// Subcommands whose flags the config file sets, and whether a key naming none of their
/// flags is worth a warning: `killall` shares the server's file for --data-dir and
/// --bridge-name and ignores the rest.
const CONFIGURED_SUBCOMMANDS: &[(&str, bool)] =
    &[("server", true), ("agent", true), ("killall", false)];

/// Why the config file could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not YAML, or not a mapping of flag names.
    #[error("invalid config file {path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// The command line with the config file's flags put in, and warnings to log once logging
/// is set up.
#[derive(Debug, Default)]
pub struct Expanded {
    /// The arguments to parse.
    pub args: Vec<OsString>,
    /// Keys that name no flag, and similar; k3s logs and skips them.
    pub warnings: Vec<String>,
}

/// Reads the config file (and its drop-ins) named by the command line, the environment or
/// the default, and inserts its flags after the subcommand. A command line clap rejects is
/// returned unchanged, so clap reports the error itself.
pub fn expand(args: Vec<OsString>) -> Result<Expanded, ConfigError> {
    let Ok(matches) = super::Cli::command().try_get_matches_from(args.clone()) else {
        return Ok(Expanded {
            args,
            warnings: Vec::new(),
        });
    };
    let Some((sub, sub_matches)) = matches.subcommand() else {
        return Ok(Expanded {
            args,
            warnings: Vec::new(),
        });
    };
    let Some(&(_, warn_unknown)) = CONFIGURED_SUBCOMMANDS.iter().find(|(s, _)| *s == sub) else {
        return Ok(Expanded {
            args,
            warnings: Vec::new(),
        });
    };
    let explicit = matches!(
        sub_matches.value_source("config"),
        Some(ValueSource::CommandLine | ValueSource::EnvVariable)
    );
    let path = sub_matches
        .get_one::<PathBuf>("config")
        .cloned()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_FILE));
    let Some(values) = load(&path, explicit)? else {
        return Ok(Expanded {
            args,
            warnings: Vec::new(),
        });
    };
    let mut cmd = super::Cli::command();
    cmd.build();
    let Some(sub_cmd) = cmd.find_subcommand(sub) else {
        return Ok(Expanded {
            args,
            warnings: Vec::new(),
        });
    };
    let mut warnings = Vec::new();
    let mut extra: Vec<OsString> = Vec::new();
    for (key, value) in &values {
        let Some(arg) = sub_cmd
            .get_arguments()
            .find(|a| a.get_long() == Some(key.as_str()))
        else {
            if warn_unknown {
                warnings.push(format!(
                    "unknown flag --{key} found in config file {}, skipping",
                    path.display()
                ));
            }
            continue;
        };
        if key == "config" {
            warnings.push(format!(
                "--config in config file {} is ignored",
                path.display()
            ));
            continue;
        }
        if sub_matches.value_source(arg.get_id().as_str()) == Some(ValueSource::CommandLine) {
            continue;
        }
        let switch = matches!(arg.get_action(), clap::ArgAction::SetTrue);
        match flag_args(key, value, switch) {
            Ok(flags) => extra.extend(flags.into_iter().map(OsString::from)),
            Err(message) => {
                return Err(ConfigError::Invalid {
                    path: path.clone(),
                    message,
                });
            }
        }
    }
    // After the subcommand's name: the first argument after the program's that is it
    // (the only global flag, --debug, takes no value that could be mistaken for it).
    let at = args
        .iter()
        .skip(1)
        .position(|a| a.to_str() == Some(sub))
        .map_or(args.len(), |i| i + 2);
    let mut out = args[..at].to_vec();
    out.extend(extra);
    out.extend_from_slice(&args[at..]);
    Ok(Expanded {
        args: out,
        warnings,
    })
}

/// The merged keys of `path` and `path.d/*.yaml`; `None` when no file exists and the path
/// was only the default.
fn load(path: &Path, explicit: bool) -> Result<Option<BTreeMap<String, Value>>, ConfigError> {
    let mut files = Vec::new();
    match std::fs::metadata(path) {
        Ok(_) => files.push(path.to_path_buf()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {}
        Err(source) => {
            return Err(ConfigError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    }
    let mut drop_in_dir = path.as_os_str().to_owned();
    drop_in_dir.push(".d");
    if let Ok(entries) = std::fs::read_dir(PathBuf::from(drop_in_dir)) {
        let mut drop_ins: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect();
        drop_ins.sort();
        files.extend(drop_ins);
    }
    if files.is_empty() {
        return Ok(None);
    }
    let mut merged = BTreeMap::new();
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|source| ConfigError::Read {
            path: file.clone(),
            source,
        })?;
        merge(&mut merged, &text).map_err(|message| ConfigError::Invalid {
            path: file.clone(),
            message,
        })?;
    }
    Ok(Some(merged))
}

/// Merges one file's keys into `into`: a key replaces, `key+` appends (to a list, or to a
/// string with a comma, as k3s does).
fn merge(into: &mut BTreeMap<String, Value>, text: &str) -> Result<(), String> {
    // A file of comments only (as install.sh writes it) sets nothing.
    if text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        return Ok(());
    }
    let doc: Value = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
    let map = match doc {
        Value::Object(map) => map,
        Value::Null => return Ok(()),
        _ => return Err("expected a mapping of flag names to values".into()),
    };
    for (key, value) in map {
        let key = key.trim_start_matches('-');
        if let Some(base) = key.strip_suffix('+') {
            let merged = match (into.remove(base), value) {
                (None, v) => v,
                (Some(Value::Array(mut a)), Value::Array(b)) => {
                    a.extend(b);
                    Value::Array(a)
                }
                (Some(Value::Array(mut a)), v) => {
                    a.push(v);
                    Value::Array(a)
                }
                (Some(old), Value::Array(b)) => {
                    let mut a = vec![old];
                    a.extend(b);
                    Value::Array(a)
                }
                (Some(old), v) => Value::String(format!("{},{}", scalar(&old)?, scalar(&v)?)),
            };
            into.insert(base.to_string(), merged);
        } else {
            into.insert(key.to_string(), value);
        }
    }
    Ok(())
}

/// The command-line flags for one key.
fn flag_args(key: &str, value: &Value, switch: bool) -> Result<Vec<String>, String> {
    if switch {
        return match value {
            Value::Bool(true) => Ok(vec![format!("--{key}")]),
            Value::Bool(false) | Value::Null => Ok(Vec::new()),
            Value::String(s) if s == "true" => Ok(vec![format!("--{key}")]),
            Value::String(s) if s == "false" => Ok(Vec::new()),
            _ => Err(format!("{key}: expected true or false")),
        };
    }
    match value {
        Value::Array(items) => items
            .iter()
            .map(|v| {
                Ok(format!(
                    "--{key}={}",
                    scalar(v).map_err(|e| format!("{key}: {e}"))?
                ))
            })
            .collect(),
        Value::Null => Ok(Vec::new()),
        v => Ok(vec![format!(
            "--{key}={}",
            scalar(v).map_err(|e| format!("{key}: {e}"))?
        )]),
    }
}

/// A scalar as the command line would give it.
fn scalar(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err("expected a string, number or boolean".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    fn parse(args: Vec<OsString>) -> crate::cli::server::ServerArgs {
        match crate::cli::Cli::try_parse_from(args) {
            Ok(crate::cli::Cli {
                command: crate::cli::Command::Server(s),
                ..
            }) => *s,
            other => panic!("not a server command line: {other:?}"),
        }
    }

    #[test]
    fn keys_become_flags_and_the_command_line_wins() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("config.yaml");
        std::fs::write(
            &cfg,
            "node-name: pi1\nhttps-listen-port: 7443\ntls-san:\n  - a.example\n  - 10.0.0.9\n\
             disable-agent: true\ndisable-scheduler: false\ndisable: [servicelb]\n",
        )
        .unwrap();
        let cfg_arg = cfg.to_str().unwrap();
        let out = expand(os(&[
            "k1s",
            "server",
            "--config",
            cfg_arg,
            "--node-name",
            "from-cli",
            "--disable",
            "coredns",
        ]))
        .unwrap();
        assert!(out.warnings.is_empty(), "{:?}", out.warnings);
        let s = parse(out.args);
        assert_eq!(s.node.node_name.as_deref(), Some("from-cli"));
        assert_eq!(s.https_listen_port, 7443);
        assert_eq!(s.tls_san, vec!["a.example", "10.0.0.9"]);
        assert!(s.disable_agent);
        assert!(!s.disable_scheduler);
        // A repeatable flag on the command line replaces the file's whole list.
        assert_eq!(s.disable, vec!["coredns"]);
    }

    #[test]
    fn drop_ins_replace_or_append_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("config.yaml");
        std::fs::write(&cfg, "tls-san: [a]\nnode-name: first\n").unwrap();
        std::fs::create_dir(dir.path().join("config.yaml.d")).unwrap();
        std::fs::write(
            dir.path().join("config.yaml.d/20-b.yaml"),
            "tls-san+: [c]\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("config.yaml.d/10-a.yaml"),
            "tls-san+: b\nnode-name: second\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("config.yaml.d/ignored.txt"),
            "node-name: x\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("config.yaml.d/30-comments.yaml"),
            "# node-name: y\n",
        )
        .unwrap();
        let out = expand(os(&["k1s", "server", "-c", cfg.to_str().unwrap()])).unwrap();
        let s = parse(out.args);
        assert_eq!(s.tls_san, vec!["a", "b", "c"]);
        assert_eq!(s.node.node_name.as_deref(), Some("second"));
    }

    #[test]
    fn unknown_keys_are_skipped_with_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("config.yaml");
        std::fs::write(&cfg, "no-such-flag: 1\nnode-name: pi2\n").unwrap();
        let out = expand(os(&["k1s", "server", "--config", cfg.to_str().unwrap()])).unwrap();
        assert_eq!(out.warnings.len(), 1);
        assert!(out.warnings[0].contains("unknown flag --no-such-flag"));
        assert_eq!(parse(out.args).node.node_name.as_deref(), Some("pi2"));
    }

    #[test]
    fn a_missing_default_file_is_fine_and_a_named_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.yaml");
        assert!(load(&missing, false).unwrap().is_none());
        let err = expand(os(&[
            "k1s",
            "server",
            "--config",
            missing.to_str().unwrap(),
        ]))
        .unwrap_err()
        .to_string();
        assert!(err.contains("cannot read config file"), "{err}");
    }

    #[test]
    fn bad_values_are_reported_with_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("config.yaml");
        std::fs::write(&cfg, "disable-agent: maybe\n").unwrap();
        let err = expand(os(&["k1s", "server", "--config", cfg.to_str().unwrap()]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("disable-agent: expected true or false"),
            "{err}"
        );
        std::fs::write(&cfg, "- just\n- a list\n").unwrap();
        let err = expand(os(&["k1s", "server", "--config", cfg.to_str().unwrap()]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected a mapping"), "{err}");
    }

    #[test]
    fn killall_takes_the_server_keys_it_knows_and_ignores_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("config.yaml");
        std::fs::write(&cfg, "bridge-name: pibr0\nnode-name: pi1\n").unwrap();
        let out = expand(os(&["k1s", "killall", "--config", cfg.to_str().unwrap()])).unwrap();
        assert!(out.warnings.is_empty(), "{:?}", out.warnings);
        match crate::cli::Cli::try_parse_from(out.args).unwrap().command {
            crate::cli::Command::Killall(k) => assert_eq!(k.bridge_name, "pibr0"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn other_subcommands_are_left_alone() {
        let args = os(&["k1s", "kubectl", "get", "pods"]);
        assert_eq!(expand(args.clone()).unwrap().args, args);
    }
}
