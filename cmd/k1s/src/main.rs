//! k1s: a Kubernetes distribution in one binary. Parses the command line, sets up
//! logging and runs the chosen subcommand.

mod cli;
mod run;

use clap::Parser;

/// mimalloc: the server allocates and frees JSON trees for every request and watch
/// event; glibc's malloc spent about a quarter of the CPU on them under load and kept
/// freed memory in per-thread arenas.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc commits its arenas eagerly on Linux by default and never purges eagerly
/// committed memory, which kept about 14 MiB more resident in an idle empty server (anonymous
/// memory 36 against 22 MiB; with glibc's malloc or jemalloc the whole RSS was 62 and 66 MiB
/// against mimalloc's 80). `MIMALLOC_ARENA_EAGER_COMMIT` in the environment
/// still decides when set. This runs from `.init_array`, before the Rust runtime's first
/// allocation reserves mimalloc's first arena: set from `main`, the option came too late
/// for that arena and changed nothing measurable.
#[cfg(feature = "mimalloc")]
#[allow(unsafe_code)]
fn tune_allocator() {
    /// `mi_option_arena_eager_commit` in mimalloc's `mi_option_e` (the same in its v2 and
    /// v3; libmimalloc-sys does not name it).
    const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
    if std::env::var_os("MIMALLOC_ARENA_EAGER_COMMIT").is_none() {
        // SAFETY: sets one of mimalloc's option values, which it keeps in a static table
        // and reads atomically; nothing else is touched.
        unsafe { libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0) }
    }
}

/// The transparent-huge-page flag (`PR_GET_THP_DISABLE`) this process started with, where
/// the start-up constructor turned THP off for `k1s agent`: 1 enabled, 2 disabled, 0 not
/// changed there.
static STARTED_THP: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// The THP flag the process started with, when the start-up constructor changed it.
pub(crate) fn started_thp_disabled() -> Option<bool> {
    match STARTED_THP.load(std::sync::atomic::Ordering::Relaxed) {
        1 => Some(false),
        2 => Some(true),
        _ => None,
    }
}

/// Whether the command line (the C runtime's `argc`/`argv`) runs `k1s agent`: its first
/// argument that is not a flag (`--debug`, the one flag allowed before a subcommand, takes
/// no value).
#[cfg(target_env = "gnu")]
#[allow(unsafe_code)]
fn runs_agent(argc: std::ffi::c_int, argv: *const *const std::ffi::c_char) -> bool {
    if argv.is_null() {
        return false;
    }
    for i in 1..usize::try_from(argc).unwrap_or(0) {
        // SAFETY: the C runtime passes argc valid pointers to NUL-terminated strings.
        let arg = unsafe { std::ffi::CStr::from_ptr(*argv.add(i)) }.to_bytes();
        if !arg.starts_with(b"-") {
            return arg == b"agent";
        }
    }
    false
}

/// What the agent's heap settings ([`run::agent`]) need before the first allocation:
/// mimalloc's first pages are touched while transparent huge pages are still on and stay
/// 2 MiB pages, resident whole (about 4 MiB of the agent's heap when set from `main`).
#[cfg(target_env = "gnu")]
fn agent_heap_from_the_start() {
    if let Ok(disabled) = nix::sys::prctl::get_thp_disable()
        && nix::sys::prctl::set_thp_disable(true).is_ok()
    {
        STARTED_THP.store(
            if disabled { 2 } else { 1 },
            std::sync::atomic::Ordering::Relaxed,
        );
    }
    run::agent::tune_allocator_for_agent();
}

/// Runs before `main` and before the Rust runtime's first allocation (ELF `.init_array`,
/// every target k1s builds for; glibc passes it `argc`, `argv` and `envp`).
#[allow(unsafe_code)]
extern "C" fn start_up(
    _argc: std::ffi::c_int,
    _argv: *const *const std::ffi::c_char,
    _envp: *const *const std::ffi::c_char,
) {
    #[cfg(feature = "mimalloc")]
    tune_allocator();
    #[cfg(target_env = "gnu")]
    if runs_agent(_argc, _argv) {
        agent_heap_from_the_start();
    }
}

/// Runs [`start_up`] as a constructor.
#[allow(unsafe_code)]
#[used]
#[unsafe(link_section = ".init_array")]
static START_UP: extern "C" fn(
    std::ffi::c_int,
    *const *const std::ffi::c_char,
    *const *const std::ffi::c_char,
) = start_up;

fn main() -> std::process::ExitCode {
    // The config file's flags go in before clap parses, so `--help` and errors see them too.
    let expanded = match cli::config_file::expand(std::env::args_os().collect()) {
        Ok(expanded) => expanded,
        Err(e) => {
            eprintln!("k1s: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let cli = cli::Cli::parse_from(expanded.args);
    if let Err(e) = init_logging(&cli) {
        eprintln!("k1s: {e:#}");
        return std::process::ExitCode::FAILURE;
    }
    for warning in expanded.warnings {
        tracing::warn!("{warning}");
    }
    let result = match cli.command {
        cli::Command::Server(args) => run::server::run(*args),
        cli::Command::Agent(args) => run::agent::run(*args),
        cli::Command::Kubectl(args) => run::kubectl::run(args),
        cli::Command::Datastore(args) => run::datastore::run(args),
        cli::Command::EtcdSnapshot(args) => run::etcd_snapshot::run_snapshot(args),
        cli::Command::Etcd(args) => run::etcd_snapshot::run_etcd(args),
        cli::Command::Image(args) => run::image::run(args),
        cli::Command::Killall(args) => run::killall::run(args),
        cli::Command::Simulate(args) => run::simulate::run(args),
        cli::Command::CheckConfig(args) => run::check_config::run(args),
        cli::Command::SecretsEncrypt(args) => run::secrets_encrypt::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("k1s: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Logs to stderr, or to `--log FILE` (and stderr with `--alsologtostderr`). Colour only on
/// a terminal: a log file or a journal full of escape codes is hard to read and to grep.
fn init_logging(cli: &cli::Cli) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    use tracing_subscriber::prelude::*;

    let filter = tracing_subscriber::EnvFilter::try_from_env("K1S_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(if cli.debug { "debug" } else { "info" })
    });
    let (file, also_stderr) = match &cli.command {
        cli::Command::Server(args) => (args.process.log.clone(), args.process.alsologtostderr),
        cli::Command::Agent(args) => (args.process.log.clone(), args.process.alsologtostderr),
        _ => (None, false),
    };
    // NO_COLOR (https://no-color.org): any non-empty value turns colour off.
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    // A macro, not a closure: each use is a layer over a different subscriber type.
    macro_rules! stderr_layer {
        () => {
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(colour)
        };
    }
    let registry = tracing_subscriber::registry().with(filter);
    match file {
        None => registry.with(stderr_layer!()).init(),
        Some(path) => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|e| {
                    anyhow::anyhow!("cannot create the folder of --log {}: {e}", path.display())
                })?;
            }
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| anyhow::anyhow!("cannot open --log {}: {e}", path.display()))?;
            let file_layer = tracing_subscriber::fmt::layer()
                .with_writer(std::sync::Mutex::new(file))
                .with_ansi(false);
            registry
                .with(file_layer)
                .with(also_stderr.then(|| stderr_layer!()))
                .init();
        }
    }
    Ok(())
}

#[cfg(all(test, target_env = "gnu"))]
mod tests {
    use std::ffi::{CString, c_char, c_int};

    fn runs(args: &[&str]) -> bool {
        let owned: Vec<CString> = args
            .iter()
            .map(|a| CString::new(*a).expect("no NUL"))
            .collect();
        let argv: Vec<*const c_char> = owned.iter().map(|c| c.as_ptr()).collect();
        super::runs_agent(c_int::try_from(argv.len()).expect("few"), argv.as_ptr())
    }

    #[test]
    fn the_agent_is_known_by_the_first_word_that_is_not_a_flag() {
        assert!(runs(&["k1s", "agent", "--server", "https://x:6443"]));
        assert!(runs(&["/usr/local/bin/k1s", "--debug", "agent"]));
        assert!(!runs(&["k1s", "server", "--node-name", "agent"]));
        assert!(!runs(&["k1s"]));
        assert!(!runs(&["k1s", "--help"]));
        assert!(!super::runs_agent(2, std::ptr::null()));
    }
}
