//! Merging an applied configuration into a live object, and structured-merge-diff's
//! `Updater`: who owns what after an update or an apply, conflicts, and pruning the fields
//! an applier stopped setting.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde_json::Value;

use super::fieldpath::{FieldPath, FieldSet, PathElement, values_equal};
use super::typed::{Comparison, Handle, ListAtom, Ty, Types, zip_maps};

static NULL: Value = Value::Null;

/// An element as seen in one side of a list merge: its value, or a duplicate (which upstream
/// merges as null).
#[derive(Clone, Copy)]
enum Observed<'v> {
    One(&'v Value),
    Duplicate,
}

impl<'v> Observed<'v> {
    fn value(self) -> &'v Value {
        match self {
            Self::One(v) => v,
            Self::Duplicate => &NULL,
        }
    }
}

/// The path elements of a list's items, in order, with the index of each item.
type Indexed<'v> = (
    Vec<(PathElement, usize)>,
    BTreeMap<PathElement, Observed<'v>>,
);

impl<'a> Types<'a> {
    /// Merges `rhs` into `lhs` (upstream's `TypedValue.Merge` with its keep-rhs rule).
    pub fn merge(&self, lhs: Option<&Value>, rhs: Option<&Value>, ty: Ty<'a>) -> Option<Value> {
        let atom = self.atom(ty);
        let chosen = if rhs.is_none() {
            atom.deduce(lhs)
        } else {
            atom.deduce(rhs)
        };
        let leaf = || rhs.or(lhs).cloned();
        match chosen.handle() {
            Handle::Scalar(_) | Handle::Invalid => leaf(),
            Handle::List(list) => {
                let l = match lhs {
                    Some(Value::Array(items)) => Some(items),
                    _ => None,
                };
                let r = match rhs {
                    Some(Value::Array(items)) => Some(items),
                    _ => None,
                };
                let empty = l.is_none_or(|l| l.is_empty()) && r.is_none_or(|r| r.is_empty());
                if !list.associative || empty {
                    return leaf();
                }
                let out = self.merge_list_items(list, l, r);
                (!out.is_empty()).then_some(Value::Array(out))
            }
            Handle::Map(map) => {
                let l = match lhs {
                    Some(Value::Object(m)) => Some(m),
                    _ => None,
                };
                let r = match rhs {
                    Some(Value::Object(m)) => Some(m),
                    _ => None,
                };
                let empty = l.is_none_or(|l| l.is_empty()) && r.is_none_or(|r| r.is_empty());
                if map.atomic || empty {
                    return leaf();
                }
                let mut out = serde_json::Map::new();
                for (key, lv, rv) in zip_maps(l, r) {
                    if let Some(v) = self.merge(lv, rv, map.field(key)) {
                        out.insert(key.to_string(), v);
                    }
                }
                (!out.is_empty()).then_some(Value::Object(out))
            }
        }
    }

    fn index_items<'v>(
        &self,
        list: &ListAtom<'a>,
        items: Option<&'v Vec<Value>>,
        allow_duplicates: bool,
    ) -> Indexed<'v> {
        let mut pes = Vec::new();
        let mut observed = BTreeMap::new();
        for (i, child) in items.into_iter().flatten().enumerate() {
            let Ok(pe) = self.item_element(list, child) else {
                continue;
            };
            if observed.contains_key(&pe) {
                if !allow_duplicates {
                    continue;
                }
                observed.insert(pe.clone(), Observed::Duplicate);
            } else {
                observed.insert(pe.clone(), Observed::One(child));
            }
            pes.push((pe, i));
        }
        (pes, observed)
    }

    /// upstream's `mergingWalker.visitListItems`: the merged list keeps the live order and
    /// places new items as the applied order suggests.
    fn merge_list_items(
        &self,
        list: &ListAtom<'a>,
        lhs: Option<&Vec<Value>>,
        rhs: Option<&Vec<Value>>,
    ) -> Vec<Value> {
        let (rhs_pes, observed_rhs) = self.index_items(list, rhs, false);
        let (lhs_pes, observed_lhs) = self.index_items(list, lhs, true);
        let mut shared: VecDeque<&PathElement> = rhs_pes
            .iter()
            .map(|(pe, _)| pe)
            .filter(|pe| observed_lhs.contains_key(*pe))
            .collect();
        let mut next_shared = shared.pop_front();
        let mut merged_rhs: BTreeSet<PathElement> = BTreeSet::new();
        let mut out = Vec::new();
        let item = |l: Option<&Value>, r: Option<&Value>, out: &mut Vec<Value>| {
            if let Some(v) = self.merge(l, r, list.elem) {
                out.push(v);
            }
        };
        let (llen, rlen) = (lhs_pes.len(), rhs_pes.len());
        let (mut li, mut ri) = (0, 0);
        while li < llen || ri < rlen {
            let before = (li, ri);
            if li < llen && ri < rlen {
                let pe = &lhs_pes[li].0;
                if *pe == rhs_pes[ri].0 {
                    merged_rhs.insert(pe.clone());
                    let l = observed_lhs.get(pe).map(|o| o.value());
                    let r = observed_rhs.get(pe).map(|o| o.value());
                    item(l, r, &mut out);
                    li += 1;
                    ri += 1;
                    next_shared = shared.pop_front();
                    continue;
                }
                if observed_rhs.contains_key(pe) && next_shared.is_some_and(|n| n != pe) {
                    li += 1;
                    continue;
                }
            }
            if li < llen {
                let (pe, index) = &lhs_pes[li];
                if !observed_rhs.contains_key(pe) {
                    let l = lhs.and_then(|items| items.get(*index));
                    item(l, None, &mut out);
                    li += 1;
                    continue;
                } else if merged_rhs.contains(pe) {
                    li += 1;
                }
            }
            if ri < rlen {
                let pe = &rhs_pes[ri].0;
                merged_rhs.insert(pe.clone());
                let l = observed_lhs.get(pe).map(|o| o.value());
                let r = observed_rhs.get(pe).map(|o| o.value());
                item(l, r, &mut out);
                ri += 1;
                if next_shared.is_some_and(|n| n == pe) {
                    next_shared = shared.pop_front();
                }
            }
            if (li, ri) == before {
                // Not reachable with well-formed input; never loop forever.
                li += 1;
            }
        }
        out
    }
}

/// The fields one manager owns, at the API version it last wrote them in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VersionedSet {
    /// The fields.
    pub set: FieldSet,
    /// The API version (`apps/v1`).
    pub api_version: String,
    /// Whether the fields come from an apply.
    pub applied: bool,
}

/// Managers (by identifier) and their fields.
pub(crate) type ManagedSets = BTreeMap<String, VersionedSet>;

/// Conflicts: for each manager identifier, the paths in conflict (in upstream's order).
pub(crate) type RawConflicts = Vec<(String, FieldPath)>;

/// structured-merge-diff's `Updater`, for one schema. Managers recorded at other API
/// versions are compared against the same objects (k1s serves one schema per kind).
pub(crate) struct Updater<'a> {
    /// The schema view.
    pub types: Types<'a>,
    /// The type of the objects.
    pub ty: Ty<'a>,
    /// Fields whose changes nobody owns (the reset fields of the endpoint).
    pub ignored: &'a FieldSet,
}

impl Updater<'_> {
    fn reconcile(&self, managers: ManagedSets) -> ManagedSets {
        managers
            .into_iter()
            .map(|(id, mut vs)| {
                if let Some(set) = self.types.reconcile(&vs.set, self.ty) {
                    vs.set = set;
                }
                (id, vs)
            })
            .collect()
    }

    /// upstream's `Updater.update`: takes changed fields away from the other managers.
    fn update_managers(
        &self,
        old: &Value,
        new: &Value,
        mut managers: ManagedSets,
        workflow: &str,
        force: bool,
    ) -> Result<(ManagedSets, Comparison), RawConflicts> {
        let mut compare = self.types.compare(old, new, self.ty);
        compare.exclude(self.ignored);
        // Only other managers can lose fields: a create (no managers) or a write by the
        // sole manager needs no union of the changes.
        let others = managers.keys().any(|id| id != workflow);
        let changed = if others {
            compare.modified.union(&compare.added)
        } else {
            FieldSet::new()
        };
        let mut conflicts: Vec<(String, FieldSet)> = Vec::new();
        let mut removed: Vec<String> = Vec::new();
        for (id, vs) in &managers {
            if id == workflow {
                continue;
            }
            let c = vs.set.intersection(&changed);
            if !c.is_empty() {
                conflicts.push((id.clone(), c));
            }
            if !compare.removed.is_empty() {
                removed.push(id.clone());
            }
        }
        if !force && !conflicts.is_empty() {
            let mut out = Vec::new();
            for (id, set) in &conflicts {
                for p in set.paths() {
                    out.push((id.clone(), p));
                }
            }
            return Err(out);
        }
        for (id, c) in &conflicts {
            if let Some(vs) = managers.get_mut(id) {
                vs.set.subtract(c);
            }
        }
        for id in &removed {
            if let Some(vs) = managers.get_mut(id) {
                vs.set.subtract(&compare.removed);
            }
        }
        managers.retain(|_, vs| !vs.set.is_empty());
        Ok((managers, compare))
    }

    /// upstream's `Updater.Update`: the fields that changed between `old` and `new` become
    /// owned by `manager`.
    pub fn update(
        &self,
        old: &Value,
        new: &Value,
        version: &str,
        managers: ManagedSets,
        manager: &str,
    ) -> ManagedSets {
        let managers = self.reconcile(managers);
        let (mut managers, mut compare) =
            match self.update_managers(old, new, managers, manager, true) {
                Ok(r) => r,
                // Forced updates do not conflict.
                Err(_) => return ManagedSets::new(),
            };
        // The manager's entry is replaced (or dropped) below: its set is taken, not copied,
        // and sets are changed in place. A manager new to the object (every create) starts
        // from the added fields themselves.
        let mut set = match managers.remove(manager).map(|vs| vs.set) {
            Some(mut previous) if !previous.is_empty() => {
                previous.subtract(&compare.removed);
                previous.union_with(&compare.added);
                previous
            }
            _ => std::mem::take(&mut compare.added),
        };
        set.union_with(&compare.modified);
        set.recursive_subtract(self.ignored);
        if set.is_empty() {
            managers.remove(manager);
        } else {
            managers.insert(
                manager.to_string(),
                VersionedSet {
                    set,
                    api_version: version.to_string(),
                    applied: false,
                },
            );
        }
        managers
    }

    /// upstream's `Updater.Apply`: merges `config` into `live`, makes `manager` own exactly
    /// the fields of `config`, prunes what it no longer sets and nobody else owns. The object
    /// is `None` when the apply changes nothing.
    pub fn apply(
        &self,
        live: &Value,
        config: &Value,
        version: &str,
        managers: ManagedSets,
        manager: &str,
        force: bool,
    ) -> Result<(Option<Value>, ManagedSets), RawConflicts> {
        let mut managers = self.reconcile(managers);
        let merged = self
            .types
            .merge(Some(live), Some(config), self.ty)
            .unwrap_or(Value::Null);
        let last = managers.get(manager).cloned();
        let set = self
            .types
            .field_set(config, self.ty)
            .recursive_difference(self.ignored);
        managers.insert(
            manager.to_string(),
            VersionedSet {
                set,
                api_version: version.to_string(),
                applied: true,
            },
        );
        let new = self.prune(merged, &managers, last.as_ref());
        let (managers, _) = self.update_managers(live, &new, managers, manager, force)?;
        let object = (!values_equal(live, &new)).then_some(new);
        Ok((object, managers))
    }

    fn ensure(&self, set: &FieldSet) -> FieldSet {
        self.types
            .ensure_named_fields_are_members(set, Some(self.ty))
    }

    fn prune(&self, merged: Value, managers: &ManagedSets, last: Option<&VersionedSet>) -> Value {
        let Some(last) = last.filter(|l| !l.set.is_empty()) else {
            return merged;
        };
        let t = &self.types;
        let last_set = self.ensure(&last.set);
        let pruned = t.remove_items(&merged, &last_set, self.ty);
        // Add back the items somebody (the applier included) owns.
        let managed = managers
            .values()
            .fold(FieldSet::new(), |acc, vs| acc.union(&vs.set));
        let merged_set = self.ensure(&t.field_set(&merged, self.ty));
        let pruned_set = self.ensure(&t.field_set(&pruned, self.ty));
        let drop = merged_set.difference(&pruned_set.union(&self.ensure(&managed)));
        let pruned = t.remove_items(&merged, &drop, self.ty);
        // Add back the dangling items: those the applier never owned.
        let pruned_set = self.ensure(&t.field_set(&pruned, self.ty));
        let drop = merged_set.difference(&pruned_set).intersection(&last_set);
        t.remove_items(&merged, &drop, self.ty)
    }
}
