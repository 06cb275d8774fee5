//! The Kubernetes CEL environment over the `cel` crate: its standard library and the
//! strings, lists, math and base64 extensions, plus the Kubernetes libraries it lacks (lists,
//! regex, URLs, quantities, IP/CIDR, sets), JSON objects as CEL values, and a bounded
//! evaluation: every comprehension step is charged against a cost budget (upstream's
//! per-call limit) and a wall-clock deadline, so a hostile expression cannot hang the
//! server.

mod authz;
mod library;

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use cel::common::ast::{CallExpr, ComprehensionExpr, EntryExpr, Expr, IdedExpr, operators};
use cel::common::types::DYN_TYPE;
use cel::common::value::CowVal;
use cel::{Context, Env, ExecutionError};

pub use authz::{AuthzCheck, AuthzDecision, AuthzQuery, authorizer_value};
pub use cel::Value;
pub use library::is_function;

/// Upstream's per-expression runtime cost limit (`PerCallLimit`).
pub const PER_CALL_LIMIT: u64 = 1_000_000;

/// How long one expression may run whatever its cost: a bound on the work of a single
/// step, which the cost model charges only roughly (a deep copy of a nested list).
const DEADLINE: Duration = Duration::from_secs(2);

/// cel-go's limit on nesting.
const MAX_RECURSION_DEPTH: u16 = 250;

/// The function the comprehension steps are wrapped in to be charged. Its name cannot
/// be written in CEL source, so only the instrumentation calls it.
const COST_FN: &str = "@k1s_cost";

/// Why an evaluation gave no value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    /// The expression ran past its cost budget or its deadline.
    #[error("operation cancelled: actual cost limit exceeded")]
    CostExceeded,
    /// An evaluation error (no such key, no matching overload, a failing function).
    #[error("{0}")]
    Failed(String),
}

/// A compiled expression, instrumented for the cost budget.
#[derive(Debug, Clone)]
pub struct Program {
    expr: IdedExpr,
}

/// The shared environment: built once, then only read.
static ENV: LazyLock<Arc<Env>> = LazyLock::new(|| {
    let mut env = Env::stdlib();
    // The extensions and the Kubernetes overloads are declared once, by this code, with
    // distinct names: a failure here is a bug caught by the tests, and leaving the
    // function out is the safe outcome (the expression fails to evaluate).
    for ext in [
        cel::extensions::strings as fn(&mut Env) -> Result<(), cel::DeclarationError>,
        cel::extensions::lists,
        cel::extensions::math,
        cel::extensions::encoders,
        library::declare,
    ] {
        let _ = env.add_extension(ext);
    }
    let _ = env.add_overload(COST_FN, "k1s_cost_dyn", vec![DYN_TYPE], charge);
    Arc::new(env)
});

/// Parses `source` with the Kubernetes macros. The caller runs this on a deep stack
/// (see [`with_deep_stack`]): the parser recurses once per nesting level.
pub fn compile(source: &str) -> Result<Program, String> {
    let parser = ENV
        .parser()
        .max_recursion_depth(MAX_RECURSION_DEPTH)
        .enable_ident_escape_syntax(true);
    let mut expr = parser.parse(source).map_err(|e| e.to_string())?;
    instrument(&mut expr);
    Ok(Program { expr })
}

impl Program {
    /// Evaluates the program with `vars` bound, charging at most `limit`; returns the
    /// value and the cost it took. Runs on the caller's stack: use [`with_deep_stack`]
    /// around a batch of evaluations.
    pub fn eval(&self, vars: &[(&str, &Value)], limit: u64) -> Result<(Value, u64), EvalError> {
        let mut ctx = Context::with_env(Arc::clone(&ENV));
        library::register(&mut ctx);
        authz::register(&mut ctx);
        for (name, value) in vars {
            ctx.add_variable_from_value(*name, (*value).clone());
        }
        BUDGET.set(Some(Budget {
            left: limit,
            used: 0,
            deadline: Instant::now() + DEADLINE,
            exceeded: false,
        }));
        let result = Value::resolve(&self.expr, &ctx);
        let budget = BUDGET.take();
        let (used, exceeded) = budget.map_or((0, false), |b| (b.used, b.exceeded));
        if exceeded {
            return Err(EvalError::CostExceeded);
        }
        result
            .map(|v| (v, used))
            .map_err(|e| EvalError::Failed(message(&e)))
    }
}

/// An evaluation error in cel-go's words where the `cel` crate's differ.
fn message(e: &ExecutionError) -> String {
    match e {
        ExecutionError::NoSuchKey(k) => format!("no such key: {k}"),
        ExecutionError::FunctionError { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// What is left of one evaluation's budget.
#[derive(Debug, Clone, Copy)]
struct Budget {
    left: u64,
    used: u64,
    deadline: Instant,
    exceeded: bool,
}

thread_local! {
    /// The budget of the evaluation running on this thread (evaluation is synchronous,
    /// so the charge function finds it here).
    static BUDGET: Cell<Option<Budget>> = const { Cell::new(None) };
}

/// The cost of one comprehension step with result `v`: one, plus a tenth of the size of
/// a string, bytes, list or map it builds (upstream charges copies by size).
fn step_cost(v: &CowVal<'_, '_>) -> u64 {
    let size = v
        .as_sizer()
        .map(|s| u64::try_from(*s.size().inner()).unwrap_or(0))
        .unwrap_or(0);
    1 + size / 10
}

/// The overload of [`COST_FN`]: charges the step and hands its value back unchanged, or
/// fails once the budget or the deadline is spent.
fn charge<'b, 'v>(mut args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let Some(v) = args.pop() else {
        return Err(ExecutionError::invalid_argument_count(1, 0));
    };
    if let Some(mut b) = BUDGET.get() {
        let cost = step_cost(&v);
        b.used = b.used.saturating_add(cost);
        if b.exceeded || cost > b.left || Instant::now() > b.deadline {
            b.exceeded = true;
            b.left = 0;
            BUDGET.set(Some(b));
            return Err(ExecutionError::function_error(
                "cost",
                "operation cancelled: actual cost limit exceeded",
            ));
        }
        b.left -= cost;
        BUDGET.set(Some(b));
    }
    Ok(v)
}

/// `e` wrapped in a call of [`COST_FN`].
fn charged(e: &mut IdedExpr) {
    let inner = std::mem::take(e);
    e.id = inner.id;
    e.expr = Expr::Call(CallExpr {
        func_name: COST_FN.to_string(),
        target: None,
        args: vec![inner],
    });
}

/// Wraps what each comprehension evaluates once per iteration in a charge. The `map` and
/// `filter` shape (`@result + [x]`, maybe guarded) is kept as it is, so the interpreter
/// still appends in place: there the guard or the appended elements are charged.
fn instrument(e: &mut IdedExpr) {
    match &mut e.expr {
        Expr::Call(call) => {
            if let Some(t) = call.target.as_deref_mut() {
                instrument(t);
            }
            for a in &mut call.args {
                instrument(a);
            }
        }
        Expr::Comprehension(c) => {
            instrument(&mut c.iter_range);
            instrument(&mut c.accu_init);
            instrument(&mut c.loop_cond);
            instrument(&mut c.loop_step);
            instrument(&mut c.result);
            instrument_comprehension(c);
        }
        Expr::List(l) => l.elements.iter_mut().for_each(instrument),
        Expr::Map(m) => {
            for entry in &mut m.entries {
                if let EntryExpr::MapEntry(me) = &mut entry.expr {
                    instrument(&mut me.key);
                    instrument(&mut me.value);
                }
            }
        }
        Expr::Struct(s) => {
            for entry in &mut s.entries {
                if let EntryExpr::StructField(f) = &mut entry.expr {
                    instrument(&mut f.value);
                }
            }
        }
        Expr::Select(s) => instrument(&mut s.operand),
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
    }
}

/// Charges one comprehension's iterations (its parts are already instrumented).
fn instrument_comprehension(c: &mut ComprehensionExpr) {
    let accu = c.accu_var.clone();
    let is_accu = |e: &IdedExpr| matches!(&e.expr, Expr::Ident(n) if *n == accu);
    let append_shape = is_accu(&c.result) && matches!(c.loop_cond.expr, Expr::Literal(_));
    if append_shape {
        // `cond ? @result + [x] : @result` charges its guard; `@result + [x]` its elements.
        if let Expr::Call(call) = &mut c.loop_step.expr {
            if call.func_name == operators::CONDITIONAL
                && call.args.len() == 3
                && is_accu(&call.args[2])
            {
                charged(&mut call.args[0]);
                return;
            }
            if call.func_name == operators::ADD
                && call.args.len() == 2
                && is_accu(&call.args[0])
                && let Expr::List(list) = &mut call.args[1].expr
                && !list.elements.is_empty()
            {
                list.elements.iter_mut().for_each(charged);
                return;
            }
        }
    }
    charged(&mut c.loop_cond);
    charged(&mut c.loop_step);
}

/// A JSON value (an object as the API server stores it) as a CEL value.
pub fn from_json(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::Int(i)
            } else if let Some(u) = n.as_u64() {
                Value::UInt(u)
            } else {
                Value::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        serde_json::Value::String(s) => Value::String(Arc::new(s.clone())),
        serde_json::Value::Array(items) => {
            Value::List(Arc::new(items.iter().map(from_json).collect()))
        }
        serde_json::Value::Object(m) => {
            let map: HashMap<String, Value> =
                m.iter().map(|(k, v)| (k.clone(), from_json(v))).collect();
            Value::from(map)
        }
    }
}

/// A map from string keys, for the variables an environment builds (`request`,
/// `variables`).
pub fn map_of(entries: Vec<(String, Value)>) -> Value {
    Value::from(entries.into_iter().collect::<HashMap<String, Value>>())
}

/// The stack that parsing and evaluation run on: the parser and the interpreter
/// recurse once per nesting level, more than a request handler's thread allows for the
/// deepest nesting cel-go accepts. Only the pages used are touched.
const DEEP_STACK_BYTES: usize = 64 << 20;

thread_local! {
    /// Set on the threads [`with_deep_stack`] starts.
    static ON_DEEP_STACK: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` on a thread with a stack deep enough for any expression (at once when
/// already on one). `None` when no thread could be started or `f` panicked.
pub fn with_deep_stack<T: Send>(f: impl FnOnce() -> T + Send) -> Option<T> {
    if ON_DEEP_STACK.get() {
        return std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).ok();
    }
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("cel".into())
            .stack_size(DEEP_STACK_BYTES)
            .spawn_scoped(scope, || {
                ON_DEEP_STACK.set(true);
                f()
            })
            .ok()
            .and_then(|t| t.join().ok())
    })
}

#[cfg(test)]
mod tests;
