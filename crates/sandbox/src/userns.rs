//! Where hoist runs: as root of the host, or as root of a user namespace
//! (rootless). Overlay mounts and `/sys` differ between the two.

/// True when this process is in a user namespace other than the host's
/// (its uid map is not the identity over all ids).
pub fn in_user_namespace() -> bool {
    match std::fs::read_to_string("/proc/self/uid_map") {
        Ok(map) => {
            let fields: Vec<&str> = map.split_whitespace().collect();
            fields != ["0", "0", "4294967295"]
        }
        Err(_) => false,
    }
}
