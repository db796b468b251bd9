//! [`VarList`]: variables in the order they were first set, found by name
//! in constant time, so a stage with many `ENV`s or `ARG`s costs linear time.

use std::collections::HashMap;

use serde::{Serialize, Serializer};

use crate::expand::Lookup;

/// Variables in first-set order; setting a name again replaces its value in
/// place (the latest definition wins, as with a list of `ENV`s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarList<V = String> {
    entries: Vec<(String, V)>,
    index: HashMap<String, usize>,
}

impl<V> Default for VarList<V> {
    fn default() -> Self {
        VarList {
            entries: Vec::new(),
            index: HashMap::new(),
        }
    }
}

impl<V> VarList<V> {
    /// Sets `key` to `value`, returning the value it replaces.
    pub fn set(&mut self, key: &str, value: V) -> Option<V> {
        match self.index.get(key) {
            Some(&i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            None => {
                self.index.insert(key.to_string(), self.entries.len());
                self.entries.push((key.to_string(), value));
                None
            }
        }
    }

    pub fn get(&self, key: &str) -> Option<&V> {
        self.index.get(key).map(|&i| &self.entries[i].1)
    }

    /// The entries in first-set order.
    pub fn as_slice(&self) -> &[(String, V)] {
        &self.entries
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl<V> FromIterator<(String, V)> for VarList<V> {
    fn from_iter<I: IntoIterator<Item = (String, V)>>(iter: I) -> Self {
        let mut list = VarList::default();
        for (k, v) in iter {
            list.set(&k, v);
        }
        list
    }
}

impl Lookup for VarList {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

/// As the list of pairs it is.
impl<V: Serialize> Serialize for VarList<V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.entries.serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_value_wins_in_first_place() {
        let mut v: VarList = [("A", "1"), ("B", "2")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(v.set("A", "3".into()), Some("1".into()));
        assert_eq!(v.set("C", "4".into()), None);
        let pairs: Vec<(&str, &str)> = v
            .as_slice()
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(pairs, [("A", "3"), ("B", "2"), ("C", "4")]);
        assert_eq!(v.lookup("B"), Some("2"));
        assert_eq!(v.lookup("D"), None);
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"[["A","3"],["B","2"],["C","4"]]"#
        );
    }
}
