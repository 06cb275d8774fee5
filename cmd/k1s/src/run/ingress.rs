//! The ingress controller inside `k1s server` (k3s's Traefik): IngressClass `k1s` and the
//! reverse proxy on the node's ports 80 and 443.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use k1s_apiserver::ApiServer;
use k1s_apiserver::auth::UserInfo;

use crate::cli::server::ServerArgs;

/// The running controller.
pub(crate) struct Ingress {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

/// Whether `--disable` names the ingress controller (`ingress`, or k3s's `traefik`).
pub(crate) fn disabled(args: &ServerArgs) -> bool {
    args.disable
        .iter()
        .any(|c| c.eq_ignore_ascii_case("ingress") || c.eq_ignore_ascii_case("traefik"))
}

/// Starts the controller unless disabled. A port it cannot open is logged: the rest of
/// the server runs on.
pub(crate) async fn start(
    args: &ServerArgs,
    api: &Arc<ApiServer>,
    node_ip: IpAddr,
) -> Option<Ingress> {
    if disabled(args) {
        return None;
    }
    let mut config = k1s_ingress::Config::new(vec![node_ip]);
    let any = IpAddr::from([0, 0, 0, 0]);
    config.http = SocketAddr::new(any, args.ingress_http_port);
    config.https = SocketAddr::new(any, args.ingress_https_port);
    let listeners = match k1s_ingress::Listeners::bind(&config).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "ingress controller is off");
            return None;
        }
    };
    if let Ok((http, https)) = listeners.local_addrs() {
        tracing::info!(%http, %https, "ingress controller listening");
    }
    let client = k1s_apiserver::client::client(
        api.clone(),
        UserInfo::new("system:k1s-ingress", ["system:masters".to_string()]),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let done = async move {
            let _ = stopped.await;
        };
        if let Err(e) = k1s_ingress::run(client, config, listeners, done).await {
            tracing::error!(error = %e, "ingress controller failed");
        }
    });
    Some(Ingress { stop, task })
}

impl Ingress {
    /// Stops the listeners and the watches.
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cmd {
        #[command(flatten)]
        args: ServerArgs,
    }

    fn args(flags: &[&str]) -> ServerArgs {
        let argv = std::iter::once("server").chain(flags.iter().copied());
        Cmd::try_parse_from(argv)
            .unwrap_or_else(|e| panic!("{flags:?}: {e}"))
            .args
    }

    #[test]
    fn disable_names_ingress_or_traefik() {
        assert!(!disabled(&args(&[])));
        assert!(disabled(&args(&["--disable", "ingress"])));
        assert!(disabled(&args(&["--disable", "traefik"])));
        assert!(disabled(&args(&["--disable", "coredns,Traefik"])));
        assert!(!disabled(&args(&["--disable", "coredns"])));
        let a = args(&[]);
        assert_eq!((a.ingress_http_port, a.ingress_https_port), (80, 443));
        let a = args(&["--ingress-http-port", "8080", "--ingress-https-port", "0"]);
        assert_eq!((a.ingress_http_port, a.ingress_https_port), (8080, 0));
    }
}
