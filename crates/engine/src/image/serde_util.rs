//! Serde helpers shared by the image types: `null` read as empty (Go writes
//! nil slices and maps as `null`), unknown fields written with sorted keys
//! at every depth, sets written as maps of empty objects (`ExposedPorts`,
//! `Volumes`), and Go durations as integer nanoseconds.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::de::{self, IgnoredAny};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// Unknown fields of an object, kept to be written back.
pub(crate) type Extra = BTreeMap<String, Value>;

/// Read `null` (or an absent field, with `#[serde(default)]`) as the
/// type's default, as Go's `encoding/json` does for slices and maps.
pub(crate) fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `serialize_with` for the flattened `extra` map: keys sorted at every
/// depth, whatever order `serde_json::Map` keeps (its `preserve_order`
/// feature may be switched on by any crate in the build).
pub(crate) fn extra<S: Serializer>(map: &Extra, s: S) -> Result<S::Ok, S::Error> {
    let mut m = s.serialize_map(Some(map.len()))?;
    for (k, v) in map {
        m.serialize_entry(k, &Sorted(v))?;
    }
    m.end()
}

/// A JSON value serialised with object keys in sorted order.
pub(crate) struct Sorted<'a>(pub(crate) &'a Value);

impl Serialize for Sorted<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Object(obj) => {
                let mut entries: Vec<(&String, &Value)> = obj.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                let mut m = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    m.serialize_entry(k, &Sorted(v))?;
                }
                m.end()
            }
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for v in items {
                    seq.serialize_element(&Sorted(v))?;
                }
                seq.end()
            }
            other => other.serialize(s),
        }
    }
}

/// A set of names written as `{"name": {}, ...}` (Docker's `ExposedPorts`
/// and `Volumes`); read from such a map (values ignored) or `null`.
pub(crate) mod object_set {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        set: &BTreeSet<String>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(set.len()))?;
        for k in set {
            m.serialize_entry(k, &Empty {})?;
        }
        m.end()
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeSet<String>, D::Error> {
        let map: Option<BTreeMap<String, IgnoredAny>> = Option::deserialize(d)?;
        Ok(map.map(|m| m.into_keys().collect()).unwrap_or_default())
    }

    #[derive(Serialize)]
    struct Empty {}
}

/// `Option<Duration>` as Go's `time.Duration`: integer nanoseconds.
pub(crate) mod duration_nanos {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(v: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            None => s.serialize_none(),
            Some(d) => {
                let nanos = i64::try_from(d.as_nanos()).map_err(|_| {
                    serde::ser::Error::custom(format!(
                        "duration {d:?} does not fit in i64 nanoseconds"
                    ))
                })?;
                s.serialize_i64(nanos)
            }
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        match Option::<i64>::deserialize(d)? {
            None => Ok(None),
            Some(n) => u64::try_from(n)
                .map(|n| Some(Duration::from_nanos(n)))
                .map_err(|_| de::Error::custom(format!("negative duration {n}ns"))),
        }
    }
}

/// `skip_serializing_if` for Go's `omitempty` on booleans.
pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}
