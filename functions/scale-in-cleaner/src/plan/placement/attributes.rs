//! Which instances have the attributes a task definition requires (`requiresAttributes`): every instance's
//! attributes inverted once per plan, then one list of instances per requirement, so a search for a place
//! tests a flag where it would look the attribute up by name.

use std::collections::HashMap;
use std::rc::Rc;

use super::Pool;
use crate::plan::model::Inventory;

/// The instances with one attribute name, and those with each of its values.
type ByName = (Vec<usize>, HashMap<String, Vec<usize>>);

/// Every instance's attributes, inverted: the instances with each name, and with each name and value.
#[derive(Debug, Clone, Default)]
pub(super) struct Attributes(HashMap<String, ByName>);

impl Attributes {
    fn of(inv: &Inventory) -> Self {
        let mut index = Attributes::default();
        for (i, inst) in inv.instances.iter().enumerate() {
            for (name, value) in &inst.attributes {
                let (any, values) = match index.0.get_mut(name) {
                    Some(entry) => entry,
                    None => index.0.entry(name.clone()).or_default(),
                };
                any.push(i);
                if let Some(v) = value {
                    match values.get_mut(v) {
                        Some(list) => list.push(i),
                        None => drop(values.insert(v.clone(), vec![i])),
                    }
                }
            }
        }
        index
    }

    /// The instances with attribute `name`, with `value` when one is given.
    fn with(&self, name: &str, value: Option<&str>) -> &[usize] {
        let Some((any, values)) = self.0.get(name) else { return &[] };
        match value {
            None => any,
            Some(v) => values.get(v).map_or(&[], Vec::as_slice),
        }
    }
}

impl Pool {
    /// For each of `requires`, which instances have that attribute (with that value): found once per plan
    /// and requirement in an index of every instance's attributes, not looked up per slot and task.
    pub(super) fn having(
        &mut self,
        inv: &Inventory,
        requires: &[(String, Option<String>)],
    ) -> Vec<Rc<Vec<bool>>> {
        let mut out = Vec::with_capacity(requires.len());
        for r in requires {
            if let Some(found) = self.having.get(r) {
                out.push(found.clone());
                continue;
            }
            let index = self.attributes.get_or_insert_with(|| Attributes::of(inv));
            let mut has = vec![false; inv.instances.len()];
            for &i in index.with(&r.0, r.1.as_deref()) {
                has[i] = true;
            }
            let has = Rc::new(has);
            self.having.insert(r.clone(), has.clone());
            out.push(has);
        }
        out
    }
}
