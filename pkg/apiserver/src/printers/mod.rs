//! Server-side table printers for the built-in kinds.
//!
//! `kubectl get` asks the API server for a `meta.k8s.io/v1` `Table` and prints the server's
//! columns verbatim, so this module reproduces upstream Kubernetes' printers
//! (`pkg/printers/internalversion/printers.go`, v1.35): for every built-in kind, the column
//! definitions ([`columns`]) and the cells computed from an object ([`row`]).
//!
//! The API server always renders the "wide" form (upstream passes `Wide: true` to the table
//! generator), so [`row`] returns one cell per column, including `priority: 1` columns that
//! `kubectl` shows only with `-o wide`. Kinds without an upstream printer get the default
//! table (`Name`, `Created At`).
//!
//! Objects are arbitrary user JSON: missing or wrongly typed fields yield the cell upstream
//! shows for an unset field (`""`, `0`, `<none>`, `<unknown>`, ...); nothing here panics.
//! Where upstream's API defaulting guarantees a field is set (e.g. a Service's `type`), the
//! default is assumed when the field is absent, so tables match what upstream would show.

mod apiregistration;
mod apps;
mod batch;
mod core;
mod docs;
mod networking;
mod other;
mod quantity;
mod rbac;
mod storage;
mod util;

#[cfg(test)]
mod tests;

use jiff::{SignedDuration, Timestamp};
use serde_json::Value;

/// One column of a server-side table (`meta.k8s.io/v1` `TableColumnDefinition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// Human-readable column name (kubectl upper-cases it for the header).
    pub name: &'static str,
    /// OpenAPI type of the cells: `string`, `integer`, `number`, `boolean` or `date`.
    pub ty: &'static str,
    /// OpenAPI format: `name` for the column holding the object name, otherwise empty.
    pub format: &'static str,
    /// Description of the column, taken from the API field documentation like upstream.
    pub description: &'static str,
    /// 0 for default columns, 1 for columns shown only with `-o wide`.
    pub priority: i32,
}

/// Function computing the cells of one row from an object and the current time.
pub(crate) type RowFn = fn(&Value, Timestamp) -> Vec<Value>;

/// A registered printer: column definitions plus the function computing a row.
#[derive(Clone, Copy)]
pub(crate) struct Printer {
    /// Column definitions, in order.
    pub(crate) columns: &'static [Column],
    /// Computes one cell per column.
    pub(crate) row: RowFn,
}

/// A default-priority column.
pub(crate) const fn col(name: &'static str, ty: &'static str, description: &'static str) -> Column {
    Column {
        name,
        ty,
        format: "",
        description,
        priority: 0,
    }
}

/// A column shown only with `-o wide` (priority 1).
pub(crate) const fn wide(
    name: &'static str,
    ty: &'static str,
    description: &'static str,
) -> Column {
    Column {
        name,
        ty,
        format: "",
        description,
        priority: 1,
    }
}

/// The `Name` column used by almost every printer.
pub(crate) const NAME: Column = Column {
    name: "Name",
    ty: "string",
    format: "name",
    description: docs::OBJ_NAME,
    priority: 0,
};

/// The `Age` column used by almost every printer.
pub(crate) const AGE: Column = col("Age", "string", docs::OBJ_CREATION);

/// Wide `Containers` column shared by workload printers.
pub(crate) const CONTAINERS_WIDE: Column = wide(
    "Containers",
    "string",
    "Names of each container in the template.",
);

/// Wide `Images` column shared by workload printers.
pub(crate) const IMAGES_WIDE: Column = wide(
    "Images",
    "string",
    "Images referenced by each container in the template.",
);

/// Columns of the default table used for kinds without a dedicated printer.
static DEFAULT_COLUMNS: [Column; 2] = [NAME, col("Created At", "date", docs::OBJ_CREATION)];

/// Finds the printer registered for `group`/`kind` (`""` or `"core"` is the core group).
fn lookup(group: &str, kind: &str) -> Option<Printer> {
    match group {
        "" | "core" => core::printer(kind),
        "apiregistration.k8s.io" => apiregistration::printer(kind),
        "apps" => apps::printer(kind),
        "batch" => batch::printer(kind),
        "networking.k8s.io" => networking::printer(kind),
        "rbac.authorization.k8s.io" => rbac::printer(kind),
        "storage.k8s.io" => storage::printer(kind),
        _ => other::printer(group, kind),
    }
}

/// Column definitions of the table for `group`/`kind` (the core group is `""`).
///
/// Kinds without an upstream printer get the default `[Name, Created At]` columns.
pub fn columns(group: &str, kind: &str) -> &'static [Column] {
    lookup(group, kind).map_or(&DEFAULT_COLUMNS[..], |p| p.columns)
}

/// Cells of the table row for one object, one per entry of [`columns`].
///
/// `now` is the reference time for ages (`AGE`, `LAST SEEN`, restart times, ...).
pub fn row(group: &str, kind: &str, obj: &Value, now: Timestamp) -> Vec<Value> {
    match lookup(group, kind) {
        Some(p) => (p.row)(obj, now),
        None => default_row(obj),
    }
}

/// Row of the default table: the name and the creation time as an RFC 3339 UTC string.
fn default_row(obj: &Value) -> Vec<Value> {
    let created = util::parse_time(util::get(obj, &["metadata", "creationTimestamp"])).map_or_else(
        || "0001-01-01T00:00:00Z".to_string(),
        |t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
    );
    vec![util::cell(util::name(obj)), util::cell(created)]
}

/// Formats a duration like upstream's `duration.HumanDuration`: about two to three
/// significant figures (`5s`, `3m12s`, `15m`, `5h`, `5h30m`, `2d`, `3d4h`, `45d`, `3y45d`,
/// `10y`). Durations a little below zero (clock skew under two seconds) print as `0s`, more
/// negative ones as `<invalid>`.
pub fn human_duration(d: SignedDuration) -> String {
    let seconds = d.as_secs();
    if seconds < -1 {
        return "<invalid>".to_string();
    }
    if seconds < 0 {
        return "0s".to_string();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}
