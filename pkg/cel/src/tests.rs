use super::*;

/// Evaluates `src` with `self` bound to `obj`.
fn eval_with(src: &str, obj: serde_json::Value) -> Result<Value, EvalError> {
    let obj = from_json(&obj);
    with_deep_stack(|| {
        let p = compile(src).map_err(EvalError::Failed)?;
        p.eval(&[("self", &obj)], PER_CALL_LIMIT).map(|(v, _)| v)
    })
    .unwrap_or(Err(EvalError::Failed("no thread".into())))
}

fn truth(src: &str) -> bool {
    let obj = serde_json::json!({
        "name": "Web-App", "replicas": 3, "ratio": 0.5,
        "tags": ["a", "b", "c"], "nums": [3, 1, 2],
        "labels": {"app": "web"},
        "memory": "1Gi", "endpoint": "https://example.com:8443/a/b?x=1&x=2",
        "addr": "10.0.0.7", "net": "10.0.0.0/8"
    });
    match eval_with(src, obj) {
        Ok(Value::Bool(b)) => b,
        other => panic!("{src}: {other:?}"),
    }
}

#[test]
fn standard_library_and_macros() {
    for src in [
        "self.replicas > 1 && size(self.tags) == 3",
        "has(self.labels) && !has(self.missing)",
        "self.tags.all(t, t.size() == 1)",
        "self.tags.exists(t, t == 'b')",
        "self.tags.exists_one(t, t == 'c')",
        "self.tags.map(t, t + t) == ['aa', 'bb', 'cc']",
        "self.nums.filter(n, n > 1) == [3, 2]",
        "'app' in self.labels && self.labels['app'] == 'web'",
        "self.name.matches('^[A-Z][a-z]+-[A-Z][a-z]+$')",
        "self.ratio < 1.0 && self.replicas * 2 == 6",
    ] {
        assert!(truth(src), "{src}");
    }
}

#[test]
fn strings_library() {
    for src in [
        "self.name.lowerAscii() == 'web-app'",
        "self.name.upperAscii() == 'WEB-APP'",
        "self.name.split('-') == ['Web', 'App']",
        "self.tags.join(',') == 'a,b,c'",
        "self.name.replace('-', '_') == 'Web_App'",
        "'  x '.trim() == 'x'",
        "self.name.indexOf('App') == 4",
        "self.name.substring(0, 3) == 'Web'",
        "self.name.lastIndexOf('p') == 6",
    ] {
        assert!(truth(src), "{src}");
    }
}

#[test]
fn lists_and_regex_libraries() {
    for src in [
        "!self.nums.isSorted() && [1, 2, 2].isSorted()",
        "self.nums.sum() == 6 && self.nums.min() == 1 && self.nums.max() == 3",
        "self.tags.indexOf('b') == 1 && self.tags.lastIndexOf('z') == -1",
        "'abc 123 def 456'.find('[0-9]+') == '123'",
        "'abc 123 def 456'.findAll('[0-9]+') == ['123', '456']",
        "'abc 123 def 456'.findAll('[0-9]+', 1) == ['123']",
        "sets.contains(self.tags, ['a']) && !sets.intersects(self.tags, ['z'])",
        "[1, 2, 3].slice(1, 2) == [2]",
        "math.greatest(1, 5, 3) == 5",
        "base64.encode(b'hi') == 'aGk=' && base64.decode('aGk=') == b'hi'",
    ] {
        assert!(truth(src), "{src}");
    }
}

#[test]
fn quantity_url_ip_and_cidr_libraries() {
    for src in [
        "quantity(self.memory).isGreaterThan(quantity('512Mi'))",
        "quantity('1').add(quantity('500m')).compareTo(quantity('1500m')) == 0",
        "quantity(self.memory).asInteger() == 1073741824",
        "isQuantity('1Gi') && !isQuantity('1 Gi')",
        "url(self.endpoint).getScheme() == 'https'",
        "url(self.endpoint).getHostname() == 'example.com' && url(self.endpoint).getPort() == '8443'",
        "url(self.endpoint).getEscapedPath() == '/a/b'",
        "url(self.endpoint).getQuery()['x'] == ['1', '2']",
        "isURL('/absolute/path') && !isURL('not a url')",
        "ip(self.addr).family() == 4 && !ip(self.addr).isLoopback()",
        "cidr(self.net).containsIP(self.addr) && cidr(self.net).prefixLength() == 8",
        "cidr('10.1.2.3/8').masked() == cidr('10.0.0.0/8')",
        "isIP('::1') && !isIP('::ffff:1.2.3.4') && isCIDR('fd00::/8')",
    ] {
        assert!(truth(src), "{src}");
    }
}

#[test]
fn errors_are_reported_not_panicked() {
    let err = eval_with("self.missing == 1", serde_json::json!({})).unwrap_err();
    assert_eq!(err, EvalError::Failed("no such key: missing".into()));
    assert!(eval_with("quantity('x')", serde_json::json!({})).is_err());
    assert!(eval_with("[].min()", serde_json::json!({})).is_err());
    assert!(compile("self.x ==").is_err());
}

#[test]
fn hostile_expressions_run_out_of_budget() {
    let started = std::time::Instant::now();
    let err = eval_with(
        "lists.range(1000).all(a, lists.range(1000).all(b, lists.range(1000).all(c, true)))",
        serde_json::json!({}),
    )
    .unwrap_err();
    assert_eq!(err, EvalError::CostExceeded);
    // Growing a string by doubling is charged by its size.
    let err = eval_with(
        "lists.range(64).map(i, 'x').filter(x, true).size() > 0 && \
         lists.range(40).exists(i, false) == false && \
         [1].all(z, lists.range(60).map(i, 'ab').join('') != '' ) && \
         lists.range(100000).filter(i, i >= 0).size() == 100000 && \
         lists.range(1000).map(i, lists.range(1000).map(j, j)).size() > 0",
        serde_json::json!({}),
    )
    .unwrap_err();
    assert_eq!(err, EvalError::CostExceeded);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    // Error absorption by `||` does not hide an exhausted budget.
    let err = eval_with(
        "lists.range(1000).all(a, lists.range(1000).all(b, lists.range(1000).all(c, true))) || true",
        serde_json::json!({}),
    )
    .unwrap_err();
    assert_eq!(err, EvalError::CostExceeded);
}

#[test]
fn cheap_expressions_fit_the_budget() {
    let obj = from_json(&serde_json::json!({"items": (0..5000).collect::<Vec<_>>()}));
    let p = with_deep_stack(|| {
        compile("self.items.all(i, i >= 0) && self.items.map(i, i * 2).size() == 5000")
    })
    .expect("thread")
    .expect("compiles");
    let (v, cost) = with_deep_stack(|| p.eval(&[("self", &obj)], PER_CALL_LIMIT))
        .expect("thread")
        .expect("evaluates");
    assert_eq!(v, Value::Bool(true));
    assert!((10_000..100_000).contains(&cost), "{cost}");
}

#[test]
fn known_functions() {
    assert!(is_function("lowerAscii") && is_function("sets.contains") && is_function("quantity"));
    assert!(!is_function("lowerascii"));
}

#[test]
fn what_the_cel_crate_leaves_out_fails_cleanly() {
    // Documented in the README as not evaluated: each is an error, never a panic.
    for src in [
        "cel.bind(x, 1, x + 1) == 2",
        "{'a': 1}.all(k, v, v > 0)",
        "timestamp('2024-01-01T00:00:00Z') != null",
    ] {
        assert!(eval_with(src, serde_json::json!({})).is_err(), "{src}");
    }
}

#[test]
fn scalar_self() {
    let v = Value::String(Arc::new("registry.local/x".into()));
    for src in [
        "self.startsWith('registry.local/')",
        "self.size() == 16",
        "size(self) == 16",
    ] {
        let r = with_deep_stack(|| compile(src).map(|p| p.eval(&[("self", &v)], PER_CALL_LIMIT)))
            .expect("thread");
        assert!(matches!(r, Ok(Ok((Value::Bool(true), _)))), "{src}: {r:?}");
    }
}
