//! What a backend does with each migration setting: every backend answers
//! for every key of `[migration]` with an exhaustive `match` on
//! [`MigrationKey`] (no wildcard: clippy denies one), so a key added to
//! the knob table does not compile until each backend says whether it
//! sends it, enforces it itself or refuses it; the backends' tests then
//! check each answer against what the backend really does.

pub use migbench_model::MigrationKey;

/// One backend's answer for one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handling {
    /// Sent to the hypervisor, as this.
    Sent(&'static str),
    /// Enforced by migbench itself, not sent.
    ByMigbench(&'static str),
    /// Sent as `sent`; some values refused before any run (`refused`).
    Partly {
        /// How the accepted values are sent.
        sent: &'static str,
        /// Which values are refused and why.
        refused: &'static str,
    },
    /// Every value but the default refused before any run, with why.
    Refused(&'static str),
}

/// The first key of `s` off its default that `handling` refuses, with
/// why: the walk each backend's preflight makes over its own mapping.
pub fn refused_by(
    s: &crate::migrate::MigrationSettings,
    handling: fn(MigrationKey) -> Handling,
) -> Option<(MigrationKey, &'static str)> {
    MigrationKey::ALL
        .iter()
        .copied()
        .find_map(|k| match handling(k) {
            Handling::Refused(why) if !s.is_default(k) => Some((k, why)),
            _ => None,
        })
}

/// Settings with one key off its default, for the backends' tests: each
/// key's value is one a user would write.
#[cfg(test)]
pub fn off_default(key: MigrationKey) -> crate::migrate::MigrationSettings {
    let line = match key {
        MigrationKey::downtime_limit => "downtime_limit = \"50ms\"",
        MigrationKey::max_bandwidth => "max_bandwidth = \"50MB/s\"",
        MigrationKey::timeout => "timeout = \"30s\"",
        MigrationKey::multifd_channels => "multifd_channels = 4",
        MigrationKey::multifd_compression => "multifd_channels = 2\nmultifd_compression = \"zstd\"",
        MigrationKey::multifd_compression_level => {
            "multifd_channels = 2\nmultifd_compression = \"zlib\"\nmultifd_compression_level = 5"
        }
        MigrationKey::xbzrle_cache => "xbzrle_cache = \"64MiB\"",
        MigrationKey::auto_converge => "auto_converge = \"30/10/90\"",
        MigrationKey::postcopy => "postcopy = \"after 2 passes\"",
        MigrationKey::announce => "announce = \"initial=100ms,max=500ms,rounds=5,step=100ms\"",
        MigrationKey::dirty_limit => "dirty_limit = \"10MB/s\"",
    };
    migbench_model::matrix::sample_run(&format!("[migration]\n{line}\n")).migration()
}
