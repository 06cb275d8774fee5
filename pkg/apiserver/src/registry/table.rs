//! Table output (`Accept: application/json;as=Table;g=meta.k8s.io;v=v1`): the columns a
//! kind shows in `kubectl get` and the cells of each object. Built-in kinds use the
//! printers; custom resources use their CRD's `additionalPrinterColumns`.

use serde_json::{Map, Value, json};

use crate::meta;
use crate::printers;

/// One column of a custom resource (from `additionalPrinterColumns`).
#[derive(Debug, Clone)]
pub struct CustomColumn {
    /// Header.
    pub name: String,
    /// OpenAPI type (`string`, `integer`, `date`, …).
    pub ty: String,
    /// Format (`name` for the name column).
    pub format: String,
    /// Description.
    pub description: String,
    /// 0 = always shown, 1 = `-o wide` only.
    pub priority: i64,
    /// JSONPath of the cell, e.g. `.spec.replicas`.
    pub json_path: String,
}

/// How a resource turns into a table.
#[derive(Debug, Clone)]
pub enum TablePrinter {
    /// The built-in printer of a group and kind.
    Builtin {
        /// Group.
        group: String,
        /// Kind.
        kind: String,
    },
    /// Name, the CRD's columns, Age.
    Custom(Vec<CustomColumn>),
}

impl TablePrinter {
    /// The printer upstream has for a built-in kind (default columns otherwise).
    pub fn builtin(group: &str, kind: &str) -> Self {
        TablePrinter::Builtin {
            group: group.to_string(),
            kind: kind.to_string(),
        }
    }

    /// `columnDefinitions` of the table.
    pub fn column_definitions(&self) -> Vec<Value> {
        match self {
            TablePrinter::Builtin { group, kind } => printers::columns(group, kind)
                .iter()
                .map(|c| {
                    json!({
                        "name": c.name, "type": c.ty, "format": c.format,
                        "description": c.description, "priority": c.priority,
                    })
                })
                .collect(),
            TablePrinter::Custom(cols) => {
                let mut out = vec![json!({
                    "name": "Name", "type": "string", "format": "name",
                    "description": NAME_DESCRIPTION, "priority": 0,
                })];
                let has_age = cols
                    .iter()
                    .any(|c| c.json_path == ".metadata.creationTimestamp");
                out.extend(cols.iter().map(|c| {
                    json!({
                        "name": c.name, "type": c.ty, "format": c.format,
                        "description": c.description, "priority": c.priority,
                    })
                }));
                if !has_age {
                    out.push(json!({
                        "name": "Age", "type": "date", "format": "",
                        "description": CREATION_DESCRIPTION, "priority": 0,
                    }));
                }
                out
            }
        }
    }

    /// The cells of one object's row.
    pub fn cells(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        match self {
            TablePrinter::Builtin { group, kind } => printers::row(group, kind, obj, now),
            TablePrinter::Custom(cols) => {
                let mut cells = vec![json!(meta::name(obj))];
                let has_age = cols
                    .iter()
                    .any(|c| c.json_path == ".metadata.creationTimestamp");
                for c in cols {
                    let found = jsonpath(obj, &c.json_path);
                    cells.push(custom_cell(&c.ty, found, now));
                }
                if !has_age {
                    cells.push(age_cell(meta::meta_str(obj, "creationTimestamp"), now));
                }
                cells
            }
        }
    }

    /// A Table with one row per object. `include` is `None`, `Metadata` or `Object`.
    pub fn table(
        &self,
        objects: &[Value],
        include: &str,
        list_meta: Map<String, Value>,
        with_columns: bool,
    ) -> Value {
        let now = jiff::Timestamp::now();
        let rows: Vec<Value> = objects
            .iter()
            .map(|o| {
                let mut row = json!({ "cells": self.cells(o, now) });
                match include {
                    "None" => {}
                    "Object" => row["object"] = o.clone(),
                    _ => row["object"] = partial_metadata(o),
                }
                row
            })
            .collect();
        let mut table = json!({
            "kind": "Table",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": Value::Object(list_meta),
            "columnDefinitions": [],
            "rows": rows,
        });
        if with_columns {
            table["columnDefinitions"] = Value::Array(self.column_definitions());
        }
        table
    }
}

const NAME_DESCRIPTION: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const CREATION_DESCRIPTION: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

/// The object reduced to a PartialObjectMetadata.
pub fn partial_metadata(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or(json!({})),
    })
}

fn age_cell(ts: &str, now: jiff::Timestamp) -> Value {
    match ts.parse::<jiff::Timestamp>() {
        Ok(t) => json!(printers::human_duration(now.duration_since(t))),
        Err(_) => json!("<unknown>"),
    }
}

fn custom_cell(ty: &str, found: Vec<Value>, now: jiff::Timestamp) -> Value {
    let Some(first) = found.into_iter().next() else {
        return Value::Null;
    };
    match ty {
        "date" => match first.as_str() {
            Some(ts) => age_cell(ts, now),
            None => Value::Null,
        },
        "integer" | "number" | "boolean" => first,
        _ => match first {
            Value::String(s) => json!(s),
            Value::Null => Value::Null,
            other => json!(other.to_string()),
        },
    }
}

/// Evaluates the JSONPath subset CRD printer columns use: `.a.b`, `['key']`, `[n]`, `[*]`
/// and filters `[?(@.field=="value")]`.
pub fn jsonpath(obj: &Value, path: &str) -> Vec<Value> {
    let path = path
        .trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .trim_start_matches('$');
    let mut current = vec![obj.clone()];
    let chars: Vec<char> = path.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '.' => {
                let start = i + 1;
                let mut j = start;
                while j < chars.len() && chars[j] != '.' && chars[j] != '[' {
                    j += 1;
                }
                let key: String = chars[start..j].iter().collect();
                if !key.is_empty() {
                    current = current
                        .iter()
                        .filter_map(|v| v.get(&key).cloned())
                        .collect();
                }
                i = j;
            }
            '[' => {
                let Some(end) = chars[i..].iter().position(|c| *c == ']').map(|p| p + i) else {
                    return Vec::new();
                };
                let inner: String = chars[i + 1..end].iter().collect();
                let inner = inner.trim();
                current = if inner == "*" {
                    current
                        .iter()
                        .flat_map(|v| match v {
                            Value::Array(a) => a.clone(),
                            Value::Object(o) => o.values().cloned().collect(),
                            _ => Vec::new(),
                        })
                        .collect()
                } else if let Some(filter) =
                    inner.strip_prefix("?(").and_then(|f| f.strip_suffix(')'))
                {
                    let (lhs, rhs) = filter.split_once("==").unwrap_or((filter, ""));
                    let field = lhs.trim().trim_start_matches('@');
                    let want = rhs.trim().trim_matches('"').trim_matches('\'');
                    current
                        .iter()
                        .flat_map(|v| v.as_array().cloned().unwrap_or_default())
                        .filter(|item| {
                            let got = jsonpath(item, field);
                            got.first().is_some_and(|g| match g {
                                Value::String(s) => s == want,
                                other => *other == *want,
                            })
                        })
                        .collect()
                } else if let Ok(n) = inner.parse::<i64>() {
                    current
                        .iter()
                        .filter_map(|v| {
                            let a = v.as_array()?;
                            let idx = if n < 0 { a.len() as i64 + n } else { n };
                            a.get(usize::try_from(idx).ok()?).cloned()
                        })
                        .collect()
                } else {
                    let key = inner.trim_matches('\'').trim_matches('"');
                    current.iter().filter_map(|v| v.get(key).cloned()).collect()
                };
                i = end + 1;
            }
            _ => i += 1,
        }
    }
    current
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonpath_handles_fields_indexes_and_filters() {
        let obj = json!({
            "spec": {"replicas": 3, "labels": {"a.b/c": "x"}},
            "status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "X", "status": "False"}]},
        });
        assert_eq!(jsonpath(&obj, ".spec.replicas"), vec![json!(3)]);
        assert_eq!(
            jsonpath(&obj, ".status.conditions[?(@.type==\"Ready\")].status"),
            vec![json!("True")]
        );
        assert_eq!(
            jsonpath(&obj, ".status.conditions[1].type"),
            vec![json!("X")]
        );
        assert_eq!(jsonpath(&obj, ".spec.labels['a.b/c']"), vec![json!("x")]);
        assert!(jsonpath(&obj, ".nope.x").is_empty());
    }
}
