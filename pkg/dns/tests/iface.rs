//! The cluster DNS address on a local interface (needs root, as CI has): put on, served,
//! taken off again. A unique interface name and address per run.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

#[tokio::test]
async fn address_is_added_served_and_removed() {
    let pid = std::process::id();
    let interface = format!("k1sdt{}", pid % 100_000);
    // 10.255.x.y: outside the default ranges, unique enough per process.
    let ip = IpAddr::V4(Ipv4Addr::new(
        10,
        255,
        (pid >> 8) as u8,
        (pid & 0xff).max(1) as u8,
    ));
    let added = k1s_dns::iface::add_address(&interface, ip)
        .await
        .unwrap_or_else(|e| panic!("{e} (this test needs root: CAP_NET_ADMIN)"));
    let api = k1s_apiserver::test_util::TestApiServer::new().await;
    let mut config = k1s_dns::Config::new(vec![SocketAddr::new(ip, 0)]);
    config.upstreams = k1s_dns::Upstreams::Servers(Vec::new());
    let dns = k1s_dns::start(api.client(), config)
        .await
        .expect("serve on the address");
    assert!(dns.wait_synced(Duration::from_secs(15)).await);
    let addr = dns.local_addrs()[0];
    assert_eq!(addr.ip(), ip);
    // tokio's Command: the server runs on this test's one thread while dig waits.
    let dig = tokio::process::Command::new("dig")
        .args([
            &format!("@{ip}"),
            "-p",
            &addr.port().to_string(),
            "+short",
            "kubernetes.default.svc.cluster.local",
        ])
        .output()
        .await
        .expect("dig (apt-get install dnsutils)");
    assert_eq!(String::from_utf8_lossy(&dig.stdout).trim(), "10.43.0.1");
    dns.shutdown().await;
    added.remove().await;
    let show = std::process::Command::new("ip")
        .args(["-o", "addr"])
        .output()
        .expect("ip");
    let text = String::from_utf8_lossy(&show.stdout);
    assert!(
        !text.contains(&format!(" {ip}/")),
        "{ip} still on an interface:\n{text}"
    );
}
