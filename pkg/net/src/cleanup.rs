//! Undoing a node's network for `k1s killall` (k3s's `k3s-killall.sh`): the pod bridge with
//! every veth on it, the nftables tables k1s owns and a leftover interface, each reported
//! by name so the command can say what it removed. Everything is idempotent: what is not
//! there is skipped.

use futures::TryStreamExt;
use netlink_packet_route::link::LinkAttribute;

use crate::NetError;
use crate::bridge::{delete_link, link_index, nl_err};

/// The default bridge (k3s's `cni0`, here `k1s0`).
pub const DEFAULT_BRIDGE: &str = "k1s0";

/// The nftables tables (`ip` family) of one node, named after its pod bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeTables {
    /// The pod network's NAT table (`k1s`).
    pub nat: String,
    /// The Service proxy's table (`k1s-proxy`).
    pub proxy: String,
    /// The NetworkPolicy table (`k1s-netpol`).
    pub netpol: String,
}

impl NodeTables {
    /// Every table, for removing them all.
    pub fn all(&self) -> [String; 3] {
        [self.nat.clone(), self.proxy.clone(), self.netpol.clone()]
    }
}

/// The tables of the node whose pod bridge is `bridge`: `k1s`, `k1s-proxy` and
/// `k1s-netpol` for the default bridge; a node with another bridge (tests, several nodes on
/// one host) names its tables after the bridge.
pub fn tables_for_bridge(bridge: &str) -> NodeTables {
    let prefix = if bridge == DEFAULT_BRIDGE {
        "k1s"
    } else {
        bridge
    };
    NodeTables {
        nat: prefix.to_owned(),
        proxy: format!("{prefix}-proxy"),
        netpol: format!("{prefix}-netpol"),
    }
}

/// Deletes the bridge called `name` and every link plugged into it (the host sides of the
/// pods' veth pairs, which takes their pod sides too); returns the names deleted, bridge
/// last.
pub async fn remove_bridge(name: &str) -> Result<Vec<String>, NetError> {
    let (connection, handle, _) = rtnetlink::new_connection()
        .map_err(|e| NetError::Kernel(format!("netlink socket: {e}")))?;
    let connection = tokio::spawn(connection);
    let result = async {
        let Some(bridge) = link_index(&handle, name).await? else {
            return Ok(Vec::new());
        };
        let mut ports = Vec::new();
        let mut links = handle.link().get().execute();
        while let Some(link) = links
            .try_next()
            .await
            .map_err(|e| nl_err("list links", e))?
        {
            let mut controller = None;
            let mut ifname = None;
            for attr in &link.attributes {
                match attr {
                    LinkAttribute::Controller(c) => controller = Some(*c),
                    LinkAttribute::IfName(n) => ifname = Some(n.clone()),
                    _ => {}
                }
            }
            if let (Some(c), Some(ifname)) = (controller, ifname)
                && c == bridge
            {
                ports.push((link.header.index, ifname));
            }
        }
        let mut removed = Vec::new();
        for (index, ifname) in ports {
            delete_link(&handle, index).await?;
            removed.push(ifname);
        }
        delete_link(&handle, bridge).await?;
        removed.push(name.to_owned());
        Ok(removed)
    }
    .await;
    connection.abort();
    result
}

/// Deletes the link called `name` if there is one; whether it was there.
pub async fn remove_link(name: &str) -> Result<bool, NetError> {
    let (connection, handle, _) = rtnetlink::new_connection()
        .map_err(|e| NetError::Kernel(format!("netlink socket: {e}")))?;
    let connection = tokio::spawn(connection);
    let result = async {
        match link_index(&handle, name).await? {
            Some(index) => delete_link(&handle, index).await.map(|()| true),
            None => Ok(false),
        }
    }
    .await;
    connection.abort();
    result
}

/// Deletes the tables named `names` that exist, of any family (the NetworkPolicy one is
/// `inet`, the others `ip`); returns the ones deleted as `family name`.
pub async fn remove_tables(names: &[String]) -> Result<Vec<String>, NetError> {
    let out = tokio::process::Command::new("nft")
        .args(["list", "tables"])
        .output()
        .await
        .map_err(|e| NetError::Kernel(format!("running nft (apt-get install nftables): {e}")))?;
    if !out.status.success() {
        return Err(NetError::Kernel(format!(
            "nft list tables: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let present = parse_tables(&String::from_utf8_lossy(&out.stdout));
    let mut removed = Vec::new();
    for (family, name) in present {
        if names.contains(&name) {
            crate::proxy::nft(&format!("delete table {family} {name}\n")).await?;
            removed.push(format!("{family} {name}"));
        }
    }
    Ok(removed)
}

/// The (family, name) pairs in `nft list tables` output (`table FAMILY NAME` lines).
fn parse_tables(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("table "))
        .filter_map(|rest| {
            let (family, name) = rest.trim().split_once(' ')?;
            Some((family.to_owned(), name.trim().to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_bridge_keeps_k3s_like_table_names_and_others_are_scoped() {
        assert_eq!(
            tables_for_bridge("k1s0").all(),
            ["k1s", "k1s-proxy", "k1s-netpol"].map(String::from)
        );
        assert_eq!(
            tables_for_bridge("k1sab12").all(),
            ["k1sab12", "k1sab12-proxy", "k1sab12-netpol"].map(String::from)
        );
        assert_eq!(
            parse_tables("table ip k1s\ntable ip k1s-proxy\ntable inet k1s-netpol\n"),
            [("ip", "k1s"), ("ip", "k1s-proxy"), ("inet", "k1s-netpol")]
                .map(|(f, n)| (f.to_owned(), n.to_owned()))
        );
    }
}
