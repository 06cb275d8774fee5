//! `k1s check-config`: a pre-flight for a node's host. Each check reads files under a host
//! root (so tests feed it a fake /proc and /sys) and returns findings: what it saw, and for
//! what is missing the fix, worded for a Raspberry Pi user first.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::cli::check_config::CheckConfigArgs;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Present and usable.
    Ok,
    /// k1s runs, but something works worse or not at all.
    Warn,
    /// k1s (or its agent) cannot run.
    Fail,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // pad, not write_str: the report right-aligns the level in a fixed width.
        f.pad(match self {
            Level::Ok => "ok",
            Level::Warn => "warn",
            Level::Fail => "FAIL",
        })
    }
}

/// One line of the report.
#[derive(Debug, Clone)]
pub struct Finding {
    /// How bad.
    pub level: Level,
    /// What was checked, and what was seen.
    pub message: String,
    /// How to fix it, when it needs fixing.
    pub fix: Option<String>,
}

impl Finding {
    fn ok(message: impl Into<String>) -> Self {
        Finding {
            level: Level::Ok,
            message: message.into(),
            fix: None,
        }
    }
    fn bad(level: Level, message: impl Into<String>, fix: impl Into<String>) -> Self {
        Finding {
            level,
            message: message.into(),
            fix: Some(fix.into()),
        }
    }
}

/// The host being checked: a root folder and where programs are looked for.
#[derive(Debug, Clone)]
pub struct Host {
    root: PathBuf,
    path_dirs: Vec<PathBuf>,
}

/// Folders searched for programs besides $PATH: a user's PATH often lacks the sbins, where
/// modprobe and nft live, while k1s runs as root with them.
const SYSTEM_DIRS: &[&str] = &[
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

impl Host {
    /// The host mounted at `root`; for `/`, programs are also looked for on $PATH.
    pub fn new(root: &Path) -> Self {
        let mut path_dirs: Vec<PathBuf> = Vec::new();
        if root == Path::new("/")
            && let Some(path) = std::env::var_os("PATH")
        {
            path_dirs.extend(std::env::split_paths(&path));
        }
        for dir in SYSTEM_DIRS {
            let dir = root.join(dir.trim_start_matches('/'));
            if !path_dirs.contains(&dir) {
                path_dirs.push(dir);
            }
        }
        Host {
            root: root.to_path_buf(),
            path_dirs,
        }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.root.join(p.trim_start_matches('/'))
    }

    fn read(&self, p: &str) -> Option<String> {
        std::fs::read_to_string(self.path(p)).ok()
    }

    fn exists(&self, p: &str) -> bool {
        self.path(p).exists()
    }

    fn find_program(&self, name: &str) -> Option<PathBuf> {
        use std::os::unix::fs::PermissionsExt;
        self.path_dirs.iter().map(|d| d.join(name)).find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    }
}

/// The kernel command-line words that turn the memory cgroup on, on Raspberry Pi kernels
/// (which turn it off by default) as on others.
const MEMORY_CGROUP_WORDS: &str = "cgroup_memory=1 cgroup_enable=memory";

/// Runs every check and prints the report; exit status 1 when something k1s needs is
/// missing.
pub fn run(args: CheckConfigArgs) -> anyhow::Result<ExitCode> {
    let host = Host::new(&args.host_root);
    let sections: [(&str, Vec<Finding>); 5] = [
        ("cgroups", check_cgroups(&host)),
        ("kernel modules", check_modules(&host)),
        ("programs", check_programs(&host)),
        ("swap", check_swap(&host)),
        ("ports", check_ports(&args.ports)),
    ];
    let mut worst = Level::Ok;
    let (mut warnings, mut failures) = (0, 0);
    for (title, findings) in &sections {
        println!("{title}:");
        for f in findings {
            println!("  [{:>4}] {}", f.level, f.message);
            if let Some(fix) = &f.fix {
                println!("         fix: {fix}");
            }
            worst = worst.max(f.level);
            match f.level {
                Level::Warn => warnings += 1,
                Level::Fail => failures += 1,
                Level::Ok => {}
            }
        }
    }
    println!();
    match worst {
        Level::Ok => println!("k1s can run on this host."),
        Level::Warn => println!("k1s can run on this host ({warnings} warning(s) above)."),
        Level::Fail => println!(
            "k1s cannot run on this host yet: {failures} problem(s) and {warnings} warning(s) above."
        ),
    }
    Ok(if worst == Level::Fail {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// cgroups: the memory controller (off by default on Raspberry Pi OS), cpu and pids.
pub fn check_cgroups(host: &Host) -> Vec<Finding> {
    // /proc/cgroups: "#subsys_name hierarchy num_cgroups enabled", one line per controller
    // the kernel has; `enabled` is 0 when the command line turned it off (on cgroup v2 too).
    let v1: BTreeMap<String, bool> = host
        .read("/proc/cgroups")
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 4).then(|| (f[0].to_string(), f[3] == "1"))
        })
        .collect();
    let v2: Option<BTreeSet<String>> = host
        .read("/sys/fs/cgroup/cgroup.controllers")
        .map(|s| s.split_whitespace().map(str::to_string).collect());
    if v1.is_empty() && v2.is_none() {
        return vec![Finding::bad(
            Level::Fail,
            "no cgroups: neither /proc/cgroups nor /sys/fs/cgroup/cgroup.controllers is readable",
            "mount the cgroup file system (`mount -t cgroup2 none /sys/fs/cgroup`); systemd \
             does this at boot",
        )];
    }
    let mut out = Vec::new();
    let version = if v2.is_some() { "v2" } else { "v1" };
    out.push(Finding::ok(format!("cgroup {version}")));
    let enabled = |name: &str| -> bool {
        let by_v1 = v1.get(name).copied();
        match &v2 {
            // A controller the command line disabled is 0 in /proc/cgroups and absent
            // from cgroup.controllers; either is enough to know.
            Some(set) => set.contains(name) && by_v1 != Some(false),
            None => by_v1 == Some(true),
        }
    };
    if enabled("memory") {
        out.push(Finding::ok("memory cgroup enabled"));
    } else {
        let seen = match (v1.get("memory"), &v2) {
            (Some(false), _) => "disabled (/proc/cgroups: memory enabled 0)".to_string(),
            (_, Some(_)) => "disabled (no `memory` in /sys/fs/cgroup/cgroup.controllers)".into(),
            _ => "missing (no `memory` line in /proc/cgroups)".into(),
        };
        out.push(Finding::bad(
            Level::Fail,
            format!("memory cgroup {seen}: pods' memory limits and the kubelet need it"),
            memory_fix(host),
        ));
    }
    for (name, why) in [
        ("cpu", "pods' CPU requests and limits"),
        ("pids", "pods' process limits"),
    ] {
        if enabled(name) {
            out.push(Finding::ok(format!("{name} cgroup enabled")));
        } else {
            out.push(Finding::bad(
                Level::Fail,
                format!("{name} cgroup missing or disabled: {why} need it"),
                format!(
                    "use a kernel with CONFIG_CGROUP_{} and remove any `cgroup_disable={name}` \
                     from the kernel command line",
                    if name == "cpu" { "SCHED" } else { "PIDS" }
                ),
            ));
        }
    }
    out
}

/// The fix for a disabled memory cgroup, naming the cmdline.txt this host has.
fn memory_fix(host: &Host) -> String {
    let disabled_now = host
        .read("/proc/cmdline")
        .is_some_and(|c| c.split_whitespace().any(|w| w == "cgroup_disable=memory"));
    let note = if disabled_now {
        " (the running kernel's command line has `cgroup_disable=memory`; a later \
         `cgroup_enable=memory` overrides it)"
    } else {
        ""
    };
    for file in ["/boot/firmware/cmdline.txt", "/boot/cmdline.txt"] {
        if let Some(text) = host.read(file) {
            if text.split_whitespace().any(|w| w == "cgroup_enable=memory") {
                return format!(
                    "{file} already has `cgroup_enable=memory`: reboot for it to take effect{note}"
                );
            }
            return format!(
                "add `{MEMORY_CGROUP_WORDS}` to the end of the single line in {file} (same \
                 line, separated by a space), then reboot{note}"
            );
        }
    }
    format!(
        "add `{MEMORY_CGROUP_WORDS}` to the kernel command line, then reboot: on Raspberry \
         Pi OS to the single line in /boot/firmware/cmdline.txt (/boot/cmdline.txt before \
         bookworm); with GRUB to GRUB_CMDLINE_LINUX in /etc/default/grub, then \
         `update-grub`{note}"
    )
}

/// Kernel modules k1s uses, with the kernel option behind each, whether k1s cannot do
/// without it, and what it is for.
const MODULES: &[(&str, &str, Level, &str)] = &[
    (
        "overlay",
        "CONFIG_OVERLAY_FS",
        Level::Fail,
        "containers' root file systems",
    ),
    ("bridge", "CONFIG_BRIDGE", Level::Fail, "the pod bridge"),
    ("veth", "CONFIG_VETH", Level::Fail, "pods' network links"),
    (
        "br_netfilter",
        "CONFIG_BRIDGE_NETFILTER",
        Level::Fail,
        "Services and NetworkPolicies between pods on one bridge",
    ),
    (
        "nf_tables",
        "CONFIG_NF_TABLES",
        Level::Fail,
        "the Service proxy and pod NAT (nftables)",
    ),
    (
        "nf_conntrack",
        "CONFIG_NF_CONNTRACK",
        Level::Fail,
        "NAT and Services",
    ),
    (
        "vxlan",
        "CONFIG_VXLAN",
        Level::Warn,
        "a pod network across nodes",
    ),
];

/// Kernel modules: loaded, built in, or loadable from /lib/modules/<release>.
pub fn check_modules(host: &Host) -> Vec<Finding> {
    let norm = |s: &str| s.replace('-', "_");
    let loaded: BTreeSet<String> = host
        .read("/proc/modules")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(norm))
        .collect();
    let filesystems = host.read("/proc/filesystems").unwrap_or_default();
    let release = host
        .read("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let module_dir = format!("/lib/modules/{release}");
    // "kernel/net/bridge/br_netfilter.ko[.xz|.zst|.gz]" → "br_netfilter".
    let names_in = |file: &str| -> BTreeSet<String> {
        host.read(&format!("{module_dir}/{file}"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let path = l.split(':').next()?;
                let base = path.rsplit('/').next()?;
                let stem = base.split(".ko").next()?;
                Some(norm(stem))
            })
            .collect()
    };
    let kconfig = kernel_config(host, &release);
    let builtin = names_in("modules.builtin");
    let loadable = names_in("modules.dep");
    let have_tree = !release.is_empty() && host.exists(&module_dir);
    let mut out = Vec::new();
    for (name, config, level, why) in MODULES {
        // br_netfilter makes /proc/sys/net/bridge, built in or loaded.
        let in_sys = host.exists(&format!("/sys/module/{name}"))
            || (*name == "br_netfilter" && host.exists("/proc/sys/net/bridge"));
        let configured = kconfig.as_ref().map(|c| c.get(*config).map(String::as_str));
        let is_fs = *name == "overlay"
            && filesystems
                .lines()
                .any(|l| l.split_whitespace().last() == Some("overlay"));
        if loaded.contains(*name) || in_sys || is_fs {
            out.push(Finding::ok(format!("{name}: loaded")));
        } else if builtin.contains(*name) {
            out.push(Finding::ok(format!("{name}: built into the kernel")));
        } else if loadable.contains(*name) {
            out.push(Finding::ok(format!(
                "{name}: loadable (the kernel loads it when k1s first uses it)"
            )));
        } else if configured == Some(Some("y")) {
            out.push(Finding::ok(format!(
                "{name}: built into the kernel ({config}=y)"
            )));
        } else if matches!(configured, Some(None | Some("n"))) {
            out.push(Finding::bad(
                *level,
                format!("{name}: this kernel ({release}) has no {name} ({config} is not set), needed for {why}"),
                format!(
                    "boot a kernel built with {config} (Raspberry Pi OS's and Debian's are)"
                ),
            ));
        } else if !have_tree {
            out.push(Finding::bad(
                Level::Warn,
                format!(
                    "{name}: not loaded, and {module_dir} is missing, so whether the kernel has \
                     it cannot be told (needed for {why})"
                ),
                format!(
                    "install the modules of the running kernel (Debian: linux-image-{release}; \
                     Raspberry Pi OS: the linux-image-rpi-* package of your Pi), or \
                     `modprobe {name}` to try"
                ),
            ));
        } else {
            out.push(Finding::bad(
                *level,
                format!(
                    "{name}: this kernel ({release}) has no {name} ({config}), needed for {why}"
                ),
                format!("boot a kernel built with {config} (Raspberry Pi OS's and Debian's are)"),
            ));
        }
    }
    out
}

/// The running kernel's build options, from /proc/config.gz (Raspberry Pi OS: after
/// `modprobe configs`) or /boot/config-<release>; `None` when neither is there.
fn kernel_config(host: &Host, release: &str) -> Option<BTreeMap<String, String>> {
    use std::io::Read;
    let text = match std::fs::read(host.path("/proc/config.gz")) {
        Ok(gz) => {
            let mut text = String::new();
            flate2::read::GzDecoder::new(gz.as_slice())
                .read_to_string(&mut text)
                .ok()?;
            text
        }
        Err(_) => host.read(&format!("/boot/config-{release}"))?,
    };
    Some(
        text.lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

/// Programs k1s runs: what is missing, and the Debian package that brings it.
const PROGRAMS: &[(&str, &str, Level, &str)] = &[
    (
        "containerd",
        "containerd",
        Level::Fail,
        "the agent runs pods with it (not needed with --disable-agent)",
    ),
    (
        "containerd-shim-runc-v2",
        "containerd",
        Level::Fail,
        "containerd's shim for runc (not needed with --disable-agent)",
    ),
    (
        "runc",
        "runc",
        Level::Fail,
        "the container runtime (not needed with --disable-agent)",
    ),
    (
        "nft",
        "nftables",
        Level::Fail,
        "the Service proxy and pod NAT write nftables rules with it",
    ),
    (
        "conntrack",
        "conntrack",
        Level::Warn,
        "the Service proxy clears stale UDP flows with it",
    ),
    (
        "modprobe",
        "kmod",
        Level::Warn,
        "NetworkPolicies load br_netfilter with it",
    ),
    (
        "ip",
        "iproute2",
        Level::Warn,
        "kubectl port-forward uses it",
    ),
];

/// Programs on $PATH and in the system folders.
pub fn check_programs(host: &Host) -> Vec<Finding> {
    PROGRAMS
        .iter()
        .map(
            |(name, package, level, why)| match host.find_program(name) {
                Some(path) => Finding::ok(format!("{name}: {}", path.display())),
                None => Finding::bad(
                    *level,
                    format!("{name}: not found: {why}"),
                    format!("sudo apt install {package}"),
                ),
            },
        )
        .collect()
}

/// Swap: the kubelet expects it off (memory limits and eviction assume no swap).
pub fn check_swap(host: &Host) -> Vec<Finding> {
    let Some(swaps) = host.read("/proc/swaps") else {
        return vec![Finding::bad(
            Level::Warn,
            "cannot read /proc/swaps",
            "check with `swapon --show` that swap is off",
        )];
    };
    let devices: Vec<&str> = swaps
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    if devices.is_empty() {
        return vec![Finding::ok("swap is off")];
    }
    vec![Finding::bad(
        Level::Warn,
        format!(
            "swap is on ({}): pods' memory limits and the kubelet's eviction assume no swap",
            devices.join(", ")
        ),
        "`sudo swapoff -a`, and keep it off at boot: on Raspberry Pi OS `sudo systemctl \
         disable --now dphys-swapfile` (bookworm 2024+: `sudo systemctl mask \
         dev-zram0.swap`), elsewhere remove the swap lines from /etc/fstab",
    )]
}

/// TCP ports k1s listens on must be free.
pub fn check_ports(ports: &[u16]) -> Vec<Finding> {
    ports
        .iter()
        .map(|&port| match std::net::TcpListener::bind(("0.0.0.0", port)) {
            Ok(_) => Finding::ok(format!("port {port}/tcp is free")),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Finding::bad(
                Level::Fail,
                format!("port {port}/tcp is in use by another program"),
                format!(
                    "stop it (`sudo ss -ltnp 'sport = :{port}'` names it; another k1s or k3s?), \
                     or give k1s another port"
                ),
            ),
            Err(e) => Finding::bad(
                Level::Warn,
                format!("port {port}/tcp cannot be checked: {e}"),
                "run check-config as root, as k1s runs",
            ),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake host root with the given files.
    fn host(files: &[(&str, &str)]) -> (tempfile::TempDir, Host) {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let p = dir.path().join(path.trim_start_matches('/'));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        let h = Host::new(dir.path());
        (dir, h)
    }

    const PI_CGROUPS_MEMORY_OFF: &str = "#subsys_name\thierarchy\tnum_cgroups\tenabled\n\
        cpuset\t0\t98\t1\ncpu\t0\t98\t1\ncpuacct\t0\t98\t1\nblkio\t0\t98\t1\n\
        memory\t0\t98\t0\ndevices\t0\t98\t1\nfreezer\t0\t98\t1\npids\t0\t98\t1\n";

    #[test]
    fn a_pi_with_the_memory_cgroup_off_gets_the_cmdline_fix() {
        let (_d, h) = host(&[
            ("/proc/cgroups", PI_CGROUPS_MEMORY_OFF),
            ("/sys/fs/cgroup/cgroup.controllers", "cpuset cpu io pids\n"),
            (
                "/proc/cmdline",
                "coherent_pool=1M 8250.nr_uarts=1 cgroup_disable=memory console=tty1 root=PARTUUID=1-02\n",
            ),
            (
                "/boot/firmware/cmdline.txt",
                "console=serial0,115200 console=tty1 root=PARTUUID=1-02 rootfstype=ext4 fsck.repair=yes rootwait\n",
            ),
        ]);
        let findings = check_cgroups(&h);
        let memory = findings
            .iter()
            .find(|f| f.message.starts_with("memory cgroup"))
            .unwrap();
        assert_eq!(memory.level, Level::Fail);
        assert!(
            memory.message.contains("/proc/cgroups: memory enabled 0"),
            "{memory:?}"
        );
        let fix = memory.fix.as_deref().unwrap();
        assert!(
            fix.contains("add `cgroup_memory=1 cgroup_enable=memory` to the end of the single line in /boot/firmware/cmdline.txt"),
            "{fix}"
        );
        assert!(fix.contains("reboot"), "{fix}");
        assert!(fix.contains("cgroup_disable=memory"), "{fix}");
        // cpu and pids are there.
        assert!(
            findings
                .iter()
                .filter(|f| f.message.starts_with("cpu ") || f.message.starts_with("pids "))
                .all(|f| f.level == Level::Ok)
        );
    }

    #[test]
    fn older_pis_name_boot_cmdline_and_an_edited_file_asks_for_a_reboot() {
        let (_d, h) = host(&[
            ("/proc/cgroups", PI_CGROUPS_MEMORY_OFF),
            (
                "/boot/cmdline.txt",
                "console=tty1 root=/dev/mmcblk0p2 rootwait\n",
            ),
        ]);
        let fix = check_cgroups(&h)
            .into_iter()
            .find_map(|f| (f.level == Level::Fail).then_some(f.fix))
            .flatten()
            .unwrap();
        assert!(fix.contains("/boot/cmdline.txt"), "{fix}");
        let (_d, h) = host(&[
            ("/proc/cgroups", PI_CGROUPS_MEMORY_OFF),
            (
                "/boot/firmware/cmdline.txt",
                "console=tty1 rootwait cgroup_memory=1 cgroup_enable=memory\n",
            ),
        ]);
        let fix = check_cgroups(&h)
            .into_iter()
            .find_map(|f| (f.level == Level::Fail).then_some(f.fix))
            .flatten()
            .unwrap();
        assert!(
            fix.contains("already has `cgroup_enable=memory`: reboot"),
            "{fix}"
        );
    }

    #[test]
    fn cgroup_v2_without_memory_fails_and_with_it_passes() {
        let (_d, h) = host(&[("/sys/fs/cgroup/cgroup.controllers", "cpuset cpu io pids\n")]);
        let f = check_cgroups(&h);
        assert!(f.iter().any(|f| {
            f.level == Level::Fail
                && f.message
                    .contains("no `memory` in /sys/fs/cgroup/cgroup.controllers")
        }));
        let (_d, h) = host(&[(
            "/sys/fs/cgroup/cgroup.controllers",
            "cpuset cpu io memory hugetlb pids rdma misc\n",
        )]);
        assert!(check_cgroups(&h).iter().all(|f| f.level == Level::Ok));
        let (_d, h) = host(&[]);
        assert_eq!(check_cgroups(&h)[0].level, Level::Fail);
    }

    #[test]
    fn modules_are_found_loaded_builtin_or_loadable() {
        let (_d, h) = host(&[
            ("/proc/sys/kernel/osrelease", "6.6.51+rpt-rpi-v8\n"),
            (
                "/proc/modules",
                "overlay 163840 0 - Live 0x0\nbr_netfilter 32768 0 - Live 0x0\nbridge 294912 1 br_netfilter, Live 0x0\n",
            ),
            (
                "/lib/modules/6.6.51+rpt-rpi-v8/modules.builtin",
                "kernel/net/netfilter/nf_tables.ko\n",
            ),
            (
                "/lib/modules/6.6.51+rpt-rpi-v8/modules.dep",
                "kernel/drivers/net/veth.ko.xz:\nkernel/net/netfilter/nf_conntrack.ko.xz: kernel/net/ipv4/netfilter/nf_defrag_ipv4.ko.xz\n",
            ),
        ]);
        let f = check_modules(&h);
        let by_name = |n: &str| {
            f.iter()
                .find(|f| f.message.starts_with(&format!("{n}:")))
                .unwrap()
        };
        assert_eq!(by_name("overlay").level, Level::Ok);
        assert!(by_name("nf_tables").message.contains("built into"));
        assert!(by_name("veth").message.contains("loadable"));
        assert!(by_name("nf_conntrack").message.contains("loadable"));
        let vxlan = by_name("vxlan");
        assert_eq!(vxlan.level, Level::Warn);
        assert!(vxlan.fix.as_deref().unwrap().contains("CONFIG_VXLAN"));
    }

    #[test]
    fn the_kernel_config_tells_built_in_from_missing() {
        let (_d, h) = host(&[
            ("/proc/sys/kernel/osrelease", "6.1.0-rpi7-rpi-v7\n"),
            (
                "/boot/config-6.1.0-rpi7-rpi-v7",
                "CONFIG_VETH=y\nCONFIG_OVERLAY_FS=m\n# CONFIG_VXLAN is not set\n",
            ),
        ]);
        let f = check_modules(&h);
        let by_name = |n: &str| {
            f.iter()
                .find(|f| f.message.starts_with(&format!("{n}:")))
                .unwrap()
        };
        assert!(by_name("veth").message.contains("CONFIG_VETH=y"));
        assert_eq!(by_name("vxlan").level, Level::Warn);
        assert!(by_name("vxlan").message.contains("CONFIG_VXLAN is not set"));
        assert_eq!(by_name("bridge").level, Level::Fail);
        // A module the config names but /lib/modules lacks cannot be told.
        assert_eq!(by_name("overlay").level, Level::Warn);
    }

    #[test]
    fn missing_programs_name_their_package() {
        let (_d, h) = host(&[]);
        let f = check_programs(&h);
        let nft = f.iter().find(|f| f.message.starts_with("nft:")).unwrap();
        assert_eq!(nft.level, Level::Fail);
        assert_eq!(nft.fix.as_deref(), Some("sudo apt install nftables"));
        let (dir, _) = host(&[("/usr/sbin/nft", "#!/bin/sh\n")]);
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            dir.path().join("usr/sbin/nft"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        let f = check_programs(&Host::new(dir.path()));
        assert_eq!(
            f.iter()
                .find(|f| f.message.starts_with("nft:"))
                .unwrap()
                .level,
            Level::Ok
        );
    }

    #[test]
    fn swap_on_is_a_warning_with_the_pi_fix() {
        let (_d, h) = host(&[(
            "/proc/swaps",
            "Filename\tType\tSize\tUsed\tPriority\n/var/swap  file  102396  0  -2\n",
        )]);
        let f = check_swap(&h);
        assert_eq!(f[0].level, Level::Warn);
        assert!(f[0].message.contains("/var/swap"));
        assert!(f[0].fix.as_deref().unwrap().contains("dphys-swapfile"));
        let (_d, h) = host(&[("/proc/swaps", "Filename\tType\tSize\tUsed\tPriority\n")]);
        assert_eq!(check_swap(&h)[0].level, Level::Ok);
    }

    #[test]
    fn a_port_in_use_fails() {
        let held = std::net::TcpListener::bind(("0.0.0.0", 0)).unwrap();
        let port = held.local_addr().unwrap().port();
        let f = check_ports(&[port]);
        assert_eq!(f[0].level, Level::Fail, "{f:?}");
        drop(held);
        assert_eq!(check_ports(&[port])[0].level, Level::Ok);
    }
}
