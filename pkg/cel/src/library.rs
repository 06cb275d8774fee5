//! The Kubernetes CEL libraries the `cel` crate lacks: lists (`isSorted`, `sum`, `min`,
//! `max`, `indexOf`, `lastIndexOf`), regex (`find`, `findAll`), URLs, quantities, IP
//! addresses and CIDRs, and sets. Value-typed functions are registered on each
//! evaluation's context; the ones whose names the extensions already declare for other
//! types (`indexOf` on strings) or that live in a namespace (`sets.*`) are overloads of
//! the shared environment.

use std::cmp::Ordering;
use std::net::IpAddr;
use std::sync::Arc;

use cel::common::types::{CelBool, CelInt, LIST_TYPE};
use cel::common::value::{CowVal, Val};
use cel::extractors::{Arguments, This};
use cel::objects::Opaque;
use cel::{Context, Env, ExecutionError, Value};
use ipnet::IpNet;
use k1s_apimachinery::Quantity;

type Result<T> = std::result::Result<T, ExecutionError>;

/// The functions and macros an expression may call: the standard library, the
/// extensions and the Kubernetes libraries (what upstream's checker declares). Used to
/// refuse calls of undeclared functions when an expression is written.
const FUNCTIONS: &[&str] = &[
    // Standard library and macros.
    "size",
    "contains",
    "startsWith",
    "endsWith",
    "matches",
    "int",
    "uint",
    "double",
    "string",
    "bytes",
    "bool",
    "type",
    "dyn",
    "has",
    "all",
    "exists",
    "exists_one",
    "map",
    "filter",
    "duration",
    "timestamp",
    "getDate",
    "getDayOfMonth",
    "getDayOfWeek",
    "getDayOfYear",
    "getFullYear",
    "getHours",
    "getMilliseconds",
    "getMinutes",
    "getMonth",
    "getSeconds",
    "optional.of",
    "optional.none",
    "optional.ofNonZeroValue",
    "hasValue",
    "value",
    "or",
    "orValue",
    // Strings extension.
    "charAt",
    "indexOf",
    "lastIndexOf",
    "join",
    "lowerAscii",
    "upperAscii",
    "trim",
    "replace",
    "split",
    "substring",
    "format",
    "strings.quote",
    "reverse",
    // Lists extension.
    "slice",
    "flatten",
    "distinct",
    "sort",
    "sortBy",
    "lists.range",
    // Math extension.
    "math.greatest",
    "math.least",
    "math.ceil",
    "math.floor",
    "math.round",
    "math.trunc",
    "math.isInf",
    "math.isNaN",
    "math.isFinite",
    "math.abs",
    "math.sign",
    "math.bitAnd",
    "math.bitOr",
    "math.bitXor",
    "math.bitNot",
    "math.bitShiftLeft",
    "math.bitShiftRight",
    "math.sqrt",
    // Encoders extension.
    "base64.encode",
    "base64.decode",
    // Kubernetes lists and regex.
    "isSorted",
    "sum",
    "min",
    "max",
    "find",
    "findAll",
    // Kubernetes URLs.
    "url",
    "isURL",
    "getScheme",
    "getHost",
    "getHostname",
    "getPort",
    "getEscapedPath",
    "getQuery",
    // Kubernetes quantities.
    "quantity",
    "isQuantity",
    "isInteger",
    "asInteger",
    "asApproximateFloat",
    "sign",
    "add",
    "sub",
    "isGreaterThan",
    "isLessThan",
    "compareTo",
    // Kubernetes IP addresses and CIDRs.
    "ip",
    "isIP",
    "family",
    "isUnspecified",
    "isLoopback",
    "isLinkLocalMulticast",
    "isLinkLocalUnicast",
    "isGlobalUnicast",
    "cidr",
    "isCIDR",
    "containsIP",
    "containsCIDR",
    "masked",
    "prefixLength",
    // Sets.
    "sets.contains",
    "sets.equivalent",
    "sets.intersects",
    // Declared upstream; the `cel` crate does not evaluate them (see the README).
    "cel.bind",
    "transformList",
    "transformMap",
    "transformMapEntry",
    "existsOne",
    "optMap",
    "optFlatMap",
    "ip.isCanonical",
    "format.named",
    "format.dns1123Label",
    "format.dns1123Subdomain",
    "format.dns1035Label",
    "format.qualifiedName",
    "format.dns1123LabelPrefix",
    "format.dns1123SubdomainPrefix",
    "format.dns1035LabelPrefix",
    "format.labelValue",
    "format.uri",
    "format.uuid",
    "format.byte",
    "format.date",
    "format.datetime",
    "validate",
    "jsonpatch.escapeKey",
    // The admission authorizer (evaluated only where an authorizer is bound).
    "path",
    "group",
    "resource",
    "subresource",
    "namespace",
    "name",
    "check",
    "allowed",
    "reason",
    "errored",
    "error",
    "serviceAccount",
];

/// Whether `name` (`f`, or `ns.f` for a namespaced one) is a declared function.
pub fn is_function(name: &str) -> bool {
    FUNCTIONS.contains(&name)
}

/// Declares the environment-level overloads.
pub(crate) fn declare(env: &mut Env) -> std::result::Result<(), cel::DeclarationError> {
    env.set_error_on_duplicate_map_keys(false);
    env.add_member_overload(
        "indexOf",
        "list_index_of",
        LIST_TYPE,
        vec![cel::common::types::DYN_TYPE],
        list_index_of,
    )?;
    env.add_member_overload(
        "lastIndexOf",
        "list_last_index_of",
        LIST_TYPE,
        vec![cel::common::types::DYN_TYPE],
        list_last_index_of,
    )?;
    env.add_overload(
        "sets.contains",
        "sets_contains",
        vec![LIST_TYPE, LIST_TYPE],
        sets_contains,
    )?;
    env.add_overload(
        "sets.equivalent",
        "sets_equivalent",
        vec![LIST_TYPE, LIST_TYPE],
        sets_equivalent,
    )?;
    env.add_overload(
        "sets.intersects",
        "sets_intersects",
        vec![LIST_TYPE, LIST_TYPE],
        sets_intersects,
    )?;
    Ok(())
}

/// The items of a list argument.
fn items<'b, 'v>(v: &'b CowVal<'_, 'v>) -> Result<Vec<&'b (dyn Val + 'v)>> {
    let it = v
        .as_iterable()
        .ok_or_else(|| ExecutionError::function_error("list", "not a list"))?;
    let mut out = Vec::new();
    let mut iter = it.iter();
    while let Some(item) = iter.next() {
        out.push(item);
    }
    Ok(out)
}

/// `list.indexOf(x)`: the first index of an equal element, or -1.
fn list_index_of<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>> {
    let [list, needle] = args.as_slice() else {
        return Err(ExecutionError::invalid_argument_count(2, args.len()));
    };
    let found = items(list)?
        .iter()
        .position(|x| x.equals(needle.as_ref()))
        .map_or(-1, |i| i64::try_from(i).unwrap_or(-1));
    Ok(CowVal::owned(CelInt::from(found)))
}

/// `list.lastIndexOf(x)`: the last index of an equal element, or -1.
fn list_last_index_of<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>> {
    let [list, needle] = args.as_slice() else {
        return Err(ExecutionError::invalid_argument_count(2, args.len()));
    };
    let found = items(list)?
        .iter()
        .rposition(|x| x.equals(needle.as_ref()))
        .map_or(-1, |i| i64::try_from(i).unwrap_or(-1));
    Ok(CowVal::owned(CelInt::from(found)))
}

/// Whether every element of `b` is in `a`.
fn contains_all(a: &[&dyn Val], b: &[&dyn Val]) -> bool {
    b.iter().all(|x| a.iter().any(|y| y.equals(*x)))
}

/// `sets.contains(a, b)`.
fn sets_contains<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>> {
    let [a, b] = args.as_slice() else {
        return Err(ExecutionError::invalid_argument_count(2, args.len()));
    };
    let r = contains_all(&items(a)?, &items(b)?);
    Ok(CowVal::owned(CelBool::from(r)))
}

/// `sets.equivalent(a, b)`.
fn sets_equivalent<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>> {
    let [a, b] = args.as_slice() else {
        return Err(ExecutionError::invalid_argument_count(2, args.len()));
    };
    let (a, b) = (items(a)?, items(b)?);
    Ok(CowVal::owned(CelBool::from(
        contains_all(&a, &b) && contains_all(&b, &a),
    )))
}

/// `sets.intersects(a, b)`.
fn sets_intersects<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>> {
    let [a, b] = args.as_slice() else {
        return Err(ExecutionError::invalid_argument_count(2, args.len()));
    };
    let (a, b) = (items(a)?, items(b)?);
    let r = b.iter().any(|x| a.iter().any(|y| y.equals(*x)));
    Ok(CowVal::owned(CelBool::from(r)))
}

/// Registers the value-typed functions on an evaluation's context.
pub(crate) fn register(ctx: &mut Context<'_, '_>) {
    // Each name is registered once here and none is an overload of the environment, so
    // these cannot conflict; a failure would only leave the function undeclared.
    let _ = ctx.add_function("isSorted", is_sorted);
    let _ = ctx.add_function("sum", sum);
    let _ = ctx.add_function("min", min);
    let _ = ctx.add_function("max", max);
    let _ = ctx.add_function("find", find);
    let _ = ctx.add_function("findAll", find_all);
    let _ = ctx.add_function("url", url);
    let _ = ctx.add_function("isURL", is_url);
    let _ = ctx.add_function("getScheme", get_scheme);
    let _ = ctx.add_function("getHost", get_host);
    let _ = ctx.add_function("getHostname", get_hostname);
    let _ = ctx.add_function("getPort", get_port);
    let _ = ctx.add_function("getEscapedPath", get_escaped_path);
    let _ = ctx.add_function("getQuery", get_query);
    let _ = ctx.add_function("quantity", quantity);
    let _ = ctx.add_function("isQuantity", is_quantity);
    let _ = ctx.add_function("isInteger", q_is_integer);
    let _ = ctx.add_function("asInteger", q_as_integer);
    let _ = ctx.add_function("asApproximateFloat", q_as_float);
    let _ = ctx.add_function("sign", q_sign);
    let _ = ctx.add_function("add", q_add);
    let _ = ctx.add_function("sub", q_sub);
    let _ = ctx.add_function("isGreaterThan", q_greater);
    let _ = ctx.add_function("isLessThan", q_less);
    let _ = ctx.add_function("compareTo", q_compare);
    let _ = ctx.add_function("ip", ip);
    let _ = ctx.add_function("isIP", is_ip);
    let _ = ctx.add_function("family", ip_family);
    let _ = ctx.add_function("isUnspecified", ip_unspecified);
    let _ = ctx.add_function("isLoopback", ip_loopback);
    let _ = ctx.add_function("isLinkLocalMulticast", ip_ll_multicast);
    let _ = ctx.add_function("isLinkLocalUnicast", ip_ll_unicast);
    let _ = ctx.add_function("isGlobalUnicast", ip_global_unicast);
    let _ = ctx.add_function("cidr", cidr);
    let _ = ctx.add_function("isCIDR", is_cidr);
    let _ = ctx.add_function("containsIP", cidr_contains_ip);
    let _ = ctx.add_function("containsCIDR", cidr_contains_cidr);
    let _ = ctx.add_function("masked", cidr_masked);
    let _ = ctx.add_function("prefixLength", cidr_prefix_length);
}

/// An error of function `f`.
fn fail(f: &str, msg: impl ToString) -> ExecutionError {
    ExecutionError::function_error(f, msg)
}

/// The single argument of a call.
fn one(f: &str, args: &[Value]) -> Result<Value> {
    match args {
        [a] => Ok(a.clone()),
        _ => Err(fail(f, format!("expected 1 argument, got {}", args.len()))),
    }
}

/// A string value.
fn string(f: &str, v: &Value) -> Result<Arc<String>> {
    match v {
        Value::String(s) => Ok(Arc::clone(s)),
        other => Err(fail(f, format!("no such overload: {}", other.type_of()))),
    }
}

/// The order of two comparable values (numbers across kinds, strings, bools).
fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Some(x.cmp(y)),
        (Value::UInt(x), Value::UInt(y)) => Some(x.cmp(y)),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Bytes(x), Value::Bytes(y)) => Some(x.cmp(y)),
        (x, y) => {
            let f = |v: &Value| match v {
                Value::Int(i) => Some(*i as f64),
                Value::UInt(u) => Some(*u as f64),
                Value::Float(d) => Some(*d),
                _ => None,
            };
            match (f(x), f(y)) {
                (Some(x), Some(y)) => x.partial_cmp(&y),
                _ => quantity_of(x)
                    .zip(quantity_of(y))
                    .map(|(x, y)| x.0.cmp(&y.0)),
            }
        }
    }
}

/// The elements of a list receiver.
fn list(f: &str, v: &Value) -> Result<Arc<Vec<Value>>> {
    match v {
        Value::List(l) => Ok(Arc::clone(l)),
        other => Err(fail(
            f,
            format!("no such overload: {}.{f}()", other.type_of()),
        )),
    }
}

/// `list.isSorted()`.
fn is_sorted(This(this): This<Value>) -> Result<Value> {
    let l = list("isSorted", &this)?;
    for w in l.windows(2) {
        match compare(&w[0], &w[1]) {
            Some(Ordering::Greater) => return Ok(Value::Bool(false)),
            Some(_) => {}
            None => return Err(fail("isSorted", "list elements are not comparable")),
        }
    }
    Ok(Value::Bool(true))
}

/// `list.sum()`: ints, uints or doubles; 0 for an empty list.
fn sum(This(this): This<Value>) -> Result<Value> {
    let l = list("sum", &this)?;
    let mut acc = Value::Int(0);
    for (i, v) in l.iter().enumerate() {
        acc = match (i, &acc, v) {
            (0, _, v) => v.clone(),
            (_, Value::Int(a), Value::Int(b)) => Value::Int(
                a.checked_add(*b)
                    .ok_or_else(|| fail("sum", "integer overflow"))?,
            ),
            (_, Value::UInt(a), Value::UInt(b)) => Value::UInt(
                a.checked_add(*b)
                    .ok_or_else(|| fail("sum", "unsigned integer overflow"))?,
            ),
            (_, Value::Float(a), Value::Float(b)) => Value::Float(a + b),
            _ => return Err(fail("sum", "list elements are not summable")),
        };
    }
    Ok(acc)
}

/// `list.min()` / `list.max()`: the extreme element; an error on an empty list.
fn extreme(f: &str, this: &Value, want: Ordering) -> Result<Value> {
    let l = list(f, this)?;
    let mut best = l
        .first()
        .cloned()
        .ok_or_else(|| fail(f, format!("{f} called on empty list")))?;
    for v in l.iter().skip(1) {
        match compare(v, &best) {
            Some(o) if o == want => best = v.clone(),
            Some(_) => {}
            None => return Err(fail(f, "list elements are not comparable")),
        }
    }
    Ok(best)
}

/// `list.min()`.
fn min(This(this): This<Value>) -> Result<Value> {
    extreme("min", &this, Ordering::Less)
}

/// `list.max()`.
fn max(This(this): This<Value>) -> Result<Value> {
    extreme("max", &this, Ordering::Greater)
}

/// A compiled pattern, with the regex crate's size limits (linear-time matching).
fn regex(f: &str, pattern: &str) -> Result<regex::Regex> {
    regex::Regex::new(pattern).map_err(|e| fail(f, format!("invalid regex: {e}")))
}

/// `s.find(re)`: the first match, or the empty string.
fn find(This(this): This<Value>, Arguments(args): Arguments) -> Result<Value> {
    let s = string("find", &this)?;
    let re = regex("find", &string("find", &one("find", &args)?)?)?;
    Ok(Value::String(Arc::new(
        re.find(&s)
            .map(|m| m.as_str().to_string())
            .unwrap_or_default(),
    )))
}

/// `s.findAll(re)` / `s.findAll(re, n)`: the matches (at most `n` when `n` >= 0).
fn find_all(This(this): This<Value>, Arguments(args): Arguments) -> Result<Value> {
    let s = string("findAll", &this)?;
    let (pattern, limit) = match args.as_slice() {
        [p] => (p, -1),
        [p, Value::Int(n)] => (p, *n),
        _ => return Err(fail("findAll", "expected a pattern and an optional limit")),
    };
    let re = regex("findAll", &string("findAll", pattern)?)?;
    let all = re
        .find_iter(&s)
        .map(|m| Value::String(Arc::new(m.as_str().to_string())));
    let out: Vec<Value> = match usize::try_from(limit) {
        Ok(n) => all.take(n).collect(),
        Err(_) => all.collect(),
    };
    Ok(Value::List(Arc::new(out)))
}

/// A URL value (`url('https://…')`).
#[derive(Debug, PartialEq, Eq)]
struct Url(url::Url, bool);

impl Opaque for Url {
    fn runtime_type_name(&self) -> &str {
        "kubernetes.URL"
    }
}

/// Parses what upstream's `url()` accepts: an absolute URI, or an absolute path
/// (reported without scheme and host).
fn parse_url(s: &str) -> Option<Url> {
    if s.starts_with('/') {
        let base = url::Url::parse("http://path.invalid").ok()?;
        return base.join(s).ok().map(|u| Url(u, true));
    }
    url::Url::parse(s).ok().map(|u| Url(u, false))
}

/// `url(s)`.
fn url(Arguments(args): Arguments) -> Result<Value> {
    let s = string("url", &one("url", &args)?)?;
    parse_url(&s)
        .map(|u| Value::Opaque(Arc::new(u)))
        .ok_or_else(|| {
            fail(
                "url",
                format!("URL parse error during conversion from string: {s}"),
            )
        })
}

/// `isURL(s)`.
fn is_url(Arguments(args): Arguments) -> Result<Value> {
    let s = string("isURL", &one("isURL", &args)?)?;
    Ok(Value::Bool(parse_url(&s).is_some()))
}

/// The URL receiver.
fn url_of<'a>(f: &str, v: &'a Value) -> Result<&'a Url> {
    match v {
        Value::Opaque(o) => o.downcast_ref::<Url>(),
        _ => None,
    }
    .ok_or_else(|| fail(f, format!("no such overload: {}.{f}()", v.type_of())))
}

/// A string value.
fn s(v: impl Into<String>) -> Value {
    Value::String(Arc::new(v.into()))
}

/// `url.getScheme()`.
fn get_scheme(This(this): This<Value>) -> Result<Value> {
    let u = url_of("getScheme", &this)?;
    Ok(s(if u.1 { "" } else { u.0.scheme() }))
}

/// The host with its port, as written (IPv6 in brackets).
fn host_port(u: &Url) -> String {
    if u.1 {
        return String::new();
    }
    match (u.0.host_str(), u.0.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        _ => String::new(),
    }
}

/// `url.getHost()`.
fn get_host(This(this): This<Value>) -> Result<Value> {
    Ok(s(host_port(url_of("getHost", &this)?)))
}

/// `url.getHostname()`: without the port, IPv6 without brackets.
fn get_hostname(This(this): This<Value>) -> Result<Value> {
    let u = url_of("getHostname", &this)?;
    if u.1 {
        return Ok(s(""));
    }
    let h = u.0.host_str().unwrap_or("");
    Ok(s(h.trim_start_matches('[').trim_end_matches(']')))
}

/// `url.getPort()`: the port as written, or empty.
fn get_port(This(this): This<Value>) -> Result<Value> {
    let u = url_of("getPort", &this)?;
    Ok(s(if u.1 {
        String::new()
    } else {
        u.0.port().map(|p| p.to_string()).unwrap_or_default()
    }))
}

/// `url.getEscapedPath()`.
fn get_escaped_path(This(this): This<Value>) -> Result<Value> {
    Ok(s(url_of("getEscapedPath", &this)?.0.path()))
}

/// `url.getQuery()`: each key with its values.
fn get_query(This(this): This<Value>) -> Result<Value> {
    let u = url_of("getQuery", &this)?;
    let mut m: Vec<(String, Vec<Value>)> = Vec::new();
    for (k, v) in u.0.query_pairs() {
        match m.iter_mut().find(|(key, _)| *key == k) {
            Some((_, vs)) => vs.push(s(v.to_string())),
            None => m.push((k.to_string(), vec![s(v.to_string())])),
        }
    }
    Ok(crate::map_of(
        m.into_iter()
            .map(|(k, vs)| (k, Value::List(Arc::new(vs))))
            .collect(),
    ))
}

/// A quantity value (`quantity('1Gi')`).
#[derive(Debug)]
struct Q(Quantity);

impl PartialEq for Q {
    fn eq(&self, other: &Self) -> bool {
        self.0.cmp(&other.0) == Ordering::Equal
    }
}

impl Eq for Q {}

impl Opaque for Q {
    fn runtime_type_name(&self) -> &str {
        "kubernetes.Quantity"
    }
}

/// The quantity in `v`, if it is one.
fn quantity_of(v: &Value) -> Option<&Q> {
    match v {
        Value::Opaque(o) => o.downcast_ref::<Q>(),
        _ => None,
    }
}

/// The quantity receiver.
fn q_this<'a>(f: &str, v: &'a Value) -> Result<&'a Quantity> {
    quantity_of(v)
        .map(|q| &q.0)
        .ok_or_else(|| fail(f, format!("no such overload: {}.{f}()", v.type_of())))
}

/// A quantity result.
fn q(v: Quantity) -> Value {
    Value::Opaque(Arc::new(Q(v)))
}

/// `quantity(s)`.
fn quantity(Arguments(args): Arguments) -> Result<Value> {
    let text = string("quantity", &one("quantity", &args)?)?;
    Quantity::parse(&text)
        .map(q)
        .map_err(|e| fail("quantity", e.to_string()))
}

/// `isQuantity(s)`.
fn is_quantity(Arguments(args): Arguments) -> Result<Value> {
    let text = string("isQuantity", &one("isQuantity", &args)?)?;
    Ok(Value::Bool(Quantity::parse(&text).is_ok()))
}

/// Whether a quantity is a whole number that fits an int64.
fn is_whole(x: &Quantity) -> bool {
    let v = x.value();
    Quantity::from_i64(v, x.format()).cmp(x) == Ordering::Equal
}

/// `q.isInteger()`.
fn q_is_integer(This(this): This<Value>) -> Result<Value> {
    Ok(Value::Bool(is_whole(q_this("isInteger", &this)?)))
}

/// `q.asInteger()`: an error when not a whole int64.
fn q_as_integer(This(this): This<Value>) -> Result<Value> {
    let x = q_this("asInteger", &this)?;
    if !is_whole(x) {
        return Err(fail(
            "asInteger",
            "cannot convert value to integer: the quantity is not an integer or overflows int64",
        ));
    }
    Ok(Value::Int(x.value()))
}

/// `q.asApproximateFloat()`.
fn q_as_float(This(this): This<Value>) -> Result<Value> {
    Ok(Value::Float(q_this("asApproximateFloat", &this)?.as_f64()))
}

/// `q.sign()`.
fn q_sign(This(this): This<Value>) -> Result<Value> {
    Ok(Value::Int(i64::from(q_this("sign", &this)?.signum())))
}

/// The other operand of quantity arithmetic: a quantity or an int.
fn q_operand(f: &str, this: &Quantity, args: &[Value]) -> Result<Quantity> {
    match one(f, args)? {
        Value::Int(i) => Ok(Quantity::from_i64(i, this.format())),
        v => quantity_of(&v).map(|x| x.0.clone()).ok_or_else(|| {
            fail(
                f,
                format!("no such overload: Quantity.{f}({})", v.type_of()),
            )
        }),
    }
}

/// `q.add(x)`.
fn q_add(This(this): This<Value>, Arguments(args): Arguments) -> Result<Value> {
    let x = q_this("add", &this)?;
    let y = q_operand("add", x, &args)?;
    x.checked_add(&y)
        .map(q)
        .ok_or_else(|| fail("add", "quantity overflow"))
}

/// `q.sub(x)`.
fn q_sub(This(this): This<Value>, Arguments(args): Arguments) -> Result<Value> {
    let x = q_this("sub", &this)?;
    let y = q_operand("sub", x, &args)?;
    x.checked_sub(&y)
        .map(q)
        .ok_or_else(|| fail("sub", "quantity overflow"))
}

/// The order of the receiver quantity against the argument.
fn q_order(f: &str, this: &Value, args: &[Value]) -> Result<Ordering> {
    let x = q_this(f, this)?;
    let other = one(f, args)?;
    let y = quantity_of(&other).ok_or_else(|| {
        fail(
            f,
            format!("no such overload: Quantity.{f}({})", other.type_of()),
        )
    })?;
    Ok(x.cmp(&y.0))
}

/// `q.isGreaterThan(x)`.
fn q_greater(This(this): This<Value>, Arguments(args): Arguments) -> Result<Value> {
    Ok(Value::Bool(
        q_order("isGreaterThan", &this, &args)? == Ordering::Greater,
    ))
}

/// `q.isLessThan(x)`.
fn q_less(This(this): This<Value>, Arguments(args): Arguments) -> Result<Value> {
    Ok(Value::Bool(
        q_order("isLessThan", &this, &args)? == Ordering::Less,
    ))
}

/// `q.compareTo(x)`: -1, 0 or 1.
fn q_compare(This(this): This<Value>, Arguments(args): Arguments) -> Result<Value> {
    Ok(Value::Int(match q_order("compareTo", &this, &args)? {
        Ordering::Less => -1,
        Ordering::Equal => 0,
        Ordering::Greater => 1,
    }))
}

/// An IP address value.
#[derive(Debug, PartialEq, Eq)]
struct Ip(IpAddr);

impl Opaque for Ip {
    fn runtime_type_name(&self) -> &str {
        "net.IP"
    }
}

/// A CIDR value.
#[derive(Debug, PartialEq, Eq)]
struct Cidr(IpNet);

impl Opaque for Cidr {
    fn runtime_type_name(&self) -> &str {
        "net.CIDR"
    }
}

/// Parses an IP as upstream's library does: no zones, no IPv4-mapped IPv6.
fn parse_ip(s: &str) -> Option<IpAddr> {
    if s.contains('%') {
        return None;
    }
    let ip: IpAddr = s.parse().ok()?;
    match ip {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => None,
        ip => Some(ip),
    }
}

/// Parses a CIDR as upstream's library does.
fn parse_cidr(s: &str) -> Option<IpNet> {
    let (addr, _) = s.split_once('/')?;
    parse_ip(addr)?;
    s.parse().ok()
}

/// `ip(s)`, or `cidr.ip()`: the address of a CIDR.
fn ip(This(this): This<Value>) -> Result<Value> {
    match &this {
        Value::Opaque(o) => match o.downcast_ref::<Cidr>() {
            Some(c) => Ok(Value::Opaque(Arc::new(Ip(c.0.addr())))),
            None => Err(fail("ip", "no such overload")),
        },
        v => {
            let text = string("ip", v)?;
            parse_ip(&text)
                .map(|a| Value::Opaque(Arc::new(Ip(a))))
                .ok_or_else(|| {
                    fail(
                        "ip",
                        format!("IP Address {text:?} parse error during conversion from string"),
                    )
                })
        }
    }
}

/// `isIP(s)`.
fn is_ip(Arguments(args): Arguments) -> Result<Value> {
    let text = string("isIP", &one("isIP", &args)?)?;
    Ok(Value::Bool(parse_ip(&text).is_some()))
}

/// The IP receiver.
fn ip_this(f: &str, v: &Value) -> Result<IpAddr> {
    match v {
        Value::Opaque(o) => o.downcast_ref::<Ip>().map(|i| i.0),
        _ => None,
    }
    .ok_or_else(|| fail(f, format!("no such overload: {}.{f}()", v.type_of())))
}

/// `ip.family()`: 4 or 6.
fn ip_family(This(this): This<Value>) -> Result<Value> {
    Ok(Value::Int(match ip_this("family", &this)? {
        IpAddr::V4(_) => 4,
        IpAddr::V6(_) => 6,
    }))
}

/// `ip.isUnspecified()`.
fn ip_unspecified(This(this): This<Value>) -> Result<Value> {
    Ok(Value::Bool(
        ip_this("isUnspecified", &this)?.is_unspecified(),
    ))
}

/// `ip.isLoopback()`.
fn ip_loopback(This(this): This<Value>) -> Result<Value> {
    Ok(Value::Bool(ip_this("isLoopback", &this)?.is_loopback()))
}

/// `ip.isLinkLocalMulticast()`: 224.0.0.0/24 or ff02::/16.
fn ip_ll_multicast(This(this): This<Value>) -> Result<Value> {
    Ok(Value::Bool(match ip_this("isLinkLocalMulticast", &this)? {
        IpAddr::V4(a) => a.octets()[..3] == [224, 0, 0],
        IpAddr::V6(a) => a.segments()[0] & 0xff0f == 0xff02,
    }))
}

/// `ip.isLinkLocalUnicast()`: 169.254.0.0/16 or fe80::/10.
fn ip_ll_unicast(This(this): This<Value>) -> Result<Value> {
    Ok(Value::Bool(match ip_this("isLinkLocalUnicast", &this)? {
        IpAddr::V4(a) => a.is_link_local(),
        IpAddr::V6(a) => a.segments()[0] & 0xffc0 == 0xfe80,
    }))
}

/// `ip.isGlobalUnicast()`, as Go's `net.IP.IsGlobalUnicast`.
fn ip_global_unicast(This(this): This<Value>) -> Result<Value> {
    Ok(Value::Bool(match ip_this("isGlobalUnicast", &this)? {
        IpAddr::V4(a) => {
            !(a.is_unspecified()
                || a.is_loopback()
                || a.is_multicast()
                || a.is_link_local()
                || a.is_broadcast())
        }
        IpAddr::V6(a) => {
            let s0 = a.segments()[0];
            !(a.is_unspecified()
                || a.is_loopback()
                || s0 & 0xff00 == 0xff00
                || s0 & 0xffc0 == 0xfe80)
        }
    }))
}

/// `cidr(s)`.
fn cidr(Arguments(args): Arguments) -> Result<Value> {
    let text = string("cidr", &one("cidr", &args)?)?;
    parse_cidr(&text)
        .map(|n| Value::Opaque(Arc::new(Cidr(n))))
        .ok_or_else(|| fail("cidr", format!("network address parse error during conversion from string: invalid CIDR address: {text}")))
}

/// `isCIDR(s)`.
fn is_cidr(Arguments(args): Arguments) -> Result<Value> {
    let text = string("isCIDR", &one("isCIDR", &args)?)?;
    Ok(Value::Bool(parse_cidr(&text).is_some()))
}

/// The CIDR receiver.
fn cidr_this(f: &str, v: &Value) -> Result<IpNet> {
    match v {
        Value::Opaque(o) => o.downcast_ref::<Cidr>().map(|c| c.0),
        _ => None,
    }
    .ok_or_else(|| fail(f, format!("no such overload: {}.{f}()", v.type_of())))
}

/// `cidr.containsIP(ip or string)`.
fn cidr_contains_ip(This(this): This<Value>, Arguments(args): Arguments) -> Result<Value> {
    let net = cidr_this("containsIP", &this)?;
    let arg = one("containsIP", &args)?;
    let addr = match &arg {
        Value::String(text) => parse_ip(text).ok_or_else(|| fail("containsIP", "invalid IP"))?,
        v => ip_this("containsIP", v)?,
    };
    Ok(Value::Bool(net.contains(&addr)))
}

/// `cidr.containsCIDR(cidr or string)`.
fn cidr_contains_cidr(This(this): This<Value>, Arguments(args): Arguments) -> Result<Value> {
    let net = cidr_this("containsCIDR", &this)?;
    let arg = one("containsCIDR", &args)?;
    let other = match &arg {
        Value::String(text) => {
            parse_cidr(text).ok_or_else(|| fail("containsCIDR", "invalid CIDR"))?
        }
        v => cidr_this("containsCIDR", v)?,
    };
    Ok(Value::Bool(net.contains(&other)))
}

/// `cidr.masked()`.
fn cidr_masked(This(this): This<Value>) -> Result<Value> {
    Ok(Value::Opaque(Arc::new(Cidr(
        cidr_this("masked", &this)?.trunc(),
    ))))
}

/// `cidr.prefixLength()`.
fn cidr_prefix_length(This(this): This<Value>) -> Result<Value> {
    Ok(Value::Int(i64::from(
        cidr_this("prefixLength", &this)?.prefix_len(),
    )))
}
