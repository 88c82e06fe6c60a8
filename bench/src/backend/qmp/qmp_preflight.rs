//! The preflight: before any run, ask the installed QEMU (a throw-away
//! `-M none` process) whether it has and accepts every setting of a
//! matrix ([`check`]), so an unsupported setting is refused naming the
//! scenario field, its value and the QEMU version.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use migbench_model::RunParams;

use super::client::{
    MigrateSetCapabilities, MigrateSetParameters, Qmp, QmpError, QueryMigrateCapabilities,
    QueryMigrateParameters, QueryVersion,
};
use super::qmp_settings::{handling, qmp_arguments, settings_knobs, Knob};
use crate::migrate::handling::refused_by;
use crate::migrate::{Preflight, Unsupported};

/// The QMP backend's preflight: a throw-away QEMU with its socket in `dir`.
pub struct QmpPreflight<'a> {
    /// A private directory for the QMP socket.
    pub dir: &'a Path,
}

impl Preflight for QmpPreflight<'_> {
    async fn check(&self, runs: &[RunParams]) -> anyhow::Result<Result<(), Unsupported>> {
        check(runs, self.dir).await
    }
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
async fn check(runs: &[RunParams], dir: &Path) -> anyhow::Result<Result<(), Unsupported>> {
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
        backend: format!("QEMU {qemu}"),
    };
    let mut seen = BTreeSet::new();
    let mut combos = BTreeSet::new();
    let mut verdict = Ok(());
    'runs: for p in runs {
        let s = p.migration();
        if let Some((key, why)) = refused_by(&s, handling) {
            verdict = Err(Unsupported {
                field: key.name().to_string(),
                value: s.value_of(key),
                why: why.to_string(),
                backend: format!("QEMU {qemu}"),
            });
            break 'runs;
        }
        let ks = settings_knobs(&s);
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
                Ok::<Value, QmpError>(now)
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
                    backend: format!("QEMU {qemu}"),
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

/// "7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)" from a `query-version` reply.
pub fn qemu_version(v: &Value) -> String {
    let n = |k: &str| v["qemu"][k].as_u64().unwrap_or(0);
    let base = format!("{}.{}.{}", n("major"), n("minor"), n("micro"));
    match v["package"].as_str().map(str::trim) {
        Some(p) if !p.is_empty() => format!("{base} ({p})"),
        _ => base,
    }
}

/// QEMU's own words from a command error.
fn qmp_message(e: &QmpError) -> String {
    match e {
        QmpError::Command { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_string_names_the_package() {
        let v = json!({"qemu": {"major": 7, "minor": 2, "micro": 22}, "package": "Debian 1:7.2"});
        assert_eq!(qemu_version(&v), "7.2.22 (Debian 1:7.2)");
    }
}
