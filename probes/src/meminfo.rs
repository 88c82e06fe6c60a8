//! `/proc/meminfo` as both sides read it: how much memory is available
//! (the host before a matrix, the agent before it maps a working set).

/// `MemAvailable` in bytes from the text of `/proc/meminfo`.
pub fn available_bytes(meminfo: &str) -> Option<u64> {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_available_kib_as_bytes() {
        let text = "MemTotal:  262144 kB\nMemFree:   1000 kB\nMemAvailable:  131072 kB\n";
        assert_eq!(super::available_bytes(text), Some(128 << 20));
        assert_eq!(super::available_bytes("MemTotal: 1 kB\n"), None);
    }
}
