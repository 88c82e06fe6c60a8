//! `/proc/meminfo` as both sides read it: how much memory is available
//! (the host before a matrix, the agent before it maps a working set).

/// `MemAvailable` in bytes from the text of `/proc/meminfo`.
pub fn available_bytes(meminfo: &str) -> Option<u64> {
    kib_field(meminfo, "MemAvailable:")
}

/// `MemTotal` in bytes from the text of `/proc/meminfo`.
pub fn total_bytes(meminfo: &str) -> Option<u64> {
    kib_field(meminfo, "MemTotal:")
}

fn kib_field(meminfo: &str, name: &str) -> Option<u64> {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .and_then(|kib| kib.checked_mul(1024))
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_available_kib_as_bytes() {
        let text = "MemTotal:  262144 kB\nMemFree:   1000 kB\nMemAvailable:  131072 kB\n";
        assert_eq!(super::available_bytes(text), Some(128 << 20));
        assert_eq!(super::available_bytes("MemTotal: 1 kB\n"), None);
        assert_eq!(super::total_bytes(text), Some(256 << 20));
        let huge = format!("MemTotal: {} kB\n", u64::MAX);
        assert_eq!(super::total_bytes(&huge), None, "no overflow");
    }
}
