//! The cluster DNS address on a local dummy interface (`k1s-dns0`), as NodeLocal
//! DNSCache puts its address on `nodelocaldns`: pods and the host reach the DNS server
//! at the Service IP directly, with no service proxy in between.

use std::net::IpAddr;

use futures::TryStreamExt;
use rtnetlink::{Handle, LinkDummy, LinkUnspec};

use crate::Error;

/// An address this process put on an interface; [`LocalAddress::remove`] takes it off
/// (and deletes the interface when this process created it).
#[derive(Debug)]
pub struct LocalAddress {
    interface: String,
    ip: IpAddr,
    created_link: bool,
    added_address: bool,
}

fn fail(interface: &str, ip: IpAddr, message: impl std::fmt::Display) -> Error {
    Error::Interface {
        interface: interface.to_string(),
        ip,
        message: message.to_string(),
    }
}

fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.to_io().raw_os_error(),
        _ => None,
    }
}

async fn link_index(handle: &Handle, name: &str) -> Result<Option<u32>, rtnetlink::Error> {
    let mut links = handle.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(link) => Ok(link.map(|l| l.header.index)),
        Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(None),
        Err(e) => Err(e),
    }
}

fn connect(interface: &str, ip: IpAddr) -> Result<Handle, Error> {
    let (connection, handle, _) =
        rtnetlink::new_connection().map_err(|e| fail(interface, ip, e))?;
    tokio::spawn(connection);
    Ok(handle)
}

/// Puts `ip` (a /32 or /128) on the dummy interface `interface`, creating it and
/// bringing it up when needed (on `lo` where the kernel has no dummy driver). Needs
/// CAP_NET_ADMIN.
pub async fn add_address(interface: &str, ip: IpAddr) -> Result<LocalAddress, Error> {
    let handle = connect(interface, ip)?;
    let mut created_link = false;
    let mut interface = interface;
    let index = match link_index(&handle, interface)
        .await
        .map_err(|e| fail(interface, ip, e))?
    {
        Some(i) => i,
        None => match handle
            .link()
            .add(LinkDummy::new(interface).up().build())
            .execute()
            .await
        {
            Ok(()) => {
                created_link = true;
                link_index(&handle, interface)
                    .await
                    .map_err(|e| fail(interface, ip, e))?
                    .ok_or_else(|| fail(interface, ip, "the interface vanished after creation"))?
            }
            // A kernel without the dummy driver (some VM kernels): the loopback
            // interface carries a local address just as well.
            Err(e) if errno(&e) == Some(libc::EOPNOTSUPP) => {
                tracing::warn!(%interface, "no dummy interfaces in this kernel; the cluster DNS address goes on lo");
                interface = "lo";
                link_index(&handle, interface)
                    .await
                    .map_err(|e| fail(interface, ip, e))?
                    .ok_or_else(|| fail(interface, ip, "no loopback interface"))?
            }
            Err(e) => return Err(fail(interface, ip, e)),
        },
    };
    handle
        .link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(|e| fail(interface, ip, e))?;
    let prefix = if ip.is_ipv4() { 32 } else { 128 };
    let added_address = match handle.address().add(index, ip, prefix).execute().await {
        Ok(()) => true,
        // Already there (a previous run that did not clean up): ours to use, not to remove.
        Err(e) if errno(&e) == Some(libc::EEXIST) => false,
        Err(e) => return Err(fail(interface, ip, e)),
    };
    tracing::info!(%interface, %ip, "cluster DNS address on the local dummy interface");
    Ok(LocalAddress {
        interface: interface.to_string(),
        ip,
        created_link,
        added_address,
    })
}

impl LocalAddress {
    /// Takes the address off again, and the interface away if this process made it.
    pub async fn remove(self) {
        let Ok(handle) = connect(&self.interface, self.ip) else {
            return;
        };
        let Ok(Some(index)) = link_index(&handle, &self.interface).await else {
            return;
        };
        if self.created_link {
            if let Err(e) = handle.link().del(index).execute().await {
                tracing::warn!(interface = %self.interface, error = %e, "cannot delete the DNS interface");
            }
            return;
        }
        if !self.added_address {
            return;
        }
        let mut addrs = handle
            .address()
            .get()
            .set_link_index_filter(index)
            .set_address_filter(self.ip)
            .execute();
        while let Ok(Some(msg)) = addrs.try_next().await {
            if let Err(e) = handle.address().del(msg).execute().await {
                tracing::warn!(ip = %self.ip, error = %e, "cannot remove the DNS address");
            }
        }
    }
}
