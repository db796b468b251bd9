//! User-namespace id maps: container ids ↔ host ids, as in
//! `/proc/PID/uid_map` (`container host size` per line).

/// One contiguous range: container ids `container..container+size` are
/// host ids `host..host+size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    pub container: u32,
    pub host: u32,
    pub size: u32,
}

/// The uid and gid maps of a user namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdMap {
    pub uids: Vec<IdRange>,
    pub gids: Vec<IdRange>,
}

fn lookup(
    ranges: &[IdRange],
    id: u32,
    from: fn(&IdRange) -> u32,
    to: fn(&IdRange) -> u32,
) -> Option<u32> {
    ranges.iter().find_map(|r| {
        let offset = id.checked_sub(from(r))?;
        (offset < r.size).then(|| to(r) + offset)
    })
}

impl IdMap {
    /// A map of one id: container root is `host_uid`/`host_gid`.
    pub fn single(host_uid: u32, host_gid: u32) -> IdMap {
        IdMap {
            uids: vec![IdRange {
                container: 0,
                host: host_uid,
                size: 1,
            }],
            gids: vec![IdRange {
                container: 0,
                host: host_gid,
                size: 1,
            }],
        }
    }

    pub fn uid_to_container(&self, host: u32) -> Option<u32> {
        lookup(&self.uids, host, |r| r.host, |r| r.container)
    }

    pub fn gid_to_container(&self, host: u32) -> Option<u32> {
        lookup(&self.gids, host, |r| r.host, |r| r.container)
    }

    pub fn uid_to_host(&self, container: u32) -> Option<u32> {
        lookup(&self.uids, container, |r| r.container, |r| r.host)
    }

    pub fn gid_to_host(&self, container: u32) -> Option<u32> {
        lookup(&self.gids, container, |r| r.container, |r| r.host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_idmap_maps_both_ways_and_refuses_outside_ranges() {
        let map = IdMap {
            uids: vec![
                IdRange {
                    container: 0,
                    host: 1000,
                    size: 1,
                },
                IdRange {
                    container: 1,
                    host: 100_000,
                    size: 65_536,
                },
            ],
            gids: vec![IdRange {
                container: 0,
                host: 1000,
                size: 1,
            }],
        };
        assert_eq!(map.uid_to_container(1000), Some(0));
        assert_eq!(map.uid_to_container(100_000), Some(1));
        assert_eq!(map.uid_to_container(165_535), Some(65_536));
        assert_eq!(map.uid_to_container(165_536), None);
        assert_eq!(map.uid_to_container(0), None);
        assert_eq!(map.uid_to_host(33), Some(100_032));
        assert_eq!(map.gid_to_host(1), None);
        assert_eq!(IdMap::single(5, 6).gid_to_container(6), Some(0));
    }
}
