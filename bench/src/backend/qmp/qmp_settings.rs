//! Migration settings as QEMU spells them: each [`MigrationSettings`]
//! knob becomes capabilities and parameters for the source and the
//! destination ([`settings_knobs`], [`qmp_arguments`]). Adding a
//! migration setting: a line in the knob table (`bench/model/src/knobs.rs`)
//! and its mapping here.

use serde_json::{json, Map, Value};

use migbench_model::settings::{
    AutoConverge, BandwidthCap, Channels, Compression, DirtyLimit, Postcopy, Xbzrle,
};

use crate::migrate::handling::{Handling, MigrationKey};
use crate::migrate::MigrationSettings;

/// What the QMP backend does with each key of `[migration]`
/// ([`crate::migrate::handling`]; the test below checks each answer
/// against [`settings_knobs`]).
#[deny(clippy::wildcard_enum_match_arm)]
pub fn handling(key: MigrationKey) -> Handling {
    use MigrationKey as K;
    match key {
        K::downtime_limit => Handling::Sent("parameter downtime-limit (source)"),
        K::max_bandwidth => {
            Handling::Sent("parameter max-bandwidth (source; \"unlimited\" is 100 GB/s)")
        }
        K::timeout => Handling::ByMigbench("migbench cancels the migration when it runs longer"),
        K::multifd_channels => {
            Handling::Sent("capability multifd and parameter multifd-channels (both sides)")
        }
        K::multifd_compression => Handling::Sent("parameter multifd-compression (both sides)"),
        K::multifd_compression_level => Handling::Partly {
            sent: "parameter multifd-zlib-level or multifd-zstd-level (source)",
            refused: "a level the installed QEMU does not keep (the preflight reads it back)",
        },
        K::xbzrle_cache => {
            Handling::Sent("capability xbzrle and parameter xbzrle-cache-size (source)")
        }
        K::auto_converge => Handling::Sent(
            "capability auto-converge, cpu-throttle-initial/-increment, max-cpu-throttle (source)",
        ),
        K::postcopy => Handling::Sent(
            "capability postcopy-ram (both sides); migbench sends migrate-start-postcopy when due",
        ),
        K::announce => {
            Handling::Sent("parameters announce-initial/-max/-rounds/-step (destination)")
        }
        K::dirty_limit => Handling::Partly {
            sent: "capability dirty-limit and parameter vcpu-dirty-limit (source)",
            refused: "on a QEMU without dirty-limit (before 8.1: the preflight)",
        },
    }
}

/// `max-bandwidth` for "unlimited": QEMU has no "off", so a value far above
/// any link (100 GB/s). Without it QEMU 7.2 caps at 32 MiB/s.
pub const UNLIMITED_BANDWIDTH: u64 = 100_000_000_000;

/// Which QEMU a setting goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The sending QEMU.
    Source,
    /// The receiving QEMU.
    Destination,
    /// Both must agree.
    Both,
}

impl Side {
    /// Whether a QEMU of `role` gets this setting.
    pub fn applies_to(self, source: bool) -> bool {
        match self {
            Side::Both => true,
            Side::Source => source,
            Side::Destination => !source,
        }
    }
}

/// One scenario setting in QMP terms.
#[derive(Debug, Clone, PartialEq)]
pub struct Knob {
    /// The scenario field, e.g. `migration.multifd_channels`.
    pub field: &'static str,
    /// Its value as written.
    pub value: String,
    /// Where it goes.
    pub side: Side,
    /// Capabilities it turns on.
    pub caps: Vec<&'static str>,
    /// Parameters it sets.
    pub params: Vec<(&'static str, Value)>,
}

/// The knobs of one run's settings (`downtime_limit` is the limit to start
/// with: the first downtime step when stepping).
pub fn settings_knobs(p: &MigrationSettings) -> Vec<Knob> {
    let downtime_ms = p.downtime_limit.0.as_millis() as u64;
    let knob = |field, value: String, side, caps: Vec<&'static str>, params| Knob {
        field,
        value,
        side,
        caps,
        params,
    };
    let mut out = vec![
        knob(
            "migration.downtime_limit",
            p.downtime_limit.to_string(),
            Side::Source,
            vec![],
            vec![("downtime-limit", json!(downtime_ms))],
        ),
        knob(
            "migration.max_bandwidth",
            p.max_bandwidth.to_string(),
            Side::Source,
            vec![],
            vec![(
                "max-bandwidth",
                json!(match p.max_bandwidth {
                    BandwidthCap::Unlimited => UNLIMITED_BANDWIDTH,
                    BandwidthCap::Limit(r) => r.0,
                }),
            )],
        ),
    ];
    if let Channels::On(n) = p.multifd_channels {
        out.push(knob(
            "migration.multifd_channels",
            n.to_string(),
            Side::Both,
            vec!["multifd"],
            vec![("multifd-channels", json!(n))],
        ));
        out.push(knob(
            "migration.multifd_compression",
            p.multifd_compression.to_string(),
            Side::Both,
            vec![],
            vec![(
                "multifd-compression",
                json!(p.multifd_compression.to_string()),
            )],
        ));
        let level = match p.multifd_compression {
            Compression::Zlib => Some("multifd-zlib-level"),
            Compression::Zstd => Some("multifd-zstd-level"),
            _ => None,
        };
        if let Some(name) = level {
            out.push(knob(
                "migration.multifd_compression_level",
                p.multifd_compression_level.to_string(),
                Side::Source,
                vec![],
                vec![(name, json!(p.multifd_compression_level))],
            ));
        }
    }
    if let Xbzrle::Cache(size) = p.xbzrle_cache {
        out.push(knob(
            "migration.xbzrle_cache",
            p.xbzrle_cache.to_string(),
            Side::Source,
            vec!["xbzrle"],
            vec![("xbzrle-cache-size", json!(size.0))],
        ));
    }
    if let AutoConverge::On {
        initial,
        increment,
        max,
    } = p.auto_converge
    {
        out.push(knob(
            "migration.auto_converge",
            p.auto_converge.to_string(),
            Side::Source,
            vec!["auto-converge"],
            vec![
                ("cpu-throttle-initial", json!(initial)),
                ("cpu-throttle-increment", json!(increment)),
                ("max-cpu-throttle", json!(max)),
            ],
        ));
    }
    if p.postcopy != Postcopy::Off {
        out.push(knob(
            "migration.postcopy",
            p.postcopy.to_string(),
            Side::Both,
            vec!["postcopy-ram"],
            vec![],
        ));
    }
    if let DirtyLimit::Rate(r) = p.dirty_limit {
        out.push(knob(
            "migration.dirty_limit",
            p.dirty_limit.to_string(),
            Side::Source,
            vec!["dirty-limit"],
            vec![("vcpu-dirty-limit", json!((r.0 / 1_000_000).max(1)))],
        ));
    }
    let a = p.announce;
    let ms = |d: migbench_model::units::Dur| json!(d.0.as_millis() as u64);
    let mut announce = Vec::new();
    if let Some(d) = a.initial {
        announce.push(("announce-initial", ms(d)));
    }
    if let Some(d) = a.max {
        announce.push(("announce-max", ms(d)));
    }
    if let Some(n) = a.rounds {
        announce.push(("announce-rounds", json!(n)));
    }
    if let Some(d) = a.step {
        announce.push(("announce-step", ms(d)));
    }
    if !announce.is_empty() {
        out.push(knob(
            "migration.announce",
            a.to_string(),
            Side::Destination,
            vec![],
            announce,
        ));
    }
    out
}

/// The capabilities (as a `migrate-set-capabilities` list) and parameters
/// (as a `migrate-set-parameters` object) of `knobs` for one side.
pub fn qmp_arguments(knobs: &[Knob], source: bool) -> (Value, Value) {
    let mut caps: Vec<Value> = Vec::new();
    let mut params = Map::new();
    for k in knobs.iter().filter(|k| k.side.applies_to(source)) {
        for c in &k.caps {
            caps.push(json!({"capability": c, "state": true}));
        }
        for (name, v) in &k.params {
            params.insert(name.to_string(), v.clone());
        }
    }
    (json!({ "capabilities": caps }), Value::Object(params))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_migration_key_is_sent_to_qemu_or_enforced_by_migbench_as_handling_says() {
        use crate::migrate::handling::off_default;
        let default = settings_knobs(&off_default(MigrationKey::timeout));
        for &key in MigrationKey::ALL {
            let knobs = settings_knobs(&off_default(key));
            let knob = knobs.iter().find(|k| k.field == key.name());
            match handling(key) {
                Handling::Sent(_) | Handling::Partly { .. } => {
                    let k = knob.unwrap_or_else(|| panic!("{}: no QMP knob", key.name()));
                    assert!(
                        !k.caps.is_empty() || !k.params.is_empty(),
                        "{}: a knob that sets nothing",
                        key.name()
                    );
                    assert_ne!(knobs, default, "{}: nothing changed", key.name());
                }
                Handling::ByMigbench(_) => {
                    assert!(knob.is_none(), "{} reaches QEMU", key.name());
                }
                Handling::Refused(why) => panic!("{}: refused ({why})", key.name()),
            }
        }
    }

    fn run(text: &str) -> MigrationSettings {
        migbench_model::matrix::sample_run(&format!(
            "[migration]
{text}"
        ))
        .migration()
    }

    #[test]
    fn plain_runs_set_only_downtime_and_bandwidth() {
        let mut s = run("");
        s.downtime_limit = migbench_model::units::Dur(std::time::Duration::from_millis(300));
        let k = settings_knobs(&s);
        assert_eq!(k.len(), 2);
        let (caps, params) = qmp_arguments(&k, true);
        assert_eq!(caps, json!({"capabilities": []}));
        assert_eq!(
            params,
            json!({"downtime-limit": 300, "max-bandwidth": UNLIMITED_BANDWIDTH})
        );
        let (_, dst) = qmp_arguments(&k, false);
        assert_eq!(dst, json!({}));
    }

    #[test]
    fn every_knob_maps_to_its_qemu_names_and_sides() {
        let p = run(
            "multifd_channels = 4\nmultifd_compression = \"zstd\"\nmultifd_compression_level = 3\nxbzrle_cache = \"32MiB\"\nauto_converge = \"30/20/90\"\npostcopy = \"after 2 passes\"\nannounce = \"initial=10ms,rounds=3\"\nmax_bandwidth = \"50MB/s\"\n",
        );
        let mut p = p;
        p.downtime_limit = migbench_model::units::Dur(std::time::Duration::from_millis(100));
        let k = settings_knobs(&p);
        let (caps, src) = qmp_arguments(&k, true);
        let names: Vec<&str> = caps["capabilities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["capability"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            ["multifd", "xbzrle", "auto-converge", "postcopy-ram"]
        );
        assert_eq!(src["multifd-channels"], 4);
        assert_eq!(src["multifd-compression"], "zstd");
        assert_eq!(src["multifd-zstd-level"], 3);
        assert_eq!(src["xbzrle-cache-size"], 32 << 20);
        assert_eq!(src["cpu-throttle-initial"], 30);
        assert_eq!(src["max-cpu-throttle"], 90);
        assert_eq!(src["max-bandwidth"], 50_000_000);
        assert_eq!(src["downtime-limit"], 100);
        assert!(src.get("announce-initial").is_none());
        let (dcaps, dst) = qmp_arguments(&k, false);
        assert_eq!(dcaps["capabilities"].as_array().unwrap().len(), 2);
        assert_eq!(dst["multifd-channels"], 4);
        assert_eq!(dst["announce-initial"], 10);
        assert_eq!(dst["announce-rounds"], 3);
        assert!(dst.get("xbzrle-cache-size").is_none());
    }
}
