//! Property tests over the parsers of client input: whatever a client sends as
//! `?labelSelector=` or `?fieldSelector=` (or as a `metav1.LabelSelector` or a quantity in
//! an object), parsing and matching answer with a value or an error, never a panic.
//!
//! Inputs are arbitrary strings, and strings assembled from each grammar's own tokens so
//! that the parsers get past the first token and into every branch.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::{Map, Value};

use crate::fields::{FieldOperator, FieldSelector};
use crate::labels::Selector;
use crate::quantity::Quantity;

/// 512 cases per property, or `PROPTEST_CASES` when set (for a longer run by hand).
fn config() -> ProptestConfig {
    let default = ProptestConfig::default();
    ProptestConfig {
        cases: if std::env::var_os("PROPTEST_CASES").is_some() {
            default.cases
        } else {
            512
        },
        ..default
    }
}

// === label selector inputs ===

/// Label keys: valid ones (prefixed, dotted, 63 characters) and invalid ones (empty
/// prefix or name, bad characters, too long, a keyword).
const LABEL_KEYS: &[&str] = &[
    "a",
    "app",
    "tier",
    "app.kubernetes.io/name",
    "example.com/a-b_c.d",
    "k8s.io/",
    "/name",
    "a/b/c",
    "-a",
    "a.",
    "é",
    "in",
    "notin",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
];

/// Label keys that are valid.
const VALID_LABEL_KEYS: &[&str] = &[
    "a",
    "app",
    "tier",
    "app.kubernetes.io/name",
    "example.com/a-b_c.d",
];

/// Label values: valid, empty, numeric (for `>` / `<`), out of range and invalid.
const LABEL_VALUES: &[&str] = &[
    "",
    "x",
    "web",
    "v1.2_3-4",
    "5",
    "-3",
    "9223372036854775807",
    "-9223372036854775808",
    "99999999999999999999",
    "a b",
    "é",
    "-x",
    "in",
];

/// Every token of the label selector grammar, plus names and stray characters.
const LABEL_TOKENS: &[&str] = &[
    "=", "==", "!=", "!", ">", "<", "in", "notin", "(", ")", ",", " ", "\t", "a", "b", "app",
    "x/y", "a.b/c", "/", ".", "-", "_", "5", "-1", "é", "\u{0}", "\\", "\"",
];

fn label_key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(LABEL_KEYS).prop_map(str::to_string),
        1 => "[a-z0-9./_-]{0,70}",
    ]
}

fn label_value() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(LABEL_VALUES).prop_map(str::to_string),
        1 => "[a-zA-Z0-9._ -]{0,70}",
    ]
}

/// A string of grammar tokens with optional whitespace between them.
fn label_token_soup() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        8 => prop::sample::select(LABEL_TOKENS).prop_map(str::to_string),
        1 => label_key(),
        1 => any::<String>(),
    ];
    prop::collection::vec((piece, prop::sample::select(&["", " ", ""][..])), 0..24)
        .prop_map(|parts| parts.into_iter().map(|(t, ws)| t + ws).collect())
}

/// One requirement in the string form, well-formed as far as the grammar goes (keys and
/// values may still be invalid).
fn requirement_text() -> impl Strategy<Value = String> {
    let values = prop::collection::vec(label_value(), 0..4);
    prop_oneof![
        label_key(),
        label_key().prop_map(|k| format!("!{k}")),
        (
            label_key(),
            prop::sample::select(&["=", "==", "!=", ">", "<"][..]),
            label_value()
        )
            .prop_map(|(k, op, v)| format!("{k}{op}{v}")),
        (
            label_key(),
            prop::sample::select(&[" in ", " notin "][..]),
            values
        )
            .prop_map(|(k, op, vs)| format!("{k}{op}({})", vs.join(","))),
    ]
}

/// A comma-separated selector of requirements.
fn selector_text() -> impl Strategy<Value = String> {
    prop::collection::vec(requirement_text(), 0..6).prop_map(|rs| rs.join(","))
}

/// Label sets drawn mostly from the same keys and values the selectors use, so that
/// matching compares rather than only missing.
fn label_map() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map(label_key(), label_value(), 0..6)
}

// === JSON values ===

/// Any JSON value, nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,8}".prop_map(Value::String),
        prop::sample::select(LABEL_VALUES).prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((label_key(), inner), 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A `metav1.LabelSelector`, mostly of the right shape.
fn label_selector_json() -> impl Strategy<Value = Value> {
    let expression = (
        prop_oneof![
            4 => prop::sample::select(VALID_LABEL_KEYS).prop_map(Value::from),
            1 => label_key().prop_map(Value::from),
            1 => json_value(),
        ],
        prop_oneof![
            4 => prop::sample::select(&["In", "NotIn", "Exists", "DoesNotExist", "Gt", "in", ""][..])
                .prop_map(Value::from),
            1 => json_value(),
        ],
        prop_oneof![
            2 => Just(Value::Null),
            4 => prop::collection::vec(label_value().prop_map(Value::from), 0..4).prop_map(Value::Array),
            1 => json_value(),
        ],
    )
        .prop_map(|(key, operator, values)| {
            serde_json::json!({"key": key, "operator": operator, "values": values})
        });
    prop_oneof![
        1 => json_value(),
        4 => (
            prop::collection::btree_map(
                prop::sample::select(VALID_LABEL_KEYS).prop_map(str::to_string),
                label_value().prop_map(Value::from),
                0..3,
            ),
            prop::collection::vec(expression, 0..3),
        )
            .prop_map(|(labels, exprs)| {
                serde_json::json!({"matchLabels": labels, "matchExpressions": exprs})
            }),
    ]
}

// === field selector inputs ===

/// Every token of the field selector grammar (escapes included), and field names.
const FIELD_TOKENS: &[&str] = &[
    "=",
    "==",
    "!=",
    "!",
    ",",
    "\\",
    "\\\\",
    "\\,",
    "\\=",
    "\\x",
    "metadata.name",
    "metadata.namespace",
    "status.phase",
    "spec.nodeName",
    "a",
    "",
    " ",
    "é",
    "\u{0}",
];

fn field_token_soup() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        8 => prop::sample::select(FIELD_TOKENS).prop_map(str::to_string),
        1 => any::<String>(),
    ];
    prop::collection::vec(piece, 0..16).prop_map(|parts| parts.concat())
}

/// Field terms sorted, so that selectors equal up to term order compare equal.
fn sorted_terms(fs: &FieldSelector) -> Vec<(String, bool, String)> {
    let mut terms: Vec<(String, bool, String)> = fs
        .requirements()
        .iter()
        .map(|r| {
            (
                r.field.clone(),
                r.operator == FieldOperator::Equals,
                r.value.clone(),
            )
        })
        .collect();
    terms.sort();
    terms
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn label_selector_parse_never_panics_on_any_string(s in any::<String>()) {
        let _ = Selector::parse(&s);
    }

    #[test]
    fn label_selector_parse_never_panics_on_grammar_tokens(s in label_token_soup()) {
        let _ = Selector::parse(&s);
    }

    #[test]
    fn parsed_label_selectors_reparse_from_their_text_and_match_alike(
        s in selector_text(),
        labels in label_map(),
    ) {
        // The canonical text is what list responses and kubectl show; it must mean the
        // same selector.
        if let Ok(sel) = Selector::parse(&s) {
            let text = sel.to_string();
            let again = Selector::parse(&text);
            prop_assert_eq!(again.as_ref(), Ok(&sel), "{:?} printed as {:?}", s, text);
            prop_assert_eq!(sel.matches(&labels), again.map(|a| a.matches(&labels)).unwrap_or(false));
        }
    }

    #[test]
    fn label_selectors_match_any_labels_without_panicking(
        s in prop_oneof![selector_text(), label_token_soup()],
        labels in label_map(),
        object in json_value(),
    ) {
        if let Ok(sel) = Selector::parse(&s) {
            let _ = sel.matches(&labels);
            let _ = sel.matches_object(&object);
            let _ = sel.matches_object(&serde_json::json!({"metadata": {"labels": object}}));
            for r in sel.requirements() {
                let _ = sel.requires_exact_match(r.key());
            }
        }
    }

    #[test]
    fn label_selector_objects_convert_without_panicking(
        selector in label_selector_json(),
        labels in label_map(),
    ) {
        if let Ok(sel) = Selector::from_label_selector(&selector) {
            let _ = sel.matches(&labels);
            let _ = sel.to_string();
        }
    }

    #[test]
    fn field_selector_parse_never_panics_on_any_string(s in any::<String>()) {
        let _ = FieldSelector::parse(&s);
    }

    #[test]
    fn field_selectors_reparse_from_their_text(s in field_token_soup()) {
        if let Ok(fs) = FieldSelector::parse(&s) {
            let text = fs.to_string();
            let again = FieldSelector::parse(&text);
            prop_assert!(again.is_ok(), "{:?} printed as {:?}: {:?}", s, text, again);
            if let Ok(again) = again {
                prop_assert_eq!(sorted_terms(&again), sorted_terms(&fs), "{:?} printed as {:?}", s, text);
            }
        }
    }

    #[test]
    fn field_selectors_match_any_fields_without_panicking(
        s in field_token_soup(),
        fields in prop::collection::btree_map(
            prop::sample::select(FIELD_TOKENS).prop_map(str::to_string),
            any::<String>(),
            0..4,
        ),
    ) {
        if let Ok(fs) = FieldSelector::parse(&s) {
            let _ = fs.matches(|f| fields.get(f).cloned());
            for r in fs.requirements() {
                let _ = fs.requires_exact_match(&r.field);
            }
            let _ = fs.transform(|f, v| Ok::<_, ()>((f.to_string(), v.to_string())));
        }
    }
}

// === quantities ===

/// Quantity strings: mostly of the grammar's shape (sign, digits, fraction, a suffix or
/// an exponent, extremes included), sometimes a soup of its pieces.
fn quantity_text() -> impl Strategy<Value = String> {
    let digits = prop_oneof![
        "[0-9]{1,4}",
        "[0-9]{15,40}",
        prop::sample::select(&["0", "9223372036854775807", "9223372036854775808"][..])
            .prop_map(str::to_string),
    ];
    let suffix = prop_oneof![
        prop::sample::select(
            &[
                "", "", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "k", "M", "G", "T", "P", "E", "m", "u",
                "n", "K", "i"
            ][..]
        )
        .prop_map(str::to_string),
        (
            prop::sample::select(&["e", "E"][..]),
            prop::sample::select(&["", "+", "-"][..]),
            "[0-9]{1,3}|2147483648|9223372036854775808"
        )
            .prop_map(|(e, sign, n)| format!("{e}{sign}{n}")),
    ];
    let shaped = (
        prop::sample::select(&["", "", "+", "-"][..]),
        digits.clone(),
        prop::option::of(digits),
        suffix,
    )
        .prop_map(|(sign, int, frac, suffix)| match frac {
            Some(f) => format!("{sign}{int}.{f}{suffix}"),
            None => format!("{sign}{int}{suffix}"),
        });
    let soup = prop::collection::vec(
        prop::sample::select(
            &[
                "+", "-", "0", "7", ".", "e", "E", "Ki", "M", "m", "n", "i", " ",
            ][..],
        ),
        0..8,
    )
    .prop_map(|p| p.concat());
    prop_oneof![4 => shaped, 1 => soup]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn quantities_parse_or_fail_and_print_what_parses_again(
        a in prop_oneof![quantity_text(), any::<String>()],
        b in quantity_text(),
    ) {
        // Quantities come from request bodies (resources, limits) and are printed back in
        // responses and tables.
        let (Ok(qa), Ok(qb)) = (Quantity::parse(&a), Quantity::parse(&b)) else {
            return Ok(());
        };
        for q in [&qa, &qb] {
            let _ = (q.value(), q.milli_value(), q.as_f64(), q.signum(), q.canonical());
            let printed = q.to_string();
            prop_assert!(Quantity::parse(&printed).is_ok(), "{:?} printed as {:?}", q, printed);
        }
        let _ = (qa.checked_add(&qb), qa.checked_sub(&qb), qa.partial_cmp(&qb));
    }
}
