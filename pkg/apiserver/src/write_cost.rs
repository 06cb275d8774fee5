//! A fixed write workload for instruction counts (issue 16): `n` creates, `n` replaces
//! (PUT without resourceVersion, as kubectl replace) and `n` strategic-merge patches of an
//! 888-byte ConfigMap, each phase in its own never-inlined function so that callgrind can
//! count one phase alone:
//!
//! ```text
//! valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*write_cost_creates*' \
//!     target/debug/deps/k1s_apiserver-… write_cost::drive --ignored --exact
//! ```
//!
//! `K1S_WRITE_COST_N` sets `n` (default 50). The test checks the answers, so a phase that
//! stopped doing its work would fail rather than look cheap.

use serde_json::{Value, json};

use crate::test_util::{TestApi, TestApiServer};

const COLLECTION: &str = "/api/v1/namespaces/default/configmaps";

/// The bench's ConfigMap (bench/src/scenarios.rs): five 64-byte values and one label,
/// 888 bytes as served.
fn config_map(name: &str, n: usize) -> Value {
    let data: serde_json::Map<String, Value> = (0..5)
        .map(|k| (format!("key-{k}"), Value::String(format!("{n:>64}"))))
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"app": "bench"}},
        "data": data,
    })
}

#[inline(never)]
fn write_cost_creates(rt: &tokio::runtime::Runtime, api: &TestApi, n: usize) {
    rt.block_on(async {
        for i in 0..n {
            let (code, body) = api
                .call("POST", COLLECTION, &config_map(&format!("cm-{i}"), i))
                .await;
            assert_eq!(code, 201, "{body}");
        }
    });
}

#[inline(never)]
fn write_cost_updates(rt: &tokio::runtime::Runtime, api: &TestApi, n: usize) {
    rt.block_on(async {
        for i in 0..n {
            let name = format!("cm-{i}");
            let uri = format!("{COLLECTION}/{name}");
            let (code, body) = api.call("PUT", &uri, &config_map(&name, i + 1)).await;
            assert_eq!(code, 200, "{body}");
        }
    });
}

#[inline(never)]
fn write_cost_patches(rt: &tokio::runtime::Runtime, api: &TestApi, n: usize) {
    rt.block_on(async {
        for i in 0..n {
            let uri = format!("{COLLECTION}/cm-{i}");
            let patch = json!({"data": {"key-0": format!("{:>64}", i + 2)}});
            let (code, body) = api
                .call_with(
                    "PATCH",
                    &uri,
                    "application/strategic-merge-patch+json",
                    &patch,
                )
                .await;
            assert_eq!(code, 200, "{body}");
        }
    });
}

#[test]
#[ignore = "a workload for callgrind, not a check: run it by name"]
fn drive() {
    let n = std::env::var("K1S_WRITE_COST_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    // The client's buffer spawns its worker on the runtime it is made in.
    let _in_runtime = rt.enter();
    let server = rt.block_on(TestApiServer::new());
    let api = server.api();
    // One of each first, so that lazily built tables (schemas, caches) are not counted.
    rt.block_on(async {
        let (code, _) = api.call("POST", COLLECTION, &config_map("warm", 0)).await;
        assert_eq!(code, 201);
        let uri = format!("{COLLECTION}/warm");
        let (code, _) = api.call("PUT", &uri, &config_map("warm", 1)).await;
        assert_eq!(code, 200);
        let (code, got) = api
            .call_with(
                "PATCH",
                &uri,
                "application/strategic-merge-patch+json",
                &json!({"data": {"key-0": "x"}}),
            )
            .await;
        assert_eq!(code, 200);
        let size = serde_json::to_vec(&config_map("warm", 1)).map_or(0, |v| v.len());
        assert!(size > 300, "{got}");
    });
    write_cost_creates(&rt, &api, n);
    write_cost_updates(&rt, &api, n);
    write_cost_patches(&rt, &api, n);
    let (code, last) =
        rt.block_on(api.call("GET", &format!("{COLLECTION}/cm-{}", n - 1), &Value::Null));
    assert_eq!(code, 200);
    assert_eq!(last["data"]["key-0"], json!(format!("{:>64}", n + 1)));
    assert_eq!(last["data"]["key-1"], json!(format!("{:>64}", n)));
}
