//! Migration settings of a run as QEMU spells them: each scenario knob
//! becomes capabilities and parameters for the source and destination
//! ([`knobs`]), and [`check`] asks an installed QEMU (a throw-away
//! `-M none` process) whether it has and accepts every knob of a matrix,
//! so an unsupported setting is refused before any run starts.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Map, Value};

use migbench_model::units::{
    AutoConverge, BandwidthCap, Channels, Compression, DirtyLimit, Postcopy, Xbzrle,
};
use migbench_model::RunParams;

use crate::qmp::{
    MigrateSetCapabilities, MigrateSetParameters, Qmp, QueryMigrateCapabilities,
    QueryMigrateParameters, QueryVersion,
};

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

/// The knobs of one run; `downtime_ms` is the limit to start with (the
/// first downtime step when stepping).
pub fn knobs(p: &RunParams, downtime_ms: u64) -> Vec<Knob> {
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

/// A setting the installed QEMU lacks or refuses.
#[derive(Debug, thiserror::Error)]
#[error("{field} = \"{value}\": QEMU {qemu} {why}")]
pub struct Unsupported {
    /// Scenario field.
    pub field: String,
    /// Value as written.
    pub value: String,
    /// What QEMU lacks or said.
    pub why: String,
    /// QEMU version.
    pub qemu: String,
}

/// Start a throw-away QEMU (`-M none`) with a QMP socket in `dir`.
async fn probe_qemu(dir: &Path) -> anyhow::Result<(tokio::process::Child, Qmp)> {
    let sock = dir.join("probe-qmp.sock");
    let child = tokio::process::Command::new("qemu-system-x86_64")
        .args(["-M", "none", "-nodefaults", "-display", "none", "-qmp"])
        .arg(format!("unix:{},server=on,wait=off", sock.display()))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let qmp = Qmp::connect(&sock, Duration::from_secs(10)).await?;
    Ok((child, qmp))
}

/// Ask the installed QEMU whether it has and accepts every knob of every
/// run: capabilities and parameters must exist (query-migrate-capabilities,
/// query-migrate-parameters), each knob must be accepted on its own, and
/// each run's capabilities together.
pub async fn check(runs: &[RunParams], dir: &Path) -> anyhow::Result<Result<(), Unsupported>> {
    let (mut child, qmp) = probe_qemu(dir).await?;
    let version = qmp.execute(QueryVersion(json!({}))).await?;
    let qemu = qemu_version(&version);
    let caps: BTreeSet<String> = qmp
        .execute(QueryMigrateCapabilities(json!({})))
        .await?
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c["capability"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let params = qmp.execute(QueryMigrateParameters(json!({}))).await?;
    let defaults = params.as_object().cloned().unwrap_or_default();
    let unsupported = |k: &Knob, why: String| Unsupported {
        field: k.field.to_string(),
        value: k.value.clone(),
        why,
        qemu: qemu.clone(),
    };
    let mut seen = BTreeSet::new();
    let mut combos = BTreeSet::new();
    let mut verdict = Ok(());
    'runs: for p in runs {
        let ks = knobs(p, p.downtime_limit.0.as_millis() as u64);
        for k in &ks {
            if !seen.insert((k.field, k.value.clone())) {
                continue;
            }
            if let Some(c) = k.caps.iter().find(|c| !caps.contains(**c)) {
                verdict = Err(unsupported(
                    k,
                    format!("has no migration capability `{c}`{}", since(k)),
                ));
                break 'runs;
            }
            if let Some((name, _)) = k.params.iter().find(|(n, _)| !defaults.contains_key(*n)) {
                verdict = Err(unsupported(
                    k,
                    format!("has no migration parameter `{name}`{}", since(k)),
                ));
                break 'runs;
            }
            let (c, pr) = qmp_arguments(std::slice::from_ref(k), k.side.applies_to(true));
            let tried = async {
                qmp.execute(MigrateSetCapabilities(c.clone())).await?;
                qmp.execute(MigrateSetParameters(pr)).await?;
                let now = qmp.execute(QueryMigrateParameters(json!({}))).await?;
                qmp.execute(MigrateSetCapabilities(off(&c))).await?;
                Ok::<Value, crate::qmp::QmpError>(now)
            };
            let now = match tried.await {
                Ok(now) => now,
                Err(e) => {
                    verdict = Err(unsupported(
                        k,
                        format!("refuses it: {}{}", qmp_message(&e), since(k)),
                    ));
                    break 'runs;
                }
            };
            // Accepted is not applied: QEMU 7.2 takes multifd-zstd-level
            // and multifd-zlib-level but keeps 1.
            if let Some((name, v)) = k.params.iter().find(|(n, v)| now.get(*n) != Some(v)) {
                let got = now.get(*name).map(Value::to_string).unwrap_or_default();
                verdict = Err(unsupported(
                    k,
                    format!("accepts `{name}` = {v} but reads back {got}: it would be ignored"),
                ));
                break 'runs;
            }
            // Leave the parameters as they were for the next knob.
            let _ = qmp
                .execute(MigrateSetParameters(Value::Object(defaults.clone())))
                .await;
        }
        for source in [true, false] {
            let (c, _) = qmp_arguments(&ks, source);
            if !combos.insert(c.to_string()) {
                continue;
            }
            if let Err(e) = qmp.execute(MigrateSetCapabilities(c.clone())).await {
                let fields: Vec<&str> = ks
                    .iter()
                    .filter(|k| !k.caps.is_empty())
                    .map(|k| k.field)
                    .collect();
                verdict = Err(Unsupported {
                    field: fields.join(" + "),
                    value: p.label(),
                    why: format!("refuses these together: {}", qmp_message(&e)),
                    qemu: qemu.clone(),
                });
                break 'runs;
            }
            let _ = qmp.execute(MigrateSetCapabilities(off(&c))).await;
        }
    }
    let _ = child.kill().await;
    Ok(verdict)
}

/// Which QEMU release first has a knob, for knobs newer than Debian 12's.
fn since(k: &Knob) -> &'static str {
    match (k.field, k.value.as_str()) {
        ("migration.dirty_limit", _) => " (dirty-limit needs QEMU 8.1 or later)",
        ("migration.multifd_compression", "qpl" | "uadk") => {
            " (needs QEMU 9.0 or later built with it)"
        }
        _ => "",
    }
}

/// The same capability list with every state false.
fn off(caps: &Value) -> Value {
    let list: Vec<Value> = caps["capabilities"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| json!({"capability": c["capability"], "state": false}))
                .collect()
        })
        .unwrap_or_default();
    json!({ "capabilities": list })
}

/// QEMU's own words from a command error.
fn qmp_message(e: &crate::qmp::QmpError) -> String {
    match e {
        crate::qmp::QmpError::Command { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// "7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)" from a `query-version` reply.
pub fn qemu_version(v: &Value) -> String {
    let n = |k: &str| v["qemu"][k].as_u64().unwrap_or(0);
    let base = format!("{}.{}.{}", n("major"), n("minor"), n("micro"));
    match v["package"].as_str().map(str::trim) {
        Some(p) if !p.is_empty() => format!("{base} ({p})"),
        _ => base,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str) -> RunParams {
        let sc = migbench_model::Scenario::parse(
            Path::new("k.toml"),
            &format!("[guest]\nram = \"256MiB\"\n[link]\nrate = \"100mbit\"\n[migration]\n{text}"),
        )
        .unwrap();
        migbench_model::expand(&sc).remove(0)
    }

    #[test]
    fn plain_runs_set_only_downtime_and_bandwidth() {
        let k = knobs(&run(""), 300);
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
        let k = knobs(&p, 100);
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

    #[test]
    fn version_string_names_the_package() {
        let v = json!({"qemu": {"major": 7, "minor": 2, "micro": 22}, "package": "Debian 1:7.2"});
        assert_eq!(qemu_version(&v), "7.2.22 (Debian 1:7.2)");
    }
}
