//! Host-local address management, as the CNI `host-local` plugin keeps it: one file per
//! allocated address under the state directory (named by the address, holding the owner's
//! pod UID), created exclusively so two allocations can never take the same address, and a
//! `last_reserved_ip.0` file so allocation goes round the range rather than reusing a
//! just-freed address at once (a stale connection to a deleted pod then reaches nobody).

use std::fs;
use std::io::{ErrorKind, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;
use parking_lot::Mutex;

use crate::NetError;

/// The file remembering the last address handed out (host-local's name).
const LAST_RESERVED: &str = "last_reserved_ip.0";

/// Addresses of one range, kept as files in one directory.
#[derive(Debug)]
pub(crate) struct Ipam {
    dir: PathBuf,
    range: Ipv4Net,
    gateway: Ipv4Addr,
    // Serializes this process's allocations: the exclusive create makes each one safe on
    // its own, the lock keeps "already has one?" and "take one" together.
    lock: Mutex<()>,
}

impl Ipam {
    /// Opens (creating it) the directory of `range`'s allocations; `gateway` is never
    /// handed out.
    pub(crate) fn open(dir: &Path, range: Ipv4Net, gateway: Ipv4Addr) -> Result<Self, NetError> {
        fs::create_dir_all(dir).map_err(|e| io_err("create", dir, e))?;
        let ipam = Self {
            dir: dir.to_owned(),
            range,
            gateway,
            lock: Mutex::new(()),
        };
        // Addresses of a former range (the node got another podCIDR) can never be used.
        for (ip, owner) in ipam.list()? {
            if !range.contains(&ip) || ip == gateway {
                tracing::info!(%ip, pod_uid = %owner, %range, "dropping an allocation outside the pod CIDR");
                let path = dir.join(ip.to_string());
                fs::remove_file(&path).map_err(|e| io_err("remove", &path, e))?;
            }
        }
        Ok(ipam)
    }

    /// The first and last address a pod may get: the network and broadcast addresses and
    /// the gateway are never handed out.
    fn bounds(&self) -> (u32, u32) {
        let first = u32::from(self.range.network()).saturating_add(1);
        let last = u32::from(self.range.broadcast()).saturating_sub(1);
        (first, last)
    }

    /// Every allocation: address and owner.
    pub(crate) fn list(&self) -> Result<Vec<(Ipv4Addr, String)>, NetError> {
        let entries = fs::read_dir(&self.dir).map_err(|e| io_err("read", &self.dir, e))?;
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(ip) = name.to_str().and_then(|n| n.parse::<Ipv4Addr>().ok()) else {
                continue;
            };
            match fs::read_to_string(entry.path()) {
                Ok(owner) => out.push((ip, owner.lines().next().unwrap_or("").to_owned())),
                // Freed between listing and reading.
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("read", &entry.path(), e)),
            }
        }
        out.sort();
        Ok(out)
    }

    /// The address `owner` holds, if any.
    pub(crate) fn get(&self, owner: &str) -> Result<Option<Ipv4Addr>, NetError> {
        Ok(self
            .list()?
            .into_iter()
            .find(|(_, o)| o == owner)
            .map(|(ip, _)| ip))
    }

    /// The address `owner` holds, or the next free one after the last handed out.
    pub(crate) fn allocate(&self, owner: &str) -> Result<Ipv4Addr, NetError> {
        let _guard = self.lock.lock();
        if let Some(ip) = self.get(owner)? {
            return Ok(ip);
        }
        let (first, last) = self.bounds();
        if first > last {
            return Err(NetError::RangeFull(self.range.to_string()));
        }
        let range_set = format!("{}-{}", Ipv4Addr::from(first), Ipv4Addr::from(last));
        let last_reserved = fs::read_to_string(self.dir.join(LAST_RESERVED))
            .ok()
            .and_then(|s| s.trim().parse::<Ipv4Addr>().ok())
            .map(u32::from)
            .filter(|ip| (first..=last).contains(ip));
        let start = match last_reserved {
            Some(ip) if ip < last => ip + 1,
            _ => first,
        };
        let size = last - first + 1;
        for step in 0..size {
            let candidate = first + (start - first + step) % size;
            let ip = Ipv4Addr::from(candidate);
            if ip == self.gateway {
                continue;
            }
            let path = self.dir.join(ip.to_string());
            match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut file) => {
                    let written = file
                        .write_all(owner.as_bytes())
                        .and_then(|()| file.sync_all());
                    if let Err(e) = written {
                        let _ = fs::remove_file(&path);
                        return Err(io_err("write", &path, e));
                    }
                    self.write_last_reserved(ip)?;
                    return Ok(ip);
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io_err("create", &path, e)),
            }
        }
        Err(NetError::RangeFull(range_set))
    }

    /// Records the last address handed out, atomically (temporary file, then rename).
    fn write_last_reserved(&self, ip: Ipv4Addr) -> Result<(), NetError> {
        let tmp = self.dir.join(format!(".{LAST_RESERVED}.tmp"));
        fs::write(&tmp, ip.to_string()).map_err(|e| io_err("write", &tmp, e))?;
        let path = self.dir.join(LAST_RESERVED);
        fs::rename(&tmp, &path).map_err(|e| io_err("rename", &path, e))
    }

    /// Frees every address `owner` holds.
    pub(crate) fn release(&self, owner: &str) -> Result<Vec<Ipv4Addr>, NetError> {
        let _guard = self.lock.lock();
        let mut freed = Vec::new();
        for (ip, o) in self.list()? {
            if o == owner {
                let path = self.dir.join(ip.to_string());
                match fs::remove_file(&path) {
                    Ok(()) => freed.push(ip),
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => return Err(io_err("remove", &path, e)),
                }
            }
        }
        Ok(freed)
    }
}

/// A file-system error as a [`NetError`].
pub(crate) fn io_err(what: &str, path: &Path, e: std::io::Error) -> NetError {
    NetError::Kernel(format!("{what} {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipam(dir: &Path, cidr: &str) -> Ipam {
        let range: Ipv4Net = cidr.parse().expect("cidr");
        let gateway = Ipv4Addr::from(u32::from(range.network()) + 1);
        Ipam::open(dir, range, gateway).expect("open")
    }

    #[test]
    fn allocates_round_robin_skipping_the_gateway_and_keeps_an_owners_address() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ipam = ipam(dir.path(), "10.9.0.0/29");
        let a = ipam.allocate("a").expect("a");
        let b = ipam.allocate("b").expect("b");
        assert_eq!(a, Ipv4Addr::new(10, 9, 0, 2));
        assert_eq!(b, Ipv4Addr::new(10, 9, 0, 3));
        assert_eq!(ipam.allocate("a").expect("again"), a);
        ipam.release("a").expect("release");
        // Round robin: the freed .2 is not reused while later addresses are free.
        assert_eq!(ipam.allocate("c").expect("c"), Ipv4Addr::new(10, 9, 0, 4));
        for owner in ["d", "e"] {
            ipam.allocate(owner).expect(owner);
        }
        // .5 and .6 taken: wraps round to the freed .2.
        assert_eq!(ipam.allocate("f").expect("f"), a);
        assert!(matches!(ipam.allocate("g"), Err(NetError::RangeFull(_))));
    }

    #[test]
    fn a_reopened_directory_keeps_its_allocations() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = ipam(dir.path(), "10.9.1.0/24").allocate("a").expect("a");
        let again = ipam(dir.path(), "10.9.1.0/24");
        assert_eq!(again.get("a").expect("get"), Some(a));
        assert_ne!(again.allocate("b").expect("b"), a);
        assert_eq!(again.list().expect("list").len(), 2);
        // The node got another range: the old allocations go.
        let other = ipam(dir.path(), "10.9.7.0/24");
        assert_eq!(other.get("a").expect("get"), None);
        assert_eq!(other.list().expect("list"), Vec::new());
    }

    #[test]
    fn a_range_without_room_is_full() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A /31 has no address besides the network, gateway and broadcast.
        let ipam = ipam(dir.path(), "10.9.2.0/31");
        assert!(matches!(ipam.allocate("a"), Err(NetError::RangeFull(_))));
    }
}
