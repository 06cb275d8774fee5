//! Kubernetes' CEL authorizer library: the `authorizer` variable of admission policies
//! and webhook match conditions. `authorizer.group(g).resource(r).namespace(ns).name(n)
//! .check(verb)` and `authorizer.path(p).check(verb)` ask the server's authorizer about
//! the requesting user (or `authorizer.serviceAccount(ns, name)`), and the decision
//! answers `allowed()`, `reason()`, `errored()` and `error()`;
//! `authorizer.requestResource` is the resource check of the request being admitted.

use std::sync::Arc;

use cel::extractors::{Arguments, This};
use cel::objects::Opaque;
use cel::{Context, ExecutionError, Value};

type Result<T> = std::result::Result<T, ExecutionError>;

/// One question for the authorizer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthzQuery {
    /// A non-resource path (`authorizer.path`); resources are asked otherwise.
    pub path: Option<String>,
    /// API group.
    pub group: String,
    /// Resource (plural).
    pub resource: String,
    /// Subresource.
    pub subresource: String,
    /// Namespace.
    pub namespace: String,
    /// Object name.
    pub name: String,
    /// The verb asked.
    pub verb: String,
    /// Ask for this service account (namespace, name) instead of the requesting user.
    pub service_account: Option<(String, String)>,
}

/// The authorizer's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthzDecision {
    /// Allowed.
    pub allowed: bool,
    /// Why (the authorizer's reason).
    pub reason: String,
    /// The authorizer's error, if it had one.
    pub error: Option<String>,
}

/// Answers the checks of one request (bound to the requesting user).
pub type AuthzCheck = Arc<dyn Fn(&AuthzQuery) -> AuthzDecision + Send + Sync>;

/// The key under which the `authorizer` map keeps its builder; it cannot be written as a
/// CEL identifier, so expressions reach it only through the library's functions.
const SELF_KEY: &str = "@k1s_authorizer";

/// A check being built, with the authorizer that will answer it.
#[derive(Clone)]
struct Builder {
    check: AuthzCheck,
    query: AuthzQuery,
    /// Which of upstream's types this value is: `Authorizer`, `GroupCheck`,
    /// `ResourceCheck` or `PathCheck`.
    stage: Stage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Authorizer,
    Group,
    Resource,
    Path,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("query", &self.query)
            .field("stage", &self.stage)
            .finish_non_exhaustive()
    }
}

impl PartialEq for Builder {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.check, &other.check)
            && self.query == other.query
            && self.stage == other.stage
    }
}

impl Eq for Builder {}

impl Opaque for Builder {
    fn runtime_type_name(&self) -> &str {
        match self.stage {
            Stage::Authorizer => "kubernetes.authorization.Authorizer",
            Stage::Group => "kubernetes.authorization.GroupCheck",
            Stage::Resource => "kubernetes.authorization.ResourceCheck",
            Stage::Path => "kubernetes.authorization.PathCheck",
        }
    }
}

/// A decision value.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Decision(AuthzDecision);

impl Opaque for Decision {
    fn runtime_type_name(&self) -> &str {
        "kubernetes.authorization.Decision"
    }
}

/// The `authorizer` variable: checks answered by `check`, with `authorizer.requestResource`
/// the check of `request` (group, resource, subresource, namespace, name) when given.
pub fn authorizer_value(check: AuthzCheck, request: Option<AuthzQuery>) -> Value {
    let root = Builder {
        check: Arc::clone(&check),
        query: AuthzQuery::default(),
        stage: Stage::Authorizer,
    };
    let mut entries = vec![(SELF_KEY.to_string(), Value::Opaque(Arc::new(root)))];
    if let Some(q) = request {
        entries.push((
            "requestResource".to_string(),
            Value::Opaque(Arc::new(Builder {
                check,
                query: q,
                stage: Stage::Resource,
            })),
        ));
    }
    crate::map_of(entries)
}

fn fail(f: &str, msg: impl ToString) -> ExecutionError {
    ExecutionError::function_error(f, msg)
}

/// The builder a method was called on, if it is at one of `stages`.
fn builder(f: &str, this: &Value, stages: &[Stage]) -> Result<Builder> {
    let found = match this {
        Value::Opaque(o) => o.downcast_ref::<Builder>().cloned(),
        Value::Map(m) => m
            .map
            .get(&cel::objects::Key::String(Arc::new(SELF_KEY.to_string())))
            .and_then(|v| match v {
                Value::Opaque(o) => o.downcast_ref::<Builder>().cloned(),
                _ => None,
            }),
        _ => None,
    };
    found
        .filter(|b| stages.contains(&b.stage))
        .ok_or_else(|| fail(f, format!("no such overload: {}.{f}", this.type_of())))
}

/// The string arguments of a call, exactly `n` of them.
fn strings(f: &str, args: &[Value], n: usize) -> Result<Vec<String>> {
    if args.len() != n {
        return Err(fail(
            f,
            format!("expected {n} argument(s), got {}", args.len()),
        ));
    }
    args.iter()
        .map(|a| match a {
            Value::String(s) => Ok(s.to_string()),
            other => Err(fail(f, format!("no such overload: {}", other.type_of()))),
        })
        .collect()
}

fn next(mut b: Builder, stage: Stage, edit: impl FnOnce(&mut AuthzQuery)) -> Value {
    b.stage = stage;
    edit(&mut b.query);
    Value::Opaque(Arc::new(b))
}

fn group(This(this): This<Value>, Arguments(args): Arguments) -> Result<Value> {
    let b = builder("group", &this, &[Stage::Authorizer])?;
    let [g] = <[String; 1]>::try_from(strings("group", &args, 1)?).unwrap_or_default();
    Ok(next(b, Stage::Group, |q| q.group = g))
}

fn path(This(this): This<Value>, Arguments(args): Arguments) -> Result<Value> {
    let b = builder("path", &this, &[Stage::Authorizer])?;
    let [p] = <[String; 1]>::try_from(strings("path", &args, 1)?).unwrap_or_default();
    Ok(next(b, Stage::Path, |q| q.path = Some(p)))
}

fn service_account(This(this): This<Value>, Arguments(args): Arguments) -> Result<Value> {
    let b = builder("serviceAccount", &this, &[Stage::Authorizer])?;
    let [ns, name] =
        <[String; 2]>::try_from(strings("serviceAccount", &args, 2)?).unwrap_or_default();
    Ok(next(b, Stage::Authorizer, |q| {
        q.service_account = Some((ns, name))
    }))
}

fn resource(This(this): This<Value>, Arguments(args): Arguments) -> Result<Value> {
    let b = builder("resource", &this, &[Stage::Group])?;
    let [r] = <[String; 1]>::try_from(strings("resource", &args, 1)?).unwrap_or_default();
    Ok(next(b, Stage::Resource, |q| q.resource = r))
}

/// `subresource`, `namespace` and `name` on a resource check.
fn resource_field(
    f: &'static str,
    set: fn(&mut AuthzQuery, String),
) -> impl Fn(This<Value>, Arguments) -> Result<Value> + Send + Sync + 'static {
    move |This(this): This<Value>, Arguments(args): Arguments| {
        let b = builder(f, &this, &[Stage::Resource])?;
        let [v] = <[String; 1]>::try_from(strings(f, &args, 1)?).unwrap_or_default();
        Ok(next(b, Stage::Resource, |q| set(q, v)))
    }
}

fn check(This(this): This<Value>, Arguments(args): Arguments) -> Result<Value> {
    let b = builder("check", &this, &[Stage::Resource, Stage::Path])?;
    let [verb] = <[String; 1]>::try_from(strings("check", &args, 1)?).unwrap_or_default();
    let mut q = b.query;
    q.verb = verb;
    Ok(Value::Opaque(Arc::new(Decision((b.check)(&q)))))
}

fn decision(f: &str, this: &Value) -> Result<AuthzDecision> {
    match this {
        Value::Opaque(o) => o.downcast_ref::<Decision>().map(|d| d.0.clone()),
        _ => None,
    }
    .ok_or_else(|| fail(f, format!("no such overload: {}.{f}", this.type_of())))
}

fn allowed(This(this): This<Value>) -> Result<Value> {
    Ok(Value::Bool(decision("allowed", &this)?.allowed))
}

fn reason(This(this): This<Value>) -> Result<Value> {
    Ok(Value::String(Arc::new(decision("reason", &this)?.reason)))
}

fn errored(This(this): This<Value>) -> Result<Value> {
    Ok(Value::Bool(decision("errored", &this)?.error.is_some()))
}

fn error(This(this): This<Value>) -> Result<Value> {
    Ok(Value::String(Arc::new(
        decision("error", &this)?.error.unwrap_or_default(),
    )))
}

/// Registers the library's functions on an evaluation's context.
pub(crate) fn register(ctx: &mut Context<'_, '_>) {
    let _ = ctx.add_function("group", group);
    let _ = ctx.add_function("path", path);
    let _ = ctx.add_function("serviceAccount", service_account);
    let _ = ctx.add_function("resource", resource);
    let _ = ctx.add_function(
        "subresource",
        resource_field("subresource", |q, v| q.subresource = v),
    );
    let _ = ctx.add_function(
        "namespace",
        resource_field("namespace", |q, v| q.namespace = v),
    );
    let _ = ctx.add_function("name", resource_field("name", |q, v| q.name = v));
    let _ = ctx.add_function("check", check);
    let _ = ctx.add_function("allowed", allowed);
    let _ = ctx.add_function("reason", reason);
    let _ = ctx.add_function("errored", errored);
    let _ = ctx.add_function("error", error);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(src: &str, authz: Value) -> Value {
        crate::with_deep_stack(|| {
            let p = crate::compile(src).expect("compiles");
            p.eval(&[("authorizer", &authz)], crate::PER_CALL_LIMIT)
                .map(|(v, _)| v)
        })
        .expect("runs")
        .expect("evaluates")
    }

    #[test]
    fn checks_reach_the_authorizer_with_the_built_query() {
        let check: AuthzCheck = Arc::new(|q: &AuthzQuery| AuthzDecision {
            allowed: q.group == "apps"
                && q.resource == "deployments"
                && q.namespace == "ns1"
                && q.verb == "create"
                && q.service_account.is_none(),
            reason: format!("asked {}", q.verb),
            error: None,
        });
        let request = AuthzQuery {
            group: "".into(),
            resource: "pods".into(),
            namespace: "ns1".into(),
            ..Default::default()
        };
        let a = authorizer_value(check, Some(request));
        let t = |src: &str| eval(src, a.clone());
        assert_eq!(
            t(
                "authorizer.group('apps').resource('deployments').namespace('ns1').check('create').allowed()"
            ),
            Value::Bool(true)
        );
        assert_eq!(
            t("authorizer.group('apps').resource('deployments').check('create').allowed()"),
            Value::Bool(false)
        );
        assert_eq!(
            t(
                "authorizer.serviceAccount('ns1', 'sa').group('apps').resource('deployments').namespace('ns1').check('create').allowed()"
            ),
            Value::Bool(false)
        );
        assert_eq!(
            t("authorizer.requestResource.check('delete').reason()"),
            Value::String(Arc::new("asked delete".into()))
        );
        assert_eq!(
            t("authorizer.path('/healthz').check('get').errored()"),
            Value::Bool(false)
        );
    }

    #[test]
    fn methods_on_the_wrong_type_fail() {
        let check: AuthzCheck = Arc::new(|_: &AuthzQuery| AuthzDecision::default());
        let a = authorizer_value(check, None);
        let r = crate::with_deep_stack(|| {
            crate::compile("authorizer.resource('pods').check('get').allowed()")
                .expect("compiles")
                .eval(&[("authorizer", &a)], crate::PER_CALL_LIMIT)
        })
        .expect("runs");
        assert!(r.is_err());
    }
}
