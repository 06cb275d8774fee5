//! CEL expressions of admission objects (upstream compiles each one with cel-go and
//! reports `compilation failed: …`). The `cel` crate's parser mirrors cel-go's grammar
//! and error texts, so syntax errors read as upstream's; on top of that, references to
//! variables the admission environment does not declare (`self`, a misspelt `objct`)
//! are reported the way cel-go's checker words them. Type checking (return types,
//! overloads, field names) and cost estimation are not done here.

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

/// cel-go's limits on nesting, raised from the `cel` crate's default so that no
/// expression upstream accepts is refused for depth.
const MAX_RECURSION_DEPTH: u16 = 250;

/// cel-go reports at most this many issues, then how many it left out.
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

/// `compilation failed: ERROR: <input>:1:8: …` when `expression` does not compile.
pub fn compile_error(expression: &str, vars: Vars) -> Option<String> {
    let issues = std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("cel-parse".into())
            .stack_size(PARSE_STACK_BYTES)
            .spawn_scoped(scope, || issues(expression, vars))
            .ok()
            .and_then(|parse| parse.join().ok())
    });
    let mut issues = issues.unwrap_or_else(|| {
        // The parser failed rather than refusing the text: report it instead of storing
        // an expression nobody has checked.
        vec![Issue {
            line: 0,
            column: 0,
            message: "the expression could not be parsed".into(),
        }]
    });
    if issues.is_empty() {
        return None;
    }
    issues.sort_by_key(|i| (i.line, i.column));
    Some(format!(
        "compilation failed: {}",
        display(expression, &issues)
    ))
}

/// What cel-go's parser and (as far as variables go) its checker report.
fn issues(expression: &str, vars: Vars) -> Vec<Issue> {
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
                return vec![Issue {
                    line: 0,
                    column: 0,
                    message: format!("expression recursion limit exceeded: {MAX_RECURSION_DEPTH}"),
                }];
            }
            errs.errors
                .iter()
                .map(|e| Issue {
                    line: usize::try_from(e.pos.0).unwrap_or(1).max(1),
                    column: usize::try_from(e.pos.1).unwrap_or(1).max(1),
                    message: e.msg.clone(),
                })
                .collect()
        }
        Ok((ast, info)) => {
            let mut found = Vec::new();
            let mut scope = Vec::new();
            undeclared(&ast, &info, vars, &mut scope, &mut found);
            found
        }
    }
}

/// cel-go's `Errors.ToDisplayString`: each issue with its source line and a caret.
fn display(source: &str, issues: &[Issue]) -> String {
    let lines: Vec<&str> = source.split('\n').collect();
    let mut out: Vec<String> = issues
        .iter()
        .take(MAX_ERRORS_TO_REPORT)
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
    if issues.len() > MAX_ERRORS_TO_REPORT {
        out.push(format!(
            "{} more errors were truncated",
            issues.len() - MAX_ERRORS_TO_REPORT
        ));
    }
    out.join("\n")
}

/// Whether `name` is declared at the top of the admission environment.
fn declared(name: &str, vars: Vars) -> bool {
    match name {
        "object" | "oldObject" | "namespaceObject" | "request" => true,
        "params" => vars.params,
        "authorizer" => vars.authorizer,
        "variables" => vars.variables,
        _ => TYPE_IDENTS.contains(&name),
    }
}

/// The 1-based line and column of expression `id` (cel-go counts columns in
/// characters).
fn position(info: &SourceInfo, id: u64) -> (usize, usize) {
    let Some((start, _)) = info.offset_for(id) else {
        return (1, 1);
    };
    let mut line = 1;
    let mut column = 1;
    for (i, c) in info.source.chars().enumerate() {
        if i as u64 >= u64::from(start) {
            break;
        }
        if c == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    (line, column)
}

/// Reports each identifier that neither the environment nor an enclosing
/// comprehension declares.
fn undeclared(
    e: &IdedExpr,
    info: &SourceInfo,
    vars: Vars,
    scope: &mut Vec<String>,
    found: &mut Vec<Issue>,
) {
    match &e.expr {
        Expr::Ident(name) => {
            if !declared(name, vars) && !scope.iter().any(|s| s == name) {
                let (line, column) = position(info, e.id);
                found.push(Issue {
                    line,
                    column,
                    message: format!("undeclared reference to '{name}' (in container '')"),
                });
            }
        }
        Expr::Select(sel) => undeclared(&sel.operand, info, vars, scope, found),
        Expr::Call(call) => {
            // A call on a bare name may be a namespaced function (`math.greatest`,
            // `cel.bind`, `optional.of`), which the checker resolves by its qualified
            // name before it looks for a variable.
            if let Some(target) = &call.target {
                match &target.expr {
                    Expr::Ident(name) if FUNCTION_NAMESPACES.contains(&name.as_str()) => {}
                    _ => undeclared(target, info, vars, scope, found),
                }
            }
            // Leading bare names of a call with more arguments are the loop variables of
            // macros this parser does not expand (two-variable comprehensions,
            // `cel.bind`, `sortBy`): they are in scope for the arguments after them.
            let mut bound = 0;
            if call.args.len() >= 2 {
                for arg in &call.args[..call.args.len() - 1] {
                    match &arg.expr {
                        Expr::Ident(name) => {
                            scope.push(name.clone());
                            bound += 1;
                        }
                        _ => break,
                    }
                }
            }
            for arg in &call.args[bound..] {
                undeclared(arg, info, vars, scope, found);
            }
            scope.truncate(scope.len() - bound);
        }
        Expr::Comprehension(c) => {
            undeclared(&c.iter_range, info, vars, scope, found);
            undeclared(&c.accu_init, info, vars, scope, found);
            let mark = scope.len();
            scope.push(c.accu_var.clone());
            undeclared(&c.result, info, vars, scope, found);
            scope.push(c.iter_var.clone());
            if let Some(v) = &c.iter_var2 {
                scope.push(v.clone());
            }
            undeclared(&c.loop_cond, info, vars, scope, found);
            undeclared(&c.loop_step, info, vars, scope, found);
            scope.truncate(mark);
        }
        Expr::List(list) => {
            for el in &list.elements {
                undeclared(el, info, vars, scope, found);
            }
        }
        Expr::Map(map) => {
            for entry in &map.entries {
                if let EntryExpr::MapEntry(m) = &entry.expr {
                    undeclared(&m.key, info, vars, scope, found);
                    undeclared(&m.value, info, vars, scope, found);
                }
            }
        }
        Expr::Struct(st) => {
            for entry in &st.entries {
                if let EntryExpr::StructField(f) = &entry.expr {
                    undeclared(&f.value, info, vars, scope, found);
                }
            }
        }
        Expr::Literal(_) | Expr::Unspecified => {}
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
    fn cel_identifiers() {
        assert!(is_cel_identifier("foo_1") && is_cel_identifier("_x"));
        assert!(!is_cel_identifier("1x") && !is_cel_identifier("in") && !is_cel_identifier("a-b"));
    }
}
