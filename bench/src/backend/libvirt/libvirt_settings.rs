//! Migration settings as libvirt spells them: typed migration parameters
//! and `VIR_MIGRATE_*` flags ([`migrate_call`]), and the settings libvirt
//! has no way to express ([`refused`]), which are turned down before any
//! run rather than silently ignored.

use migbench_model::settings::{
    AutoConverge, BandwidthCap, Channels, Compression, Postcopy, Transport, Xbzrle,
};
use virt::domain::MigrateParameters;
use virt::sys;

use crate::migrate::handling::{refused_by, Handling, MigrationKey};
use crate::migrate::{MigrationSettings, StoragePlan};

/// What the libvirt backend does with each key of `[migration]`
/// ([`crate::migrate::handling`]): [`refused`] turns down every key
/// answered [`Handling::Refused`] off its default, and the tests check
/// each answer against [`migrate_call`].
#[deny(clippy::wildcard_enum_match_arm)]
pub fn handling(key: MigrationKey) -> Handling {
    use MigrationKey as K;
    match key {
        K::downtime_limit => {
            Handling::Sent("virDomainMigrateSetMaxDowntime on the source, before the call")
        }
        K::max_bandwidth => Handling::Sent("typed parameter bandwidth (MiB/s)"),
        K::timeout => Handling::ByMigbench("migbench aborts the job when it runs longer"),
        K::multifd_channels => {
            Handling::Sent("flag VIR_MIGRATE_PARALLEL and parameter parallel.connections")
        }
        K::multifd_compression => {
            Handling::Sent("flag VIR_MIGRATE_COMPRESSED and parameter compression")
        }
        K::multifd_compression_level => {
            Handling::Sent("parameter compression.zlib.level or compression.zstd.level")
        }
        K::xbzrle_cache => Handling::Partly {
            sent: "compression xbzrle and compression.xbzrle.cache",
            refused:
                "beside multifd compression: libvirt takes one compression method per migration",
        },
        K::auto_converge => Handling::Partly {
            sent: "flag VIR_MIGRATE_AUTO_CONVERGE and auto_converge.initial/.increment",
            refused: "a ceiling other than 99 %: libvirt has no max-cpu-throttle",
        },
        K::postcopy => Handling::Sent(
            "flag VIR_MIGRATE_POSTCOPY; migbench calls virDomainMigrateStartPostCopy when due",
        ),
        K::announce => {
            Handling::Refused("has no parameter for QEMU's self-announce timing: use \"default\"")
        }
        K::dirty_limit => Handling::Refused("has no migration flag for dirty-limit convergence"),
    }
}

/// QEMU's default `max-cpu-throttle`; libvirt cannot set another.
const QEMU_MAX_THROTTLE: u32 = 99;

/// What one `virDomainMigrate3` call carries.
#[derive(Debug, Clone, Default)]
pub struct MigrateCall {
    /// Typed parameters.
    pub params: MigrateParameters,
    /// `VIR_MIGRATE_*` flags.
    pub flags: u32,
}

/// Where the migration streams go: the destination's address on the
/// migration link and the ports for RAM and, when copying, the disk
/// (libvirt picks free ones when not given).
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// Destination address on the migration link.
    pub address: String,
    /// RAM stream port.
    pub port: Option<u16>,
    /// Disk (NBD) port.
    pub disks_port: Option<u16>,
}

impl Endpoints {
    /// `tcp://address[:port]` (IPv6 in brackets).
    fn uri(&self, port: Option<u16>) -> String {
        let host = if self.address.contains(':') {
            format!("[{}]", self.address)
        } else {
            self.address.clone()
        };
        match port {
            Some(p) => format!("tcp://{host}:{p}"),
            None => format!("tcp://{host}"),
        }
    }
}

/// How the guest's disks move, as libvirt is told.
#[derive(Debug, Clone, Default)]
pub struct DiskMove {
    /// The disk is on storage both hosts open (libvirt cannot see that for
    /// a local file, so the lab says it is safe).
    pub shared: bool,
    /// Disk targets to copy with a block storage plan (empty: libvirt
    /// copies every writable disk that is not shared).
    pub targets: Vec<String>,
}

/// The migration call for `s` with storage plan `storage`.
pub fn migrate_call(
    s: &MigrationSettings,
    storage: StoragePlan,
    disks: &DiskMove,
    to: &Endpoints,
    dest_xml: Option<String>,
    transport: Transport,
) -> MigrateCall {
    let mut flags = sys::VIR_MIGRATE_LIVE | sys::VIR_MIGRATE_ABORT_ON_ERROR;
    let tunnelled = transport == Transport::Tunnelled;
    // A tunnel carries the data through the daemons' connection: libvirt
    // refuses a migration URI or listen address with it.
    let mut p = MigrateParameters {
        uri: (!tunnelled).then(|| to.uri(to.port)),
        listen_address: (!tunnelled).then(|| to.address.clone()),
        dest_xml,
        ..Default::default()
    };
    match transport {
        Transport::Direct => {}
        Transport::P2p => flags |= sys::VIR_MIGRATE_PEER2PEER,
        Transport::Tunnelled => {
            flags |= sys::VIR_MIGRATE_PEER2PEER | sys::VIR_MIGRATE_TUNNELLED;
        }
    }
    if let BandwidthCap::Limit(r) = s.max_bandwidth {
        // libvirt's bandwidth is MiB/s; never round a cap to zero (= unlimited).
        p.bandwidth = Some((r.0 >> 20).max(1));
    }
    if let Channels::On(n) = s.multifd_channels {
        flags |= sys::VIR_MIGRATE_PARALLEL;
        p.parallel_connections = Some(n as i32);
        match s.multifd_compression {
            Compression::None => {}
            c => {
                flags |= sys::VIR_MIGRATE_COMPRESSED;
                p.compression = Some(c.to_string());
                let level = Some(s.multifd_compression_level.0 as i32);
                if c == Compression::Zlib {
                    p.compression_zlib_level = level;
                } else if c == Compression::Zstd {
                    p.compression_zstd_level = level;
                }
            }
        }
    }
    if let Xbzrle::Cache(size) = s.xbzrle_cache {
        flags |= sys::VIR_MIGRATE_COMPRESSED;
        p.compression = Some("xbzrle".into());
        p.compression_xbzrle_cache = Some(size.0);
    }
    if let AutoConverge::On {
        initial, increment, ..
    } = s.auto_converge
    {
        flags |= sys::VIR_MIGRATE_AUTO_CONVERGE;
        p.auto_converge_initial = Some(initial as i32);
        p.auto_converge_increment = Some(increment as i32);
    }
    if s.postcopy != Postcopy::Off {
        flags |= sys::VIR_MIGRATE_POSTCOPY;
    }
    match storage {
        StoragePlan::Shared if disks.shared => flags |= sys::VIR_MIGRATE_UNSAFE,
        StoragePlan::Shared => {}
        StoragePlan::Copy { top_only, .. } => {
            flags |= if top_only {
                sys::VIR_MIGRATE_NON_SHARED_INC
            } else {
                sys::VIR_MIGRATE_NON_SHARED_DISK
            };
            p.migrate_disks = disks.targets.clone();
            p.disks_uri = Some(to.uri(to.disks_port));
        }
    }
    MigrateCall { params: p, flags }
}

/// Names of the `VIR_MIGRATE_*` flags migbench sets.
const FLAG_NAMES: [(u32, &str); 11] = [
    (sys::VIR_MIGRATE_LIVE, "live"),
    (sys::VIR_MIGRATE_ABORT_ON_ERROR, "abort-on-error"),
    (sys::VIR_MIGRATE_PARALLEL, "parallel"),
    (sys::VIR_MIGRATE_COMPRESSED, "compressed"),
    (sys::VIR_MIGRATE_AUTO_CONVERGE, "auto-converge"),
    (sys::VIR_MIGRATE_POSTCOPY, "postcopy"),
    (sys::VIR_MIGRATE_UNSAFE, "unsafe"),
    (sys::VIR_MIGRATE_NON_SHARED_DISK, "copy-storage-all"),
    (sys::VIR_MIGRATE_NON_SHARED_INC, "copy-storage-inc"),
    (sys::VIR_MIGRATE_PEER2PEER, "p2p"),
    (sys::VIR_MIGRATE_TUNNELLED, "tunnelled"),
];

/// The call as recorded in `migration-settings.json`: flag names and the
/// parameters set (the destination XML by its length only).
pub fn call_json(c: &MigrateCall) -> serde_json::Value {
    let p = &c.params;
    let flags: Vec<&str> = FLAG_NAMES
        .iter()
        .filter(|(f, _)| c.flags & f != 0)
        .map(|(_, n)| *n)
        .collect();
    let mut params = serde_json::Map::new();
    let mut put = |k: &str, v: Option<serde_json::Value>| {
        if let Some(v) = v {
            params.insert(k.into(), v);
        }
    };
    put("migrate_uri", p.uri.clone().map(Into::into));
    put("listen_address", p.listen_address.clone().map(Into::into));
    put("bandwidth_mib_s", p.bandwidth.map(Into::into));
    put(
        "parallel_connections",
        p.parallel_connections.map(Into::into),
    );
    put("compression", p.compression.clone().map(Into::into));
    put(
        "compression_zlib_level",
        p.compression_zlib_level.map(Into::into),
    );
    put(
        "compression_zstd_level",
        p.compression_zstd_level.map(Into::into),
    );
    put(
        "compression_xbzrle_cache",
        p.compression_xbzrle_cache.map(Into::into),
    );
    put(
        "auto_converge_initial",
        p.auto_converge_initial.map(Into::into),
    );
    put(
        "auto_converge_increment",
        p.auto_converge_increment.map(Into::into),
    );
    put("disks_uri", p.disks_uri.clone().map(Into::into));
    put(
        "migrate_disks",
        (!p.migrate_disks.is_empty()).then(|| p.migrate_disks.clone().into()),
    );
    put(
        "dest_xml_bytes",
        p.dest_xml.as_ref().map(|x| x.len().into()),
    );
    serde_json::json!({ "flags": flags, "params": params })
}

/// The first setting libvirt cannot express: scenario field, value, why.
pub fn refused(s: &MigrationSettings) -> Option<(&'static str, String, &'static str)> {
    if let AutoConverge::On { max, .. } = s.auto_converge {
        if max != QEMU_MAX_THROTTLE {
            return Some((
                "migration.auto_converge",
                s.auto_converge.to_string(),
                "has no parameter for the throttle ceiling (max-cpu-throttle stays 99 %): write \"initial/increment/99\"",
            ));
        }
    }
    if let Some((key, why)) = refused_by(s, handling) {
        return Some((key.name(), s.value_of(key), why));
    }
    if s.xbzrle_cache != Xbzrle::Off && s.multifd_compression != Compression::None {
        return Some((
            "migration.xbzrle_cache",
            s.xbzrle_cache.to_string(),
            "takes one compression method per migration: XBZRLE with multifd compression cannot be combined",
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use migbench_model::matrix::sample_run;
    use std::time::Duration;

    #[test]
    fn every_migration_key_reaches_the_call_is_enforced_by_migbench_or_refused_as_handling_says() {
        use crate::migrate::handling::off_default;
        let call = |s: &MigrationSettings| {
            call_json(&migrate_call(
                s,
                StoragePlan::Shared,
                &DiskMove::default(),
                &to(),
                None,
                Transport::Direct,
            ))
        };
        let plain = call(&off_default(MigrationKey::timeout));
        for &key in MigrationKey::ALL {
            let s = off_default(key);
            let refusal = refused(&s);
            match handling(key) {
                // The downtime limit is set before the call (the driver;
                // the libvirt lab test reads it back).
                Handling::Sent(_) if key == MigrationKey::downtime_limit => {
                    assert_eq!(call(&s), plain);
                    assert!(refusal.is_none());
                }
                Handling::Sent(_) => {
                    assert_ne!(call(&s), plain, "{}: the call did not change", key.name());
                    assert!(refusal.is_none(), "{}: {refusal:?}", key.name());
                }
                Handling::Partly { .. } => {
                    let named = refusal.is_some_and(|r| r.0 == key.name());
                    assert!(
                        named || call(&s) != plain,
                        "{}: neither sent nor refused",
                        key.name()
                    );
                }
                Handling::ByMigbench(_) => {
                    assert_eq!(call(&s), plain, "{} reaches libvirt", key.name());
                    assert!(refusal.is_none());
                }
                Handling::Refused(why) => {
                    assert_eq!(refusal, Some((key.name(), s.value_of(key), why)));
                }
            }
        }
    }

    fn to() -> Endpoints {
        Endpoints {
            address: "198.18.0.2".into(),
            port: Some(4444),
            disks_port: Some(4445),
        }
    }

    #[test]
    fn a_plain_run_is_live_on_the_migration_link() {
        let s = sample_run("").migration();
        let c = migrate_call(
            &s,
            StoragePlan::Shared,
            &DiskMove::default(),
            &to(),
            None,
            Transport::Direct,
        );
        assert_eq!(
            c.flags,
            sys::VIR_MIGRATE_LIVE | sys::VIR_MIGRATE_ABORT_ON_ERROR
        );
        assert_eq!(c.params.uri.as_deref(), Some("tcp://198.18.0.2:4444"));
        assert_eq!(c.params.bandwidth, None);
        assert!(c.params.migrate_disks.is_empty());
        let j = call_json(&c);
        assert_eq!(j["flags"], serde_json::json!(["live", "abort-on-error"]));
        assert_eq!(j["params"]["migrate_uri"], "tcp://198.18.0.2:4444");
        assert!(j["params"].get("bandwidth_mib_s").is_none());
        let anywhere = Endpoints {
            address: "fd00::2".into(),
            port: None,
            disks_port: None,
        };
        let c = migrate_call(
            &s,
            StoragePlan::Shared,
            &DiskMove::default(),
            &anywhere,
            None,
            Transport::Direct,
        );
        assert_eq!(c.params.uri.as_deref(), Some("tcp://[fd00::2]"));
    }

    #[test]
    fn knobs_become_flags_and_typed_parameters() {
        let s = sample_run(
            "[migration]\nmax_bandwidth = \"50MiB/s\"\nmultifd_channels = 4\nmultifd_compression = \"zstd\"\n\
             multifd_compression_level = 3\nauto_converge = \"20/10/99\"\npostcopy = \"allowed\"\n",
        )
        .migration();
        let shared = DiskMove {
            shared: true,
            targets: Vec::new(),
        };
        let c = migrate_call(
            &s,
            StoragePlan::Shared,
            &shared,
            &to(),
            None,
            Transport::Direct,
        );
        for f in [
            sys::VIR_MIGRATE_PARALLEL,
            sys::VIR_MIGRATE_COMPRESSED,
            sys::VIR_MIGRATE_AUTO_CONVERGE,
            sys::VIR_MIGRATE_POSTCOPY,
            sys::VIR_MIGRATE_UNSAFE,
        ] {
            assert_ne!(c.flags & f, 0, "flag {f:#x}");
        }
        assert_eq!(c.params.bandwidth, Some(50));
        assert_eq!(c.params.parallel_connections, Some(4));
        assert_eq!(c.params.compression.as_deref(), Some("zstd"));
        assert_eq!(c.params.compression_zstd_level, Some(3));
        assert_eq!(c.params.auto_converge_initial, Some(20));
        assert!(refused(&s).is_none());
    }

    #[test]
    fn block_copies_the_disk_over_the_migration_link() {
        let s = sample_run("").migration();
        let plan = StoragePlan::Copy {
            ready_timeout: Duration::from_secs(1),
            top_only: true,
        };
        let vda = DiskMove {
            shared: false,
            targets: vec!["vda".into()],
        };
        let c = migrate_call(&s, plan, &vda, &to(), None, Transport::Direct);
        assert_ne!(c.flags & sys::VIR_MIGRATE_NON_SHARED_INC, 0);
        assert_eq!(c.flags & sys::VIR_MIGRATE_NON_SHARED_DISK, 0);
        assert_eq!(c.params.migrate_disks, vec!["vda".to_string()]);
        assert_eq!(c.params.disks_uri.as_deref(), Some("tcp://198.18.0.2:4445"));
    }

    #[test]
    fn what_libvirt_cannot_say_is_refused_by_field() {
        let s = sample_run("[migration]\nauto_converge = \"20/10/50\"\n").migration();
        assert_eq!(refused(&s).unwrap().0, "migration.auto_converge");
        let s = sample_run("[migration]\nannounce = \"initial=10ms\"\n").migration();
        assert_eq!(refused(&s).unwrap().0, "migration.announce");
    }

    #[test]
    fn each_transport_sets_virsh_flags_and_a_tunnel_sends_no_migration_uri() {
        let s = sample_run("").migration();
        let call = |t| {
            migrate_call(
                &s,
                StoragePlan::Shared,
                &DiskMove::default(),
                &to(),
                None,
                t,
            )
        };
        let direct = call(Transport::Direct);
        assert_eq!(direct.flags & sys::VIR_MIGRATE_PEER2PEER, 0);
        assert!(direct.params.uri.is_some() && direct.params.listen_address.is_some());
        let p2p = call(Transport::P2p);
        assert_ne!(p2p.flags & sys::VIR_MIGRATE_PEER2PEER, 0);
        assert_eq!(p2p.flags & sys::VIR_MIGRATE_TUNNELLED, 0);
        assert_eq!(p2p.params.uri, direct.params.uri);
        let tunnel = call(Transport::Tunnelled);
        let both = sys::VIR_MIGRATE_PEER2PEER | sys::VIR_MIGRATE_TUNNELLED;
        assert_eq!(tunnel.flags & both, both);
        assert_eq!(tunnel.params.uri, None);
        assert_eq!(tunnel.params.listen_address, None);
        let flags = call_json(&tunnel)["flags"].to_string();
        assert!(
            flags.contains("\"p2p\"") && flags.contains("\"tunnelled\""),
            "{flags}"
        );
    }
}
