//! CEL expressions of admission objects (upstream compiles each one with cel-go and
//! reports `compilation failed: …`). The `cel` crate's parser mirrors cel-go's grammar
//! and error texts, so syntax errors read as upstream's; on top of that, references to
//! variables the admission environment does not declare (`self`, a misspelt `objct`)
//! are reported the way cel-go's checker words them. Type checking (return types,
//! overloads, field names) and cost estimation are not done here.

use std::cell::Cell;
use std::panic::AssertUnwindSafe;

use cel::common::ast::{EntryExpr, Expr, IdedExpr, SourceInfo};
use cel::parser::Parser;
use k1s_apimachinery::{ErrorList, FieldError, Path};

/// Which optional variables an expression may use (upstream's
/// `OptionalVariableDeclarations`, plus `variables` for policies that declare some).
#[derive(Debug, Clone, Copy, Default)]
pub struct Vars {
    /// `params` (the policy has a paramKind).
    pub params: bool,
    /// `authorizer` (all expressions but messageExpression).
    pub authorizer: bool,
    /// `variables` (the policy declares spec.variables).
    pub variables: bool,
}

/// Which environment an expression is checked in.
#[derive(Debug, Clone, Copy)]
enum Mode<'a> {
    /// An admission expression (policies, webhook match conditions).
    Admission(Vars),
    /// A DRA device selector (`resource.k8s.io`): only `device` is declared.
    Device,
    /// A CRD `x-kubernetes-validations` rule: `self` (typed by `schema`, the raw schema
    /// node the rule sits on) and, for transition rules, `oldSelf`.
    Rule {
        /// The schema node of `self`.
        schema: &'a serde_json::Value,
        /// Whether it is the root of a custom resource (`apiVersion`, `kind` and
        /// `metadata` are there without being declared).
        root: bool,
    },
}

/// cel-go's limits on nesting, raised from the `cel` crate's default so that no
/// expression upstream accepts is refused for depth.
const MAX_RECURSION_DEPTH: u16 = 250;

/// cel-go keeps the first this many issues it finds, then only counts the rest.
const MAX_ERRORS_TO_REPORT: usize = 100;

/// Identifiers that name types and so resolve in any environment (`type(x) == int`).
const TYPE_IDENTS: &[&str] = &[
    "bool",
    "bytes",
    "double",
    "dyn",
    "int",
    "list",
    "map",
    "null_type",
    "string",
    "type",
    "uint",
    "optional_type",
];

/// The namespaces of the functions the Kubernetes CEL libraries declare
/// (`math.greatest`, `strings.quote`, `ip.isCanonical`, `format.dns1123Label`, …).
const FUNCTION_NAMESPACES: &[&str] = &[
    "base64",
    "cel",
    "cidr",
    "format",
    "ip",
    "jsonpatch",
    "lists",
    "math",
    "optional",
    "sets",
    "strings",
];

/// One issue: a 1-based line and column (0 for none) and the message.
struct Issue {
    line: usize,
    column: usize,
    message: String,
}

/// cel-go's `Errors`: the first `MAX_ERRORS_TO_REPORT` issues in the order they were
/// found, and how many there were in all.
#[derive(Default)]
struct Issues {
    kept: Vec<Issue>,
    total: usize,
}

impl Issues {
    /// Counts an issue and keeps it while fewer than the limit are kept; `issue` is
    /// only built then, so the ones past the limit cost nothing but the count.
    fn report(&mut self, issue: impl FnOnce() -> Issue) {
        self.total += 1;
        if self.kept.len() < MAX_ERRORS_TO_REPORT {
            self.kept.push(issue());
        }
    }
}

/// The `Invalid value` upstream reports when `expression` does not compile (the error
/// shows `shown`, the text as the user wrote it), or nothing.
pub fn check(expression: &str, shown: &str, vars: Vars, path: &Path) -> ErrorList {
    match compile_error(expression, vars) {
        Some(detail) => vec![FieldError::invalid(path, shown, detail)],
        None => ErrorList::new(),
    }
}

/// The stack a parse runs on: ANTLR's recursive descent needs a few MiB for the deepest
/// nesting cel-go allows in unoptimised builds, more than a request handler's thread
/// has. Only the pages used are ever touched.
const PARSE_STACK_BYTES: usize = 64 << 20;

thread_local! {
    /// Set on the threads `on_parse_stack` starts: their stack is `PARSE_STACK_BYTES`,
    /// so expressions are parsed right there instead of on a thread of their own.
    static ON_PARSE_STACK: Cell<bool> = const { Cell::new(false) };
}

/// Runs `validate` (the checks of one object) on a thread with a stack deep enough for
/// any expression, so that all the object's expressions share one thread instead of
/// starting one each.
pub fn on_parse_stack<T: Send>(validate: impl Fn() -> T + Sync) -> T {
    if ON_PARSE_STACK.get() {
        return validate();
    }
    let joined = std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("cel-parse".into())
            .stack_size(PARSE_STACK_BYTES)
            .spawn_scoped(scope, || {
                ON_PARSE_STACK.set(true);
                validate()
            })
            .ok()
            .map(|thread| thread.join())
    });
    match joined {
        Some(Ok(done)) => done,
        Some(Err(panic)) => std::panic::resume_unwind(panic),
        // No thread to be had: here each expression asks for its own, and is reported
        // as unparsed when it gets none.
        None => validate(),
    }
}

/// `compilation failed: ERROR: <input>:1:8: …` when `expression` does not compile.
pub fn compile_error(expression: &str, vars: Vars) -> Option<String> {
    compile_error_in(expression, Mode::Admission(vars))
}

/// `compilation failed: …` when the CRD rule `expression` on schema node `schema` does
/// not compile: a syntax error, an undeclared reference or function, or a field the
/// schema does not declare (cel-go's `undefined field`).
pub fn rule_compile_error(
    expression: &str,
    schema: &serde_json::Value,
    root: bool,
) -> Option<String> {
    compile_error_in(expression, Mode::Rule { schema, root })
}

/// `compilation failed: …` when the DRA device selector `expression` does not compile
/// (a syntax error, or a reference to anything but `device`).
pub fn device_selector_compile_error(expression: &str) -> Option<String> {
    compile_error_in(expression, Mode::Device)
}

/// `compilation failed: …` when `expression` does not compile in `mode`.
fn compile_error_in(expression: &str, mode: Mode<'_>) -> Option<String> {
    let parse = || issues(expression, mode);
    let issues = if ON_PARSE_STACK.get() {
        // A panic in the parser stays with this expression, as it does on a thread of
        // its own below.
        std::panic::catch_unwind(AssertUnwindSafe(parse)).ok()
    } else {
        std::thread::scope(|scope| {
            std::thread::Builder::new()
                .name("cel-parse".into())
                .stack_size(PARSE_STACK_BYTES)
                .spawn_scoped(scope, parse)
                .ok()
                .and_then(|parse| parse.join().ok())
        })
    };
    let mut issues = issues.unwrap_or_else(|| {
        // The parser failed rather than refusing the text: report it instead of storing
        // an expression nobody has checked.
        let mut failed = Issues::default();
        failed.report(|| Issue {
            line: 0,
            column: 0,
            message: "the expression could not be parsed".into(),
        });
        failed
    });
    if issues.total == 0 {
        return None;
    }
    // cel-go sorts the issues it kept (stably), not all it found.
    issues.kept.sort_by_key(|i| (i.line, i.column));
    Some(format!(
        "compilation failed: {}",
        display(expression, &issues)
    ))
}

/// What cel-go's parser and (as far as variables go) its checker report.
fn issues(expression: &str, mode: Mode<'_>) -> Issues {
    let parsed = Parser::new()
        .enable_optional_syntax(true)
        .enable_ident_escape_syntax(true)
        .max_recursion_depth(MAX_RECURSION_DEPTH)
        .parse_with_source_info(expression);
    match parsed {
        Err(errs) => {
            if errs
                .errors
                .iter()
                .any(|e| e.msg.contains("Recursion limit of"))
            {
                // cel-go reports this one without a location.
                let mut found = Issues::default();
                found.report(|| Issue {
                    line: 0,
                    column: 0,
                    message: format!("expression recursion limit exceeded: {MAX_RECURSION_DEPTH}"),
                });
                return found;
            }
            let mut found = Issues::default();
            for e in &errs.errors {
                found.report(|| Issue {
                    line: usize::try_from(e.pos.0).unwrap_or(1).max(1),
                    column: usize::try_from(e.pos.1).unwrap_or(1).max(1),
                    message: e.msg.clone(),
                });
            }
            found
        }
        Ok((ast, info)) => {
            let (line_starts, chars) = line_starts(&info.source);
            let mut walk = Walk {
                info: &info,
                line_starts,
                chars,
                mode,
                scope: Vec::new(),
                found: Issues::default(),
            };
            walk.undeclared(&ast);
            walk.found
        }
    }
}

/// cel-go's `Errors.ToDisplayString`: each issue with its source line and a caret.
fn display(source: &str, issues: &Issues) -> String {
    let lines: Vec<&str> = source.split('\n').collect();
    let mut out: Vec<String> = issues
        .kept
        .iter()
        .map(|issue| {
            if issue.line == 0 {
                // cel-go's `NoLocation`.
                return format!("ERROR: <input>:-1:0: {}", issue.message);
            }
            let mut s = format!(
                "ERROR: <input>:{}:{}: {}",
                issue.line, issue.column, issue.message
            );
            if let Some(line) = lines.get(issue.line - 1) {
                let snippet = line.trim_end_matches('\r').replace('\t', " ");
                s.push_str("\n | ");
                s.push_str(&snippet);
                s.push_str("\n | ");
                let mut chars = snippet.chars();
                for _ in 1..issue.column {
                    match chars.next() {
                        // Wide characters get a full-width dot so the caret lines up.
                        Some(c) if c.len_utf8() > 1 => s.push('\u{ff0e}'),
                        Some(_) => s.push('.'),
                        None => break,
                    }
                }
                match chars.next() {
                    Some(c) if c.len_utf8() > 1 => s.push('\u{ff3e}'),
                    _ => s.push('^'),
                }
            }
            s
        })
        .collect();
    if issues.total > MAX_ERRORS_TO_REPORT {
        out.push(format!(
            "{} more errors were truncated",
            issues.total - MAX_ERRORS_TO_REPORT
        ));
    }
    out.join("\n")
}

/// Whether `name` is declared at the top of the environment of `mode`.
fn declared(name: &str, mode: Mode<'_>) -> bool {
    let vars = match mode {
        Mode::Admission(vars) => vars,
        Mode::Rule { .. } => {
            return matches!(name, "self" | "oldSelf") || TYPE_IDENTS.contains(&name);
        }
        Mode::Device => return name == "device" || TYPE_IDENTS.contains(&name),
    };
    match name {
        "object" | "oldObject" | "namespaceObject" | "request" => true,
        "params" => vars.params,
        "authorizer" => vars.authorizer,
        "variables" => vars.variables,
        _ => TYPE_IDENTS.contains(&name),
    }
}

/// The character index at which each line of `source` starts, and the number of
/// characters.
fn line_starts(source: &str) -> (Vec<usize>, usize) {
    let mut starts = vec![0];
    let mut chars = 0;
    for (i, c) in source.chars().enumerate() {
        if c == '\n' {
            starts.push(i + 1);
        }
        chars = i + 1;
    }
    (starts, chars)
}

/// The walk that finds undeclared references: the expression's offsets, its line
/// starts (computed once, so each issue's position is a binary search rather than a
/// scan of the source), the names in scope and the issues found.
struct Walk<'a> {
    info: &'a SourceInfo,
    line_starts: Vec<usize>,
    chars: usize,
    mode: Mode<'a>,
    scope: Vec<String>,
    found: Issues,
}

impl Walk<'_> {
    /// The 1-based line and column of expression `id` (cel-go counts columns in
    /// characters; the parser's offsets are character indexes).
    fn position(&self, id: u64) -> (usize, usize) {
        let Some((start, _)) = self.info.offset_for(id) else {
            return (1, 1);
        };
        let start = usize::try_from(start).map_or(self.chars, |s| s.min(self.chars));
        // `line_starts[0]` is 0, so at least one start is at or before `start`.
        let line = self.line_starts.partition_point(|&s| s <= start).max(1);
        let line_start = self.line_starts.get(line - 1).copied().unwrap_or(0);
        (line, start - line_start + 1)
    }

    /// Reports a call of a function no library declares.
    fn undeclared_function(&mut self, id: u64, call: &cel::common::ast::CallExpr) {
        let name = call.func_name.as_str();
        // Operators and the calls macros expand to are not written by the user.
        if name.starts_with(['_', '@', '!']) || name.is_empty() {
            return;
        }
        let qualified = match call.target.as_deref().map(|t| &t.expr) {
            Some(Expr::Ident(ns)) if FUNCTION_NAMESPACES.contains(&ns.as_str()) => {
                format!("{ns}.{name}")
            }
            _ => name.to_string(),
        };
        if k1s_cel::is_function(&qualified) || k1s_cel::is_function(name) {
            return;
        }
        let (line, column) = self.position(id);
        self.found.report(|| Issue {
            line,
            column,
            message: format!("undeclared reference to '{qualified}' (in container '')"),
        });
    }

    /// In a CRD rule, reports `self.x` (or deeper) where the schema declares no `x`.
    fn undefined_field(&mut self, e: &IdedExpr) {
        let Mode::Rule { schema, root } = self.mode else {
            return;
        };
        // The chain of field names from `self` down to this select.
        let mut fields = Vec::new();
        let mut cur = e;
        loop {
            match &cur.expr {
                Expr::Select(sel) => {
                    fields.push(sel.field.as_str());
                    cur = &sel.operand;
                }
                Expr::Ident(n) if n == "self" || n == "oldSelf" => break,
                _ => return,
            }
        }
        if self.scope.iter().any(|s| s == "self" || s == "oldSelf") {
            return;
        }
        fields.reverse();
        let mut node = schema;
        for (depth, field) in fields.iter().enumerate() {
            let Some(map) = node.as_object() else {
                return;
            };
            let preserves = map
                .get("x-kubernetes-preserve-unknown-fields")
                .and_then(serde_json::Value::as_bool)
                == Some(true);
            if let Some(extra) = map.get("additionalProperties").filter(|a| a.is_object()) {
                node = extra;
                continue;
            }
            let props = map.get("properties").and_then(serde_json::Value::as_object);
            match props.and_then(|p| p.get(*field)) {
                Some(next) => node = next,
                None => {
                    let embeds = (root && depth == 0)
                        || map
                            .get("x-kubernetes-embedded-resource")
                            .and_then(serde_json::Value::as_bool)
                            == Some(true);
                    let embedded = embeds && matches!(*field, "apiVersion" | "kind" | "metadata");
                    let is_object =
                        map.get("type").and_then(serde_json::Value::as_str) == Some("object");
                    if preserves || embedded || !is_object {
                        return;
                    }
                    // Only the outermost select reports, as cel-go stops at the first.
                    if depth + 1 == fields.len() {
                        let (line, column) = self.position(e.id);
                        self.found.report(|| Issue {
                            line,
                            column,
                            message: format!("undefined field '{field}'"),
                        });
                    }
                    return;
                }
            }
        }
    }

    /// Reports each identifier that neither the environment nor an enclosing
    /// comprehension declares.
    fn undeclared(&mut self, e: &IdedExpr) {
        match &e.expr {
            Expr::Ident(name) => {
                if !declared(name, self.mode) && !self.scope.iter().any(|s| s == name) {
                    let (line, column) = self.position(e.id);
                    self.found.report(|| Issue {
                        line,
                        column,
                        message: format!("undeclared reference to '{name}' (in container '')"),
                    });
                }
            }
            Expr::Select(sel) => {
                self.undefined_field(e);
                self.undeclared(&sel.operand)
            }
            Expr::Call(call) => {
                self.undeclared_function(e.id, call);
                // A call on a bare name may be a namespaced function (`math.greatest`,
                // `cel.bind`, `optional.of`), which the checker resolves by its
                // qualified name before it looks for a variable.
                if let Some(target) = &call.target {
                    match &target.expr {
                        Expr::Ident(name) if FUNCTION_NAMESPACES.contains(&name.as_str()) => {}
                        _ => self.undeclared(target),
                    }
                }
                // Leading bare names of a call with more arguments are the loop
                // variables of macros this parser does not expand (two-variable
                // comprehensions, `cel.bind`, `sortBy`): they are in scope for the
                // arguments after them.
                let mut bound = 0;
                if let Some((_, leading)) = call.args.split_last() {
                    for arg in leading {
                        match &arg.expr {
                            Expr::Ident(name) => {
                                self.scope.push(name.clone());
                                bound += 1;
                            }
                            _ => break,
                        }
                    }
                }
                for arg in call.args.iter().skip(bound) {
                    self.undeclared(arg);
                }
                self.scope.truncate(self.scope.len() - bound);
            }
            Expr::Comprehension(c) => {
                self.undeclared(&c.iter_range);
                self.undeclared(&c.accu_init);
                let mark = self.scope.len();
                self.scope.push(c.accu_var.clone());
                self.undeclared(&c.result);
                self.scope.push(c.iter_var.clone());
                if let Some(v) = &c.iter_var2 {
                    self.scope.push(v.clone());
                }
                self.undeclared(&c.loop_cond);
                self.undeclared(&c.loop_step);
                self.scope.truncate(mark);
            }
            Expr::List(list) => {
                for el in &list.elements {
                    self.undeclared(el);
                }
            }
            Expr::Map(map) => {
                for entry in &map.entries {
                    if let EntryExpr::MapEntry(m) = &entry.expr {
                        self.undeclared(&m.key);
                        self.undeclared(&m.value);
                    }
                }
            }
            Expr::Struct(st) => {
                for entry in &st.entries {
                    if let EntryExpr::StructField(f) = &entry.expr {
                        self.undeclared(&f.value);
                    }
                }
            }
            Expr::Literal(_) | Expr::Unspecified => {}
        }
    }
}

/// Upstream's `isCELIdentifier`: `[_a-zA-Z][_a-zA-Z0-9]*` and not a reserved word.
pub fn is_cel_identifier(name: &str) -> bool {
    const RESERVED: &[&str] = &[
        "true",
        "false",
        "null",
        "in",
        "as",
        "break",
        "const",
        "continue",
        "else",
        "for",
        "function",
        "if",
        "import",
        "let",
        "loop",
        "package",
        "namespace",
        "return",
        "var",
        "void",
        "while",
    ];
    let b = name.as_bytes();
    matches!(b.first(), Some(c) if c.is_ascii_alphabetic() || *c == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
        && !RESERVED.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: Vars = Vars {
        params: true,
        authorizer: true,
        variables: true,
    };

    #[test]
    fn expressions_from_the_docs_compile() {
        for ok in [
            "object.spec.replicas <= 5",
            "object.spec.replicas <= params.maxReplicas",
            "has(object.metadata.labels) && 'env' in object.metadata.labels",
            "object.spec.template.spec.containers.all(c, c.image.startsWith('registry.example.com/'))",
            "object.spec.containers.exists_one(c, c.name == 'x')",
            "[1, 2].map(x, x * 2).filter(y, y > 2).size() == 1",
            "cel.bind(x, object.spec, x.replicas > 1)",
            "object.metadata.labels.all(k, v, k != '' && v != '')",
            "math.greatest(1, 2) == 2 && optional.of(1).hasValue()",
            "sets.contains([1, 2], [1]) && strings.quote('a') != '' && lists.range(2).size() == 2",
            "format.dns1123Label().validate('a').hasValue() == false && ip.isCanonical('127.0.0.1')",
            "base64.encode(b'a') != '' && jsonpatch.escapeKey('a/b') == 'a~1b'",
            "object.?spec.?replicas.orValue(1) > 0",
            "type(object) == map && int('1') == 1",
            "request.userInfo.username != 'system:anonymous' && authorizer.group('apps').resource('deployments').check('get').allowed()",
            "variables.foo == 'bar'",
            "namespaceObject.metadata.name != 'kube-system' || oldObject == null",
            "{'a': 1}.a == 1 && [1, 2][0] == 1",
            "request.namespace != 'kube-system' && object.metadata.namespace == request.namespace",
            "object.metadata.name.matches('^[a-z]+$') ? r'raw\\d' != '' : b'\\x00' == b''",
            "object.spec.containers.map(c, c.name).exists_one(n, n == 'app') && object.spec.?tolerations.orValue([]).size() >= 0",
            "object.`dashed-field` == 1 || !(object.x in [1, 2]) && -1 < 2 + 0 == true",
        ] {
            let got = compile_error(ok, ALL);
            assert!(got.is_none(), "{ok}: {got:?}");
        }
    }

    #[test]
    fn syntax_errors_read_like_cel_go() {
        let got = compile_error("object.spec.replicas <", ALL).unwrap_or_default();
        assert!(
            got.starts_with("compilation failed: ERROR: <input>:1:23: Syntax error: mismatched input '<EOF>' expecting"),
            "{got}"
        );
        assert!(
            got.ends_with("\n | object.spec.replicas <\n | ......................^"),
            "{got}"
        );
    }

    #[test]
    fn undeclared_references_are_reported() {
        let got = compile_error("self.spec.replicas > 1", ALL).unwrap_or_default();
        assert_eq!(
            got,
            "compilation failed: ERROR: <input>:1:1: undeclared reference to 'self' (in container '')\n | self.spec.replicas > 1\n | ^"
        );
        let none = Vars::default();
        assert!(compile_error("params.x == 1", none).is_some());
        assert!(compile_error("authorizer.serviceAccount('a', 'b')", none).is_some());
        assert!(compile_error("[1].all(x, x > 0 && y)", ALL).is_some());
    }

    #[test]
    fn deep_nesting_is_refused_without_exhausting_a_worker_stack() {
        // Request handlers run on 2 MiB worker threads.
        let run = |depth: usize| {
            let expr = format!("{}1{}", "(".repeat(depth), ")".repeat(depth));
            std::thread::Builder::new()
                .stack_size(2 << 20)
                .spawn(move || compile_error(&expr, ALL))
                .map(|h| h.join().ok().flatten())
        };
        assert_eq!(run(100).ok(), Some(None));
        let deep = run(100_000).ok().flatten().unwrap_or_default();
        assert_eq!(
            deep,
            "compilation failed: ERROR: <input>:-1:0: expression recursion limit exceeded: 250"
        );
        assert_eq!(run(250).ok(), Some(None));
    }

    #[test]
    fn an_object_s_expressions_share_one_deep_stack() {
        // From a 2 MiB thread, as request handlers are: the expressions parse on the one
        // thread `on_parse_stack` starts, deep nesting included.
        let deep = format!("{}1{}", "(".repeat(100_000), ")".repeat(100_000));
        let run = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || {
                on_parse_stack(|| {
                    let here = std::thread::current().id();
                    let nested = on_parse_stack(|| std::thread::current().id());
                    (
                        ON_PARSE_STACK.get() && nested == here,
                        compile_error("object.spec.replicas < 5", ALL),
                        compile_error(&deep, ALL),
                    )
                })
            })
            .map(|h| h.join().ok());
        let Ok(Some((one_thread, ok, deep))) = run else {
            panic!("the validation thread failed");
        };
        assert!(one_thread);
        assert_eq!(ok, None);
        assert_eq!(
            deep.as_deref(),
            Some(
                "compilation failed: ERROR: <input>:-1:0: expression recursion limit exceeded: 250"
            )
        );
    }

    #[test]
    fn many_issues_are_counted_past_the_hundred_shown() {
        // 20,000 undeclared names over 4,000 lines: each position is found without
        // rescanning the source, and only the first hundred are kept (cel-go's
        // `Errors`), sorted; the rest are counted.
        let line = ["zz"; 5].join(", ");
        let source = format!("[{}]", vec![line.as_str(); 4000].join(",\n"));
        let got = compile_error(&source, ALL).unwrap_or_default();
        let lines: Vec<&str> = got.lines().collect();
        assert_eq!(lines.len(), 100 * 3 + 1);
        assert_eq!(lines[300], "19900 more errors were truncated");
        assert_eq!(
            lines[0],
            "compilation failed: ERROR: <input>:1:2: undeclared reference to 'zz' (in container '')"
        );
        assert_eq!(
            lines[297],
            "ERROR: <input>:20:17: undeclared reference to 'zz' (in container '')"
        );
        assert_eq!(lines[298], " | zz, zz, zz, zz, zz,");
        assert_eq!(lines[299], " | ................^");
    }

    #[test]
    fn cel_identifiers() {
        assert!(is_cel_identifier("foo_1") && is_cel_identifier("_x"));
        assert!(!is_cel_identifier("1x") && !is_cel_identifier("in") && !is_cel_identifier("a-b"));
    }
}
