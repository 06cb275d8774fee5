//! Hands the executable's start-up code back to the kernel once a process is up.
//!
//! `k1s` is one large binary (server, controllers, kubelet, proxy, DNS, ingress), and the
//! kernel maps file-backed code in runs around every page a process touches (fault-around,
//! 64 KiB by default, fed by read-ahead that is larger still for executable mappings). What
//! runs once at start-up — the PKI, the OpenAPI documents, the bootstrap objects, joining a
//! server, command-line parsing — stays mapped, and counted in the process's RSS, long after
//! it ran. Once the process is up, `MADV_PAGEOUT` over the executable's read-only mappings
//! drops those pages (clean file pages: nothing is written anywhere); the code that runs
//! afterwards is mapped again on its first use. Android's activity manager hands back the
//! file-backed pages of background apps the same way.
//!
//! `K1S_SHED_STARTUP_PAGES=0` in the environment keeps them (to measure with and without).

use std::io;
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

/// Environment variable that turns the hand-back off when set to `0`.
const ENV: &str = "K1S_SHED_STARTUP_PAGES";

/// How long after a server is ready, or an agent is running, the pages are handed back:
/// what start-up left running (first lists, registration, image import) has mostly run.
const SETTLE: Duration = Duration::from_secs(5);

/// One line of `/proc/self/maps`, the fields this module reads.
#[derive(Debug, PartialEq, Eq)]
struct Mapping {
    start: usize,
    end: usize,
    writable: bool,
    /// Device of the mapped file, (major, minor).
    dev: (u64, u64),
    inode: u64,
}

impl Mapping {
    /// Parses `start-end perms offset major:minor inode [path]`; None for other lines.
    fn parse(line: &str) -> Option<Mapping> {
        let mut fields = line.split_ascii_whitespace();
        let (start, end) = fields.next()?.split_once('-')?;
        let perms = fields.next()?;
        let _offset = fields.next()?;
        let (major, minor) = fields.next()?.split_once(':')?;
        let inode = fields.next()?.parse().ok()?;
        Some(Mapping {
            start: usize::from_str_radix(start, 16).ok()?,
            end: usize::from_str_radix(end, 16).ok()?,
            writable: perms.as_bytes().get(1) == Some(&b'w'),
            dev: (
                u64::from_str_radix(major, 16).ok()?,
                u64::from_str_radix(minor, 16).ok()?,
            ),
            inode,
        })
    }
}

/// The read-only mappings of the file `(dev, inode)` in a `/proc/PID/maps` text.
fn read_only_mappings_of(maps: &str, dev: (u64, u64), inode: u64) -> Vec<Mapping> {
    maps.lines()
        .filter_map(Mapping::parse)
        .filter(|m| m.inode == inode && m.dev == dev && !m.writable && m.end > m.start)
        .collect()
}

/// Asks the kernel to reclaim this process's pages of its own executable (code and
/// read-only data); returns the bytes of the mappings it covered.
#[allow(unsafe_code)]
fn shed() -> io::Result<usize> {
    let exe = std::fs::metadata("/proc/self/exe")?;
    let dev = (
        u64::from(libc::major(exe.dev())),
        u64::from(libc::minor(exe.dev())),
    );
    let maps = std::fs::read_to_string("/proc/self/maps")?;
    let mut covered = 0;
    for m in read_only_mappings_of(&maps, dev, exe.ino()) {
        // SAFETY: the range is one of this process's own file mappings, read from
        // /proc/self/maps; MADV_PAGEOUT only reclaims pages (clean file pages here, which
        // are read back from the file on their next use) and changes no contents.
        let rc = unsafe {
            libc::madvise(
                m.start as *mut libc::c_void,
                m.end - m.start,
                libc::MADV_PAGEOUT,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        covered += m.end - m.start;
    }
    Ok(covered)
}

/// Hands the start-up pages back [`SETTLE`] from now, on the current Tokio runtime.
pub(crate) fn shed_soon() {
    if std::env::var(ENV).is_ok_and(|v| v == "0") {
        return;
    }
    tokio::spawn(async move {
        tokio::time::sleep(SETTLE).await;
        match tokio::task::spawn_blocking(shed).await {
            Ok(Ok(bytes)) => {
                tracing::debug!(mapped_mib = bytes >> 20, "handed start-up code pages back")
            }
            // Kernels before 5.4 have no MADV_PAGEOUT (EINVAL): nothing is lost.
            Ok(Err(e)) => tracing::debug!(error = %e, "cannot hand start-up code pages back"),
            Err(_) => {}
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPS: &str = "\
55e0c71d0000-55e0c7fe5000 r--p 00000000 fe:00 10011268                   /usr/local/bin/k1s
55e0c7fe5000-55e0cba5f000 r-xp 00e14000 fe:00 10011268                   /usr/local/bin/k1s
55e0cba5f000-55e0cbbde000 r--p 0488d000 fe:00 10011268                   /usr/local/bin/k1s
55e0cbbde000-55e0cbbed000 rw-p 04a0b000 fe:00 10011268                   /usr/local/bin/k1s
55e0cbbed000-55e0cbc00000 rw-p 00000000 00:00 0
7f45efaa8000-7f45efaac000 r--p 001d4000 fe:00 2345                       /usr/lib/x86_64-linux-gnu/libc.so.6
7f45efaac000-7f45efaad000 r-xp 00000000 fe:01 10011268                   /other/device
7ffe8bf4c000-7ffe8bf6f000 rw-p 00000000 00:00 0                          [stack]
";

    #[test]
    fn picks_the_read_only_mappings_of_the_executable_only() {
        let found = read_only_mappings_of(MAPS, (0xfe, 0), 10011268);
        let ranges: Vec<_> = found.iter().map(|m| (m.start, m.end)).collect();
        assert_eq!(
            ranges,
            vec![
                (0x55e0c71d0000, 0x55e0c7fe5000),
                (0x55e0c7fe5000, 0x55e0cba5f000),
                (0x55e0cba5f000, 0x55e0cbbde000),
            ]
        );
    }

    #[test]
    fn a_deleted_executable_is_still_found_by_its_inode() {
        let maps = "00400000-00500000 r-xp 00000000 08:02 77 /usr/local/bin/k1s (deleted)\n";
        assert_eq!(read_only_mappings_of(maps, (8, 2), 77).len(), 1);
    }

    #[test]
    fn malformed_lines_are_skipped() {
        assert_eq!(Mapping::parse("garbage"), None);
        assert_eq!(Mapping::parse("1000-2000 r-xp 0 fe:00 x /bin"), None);
        assert_eq!(read_only_mappings_of("", (0, 0), 0), vec![]);
    }

    #[test]
    fn sheds_the_test_binarys_own_code_and_it_still_runs() {
        match shed() {
            // The test binary's code and read-only data, megabytes of it.
            Ok(covered) => assert!(covered > 1 << 20, "covered only {covered} bytes"),
            // Kernels before 5.4 have no MADV_PAGEOUT.
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EINVAL)),
        }
        // The code runs on after its pages went: they are read back from the file.
        assert_eq!(read_only_mappings_of(MAPS, (0xfe, 0), 10011268).len(), 3);
    }
}
