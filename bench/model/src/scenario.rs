//! Scenario files: the TOML a user writes, deserialised and validated into a
//! typed [`Scenario`]. The matrix sections (`[guest]`, `[link]`,
//! `[migration]`, ...) are generated from the knob table
//! ([`crate::knobs`]); every field there may be one value or a list
//! ([`crate::scalar::Many`]); [`crate::matrix`] expands them into runs.
//!
//! Errors name the file, line, column and dotted field, and say what is
//! allowed ([`ScenarioError`]); positions come from the TOML parser's
//! spans ([`spans`]).

pub mod hosts;
mod spans;
mod validate;
mod variants;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use crate::knobs::{
    BackendSpec, FaultSpec, GuestSpec, LinkSpec, MigrationSpec, PolicySpec, ProbeSpec, ServiceSpec,
    StorageSpec, WorkloadSpec,
};
use crate::units::Size;

/// Which accelerator QEMU uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    /// KVM if a timed test boot under KVM succeeds, else TCG.
    #[default]
    Auto,
    /// Hardware virtualisation; fails the run if the guest does not boot.
    Kvm,
    /// Software emulation: slow but works everywhere.
    Tcg,
}

/// One named set of migration settings and policies (`[[variant]]`): the
/// scenario's `[migration]` and `[policy]` with this variant's keys on top.
/// Variants compare remedies that are not a Cartesian product ("plain",
/// "auto-converge", "post-copy", ...).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Variant {
    /// Name shown in tables and charts ("" when the scenario has no variants).
    pub name: String,
    /// Resolved migration settings.
    pub migration: MigrationSpec,
    /// Resolved policies.
    pub policy: PolicySpec,
}

/// A `[[variant]]` as written: its name and the keys it overrides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantText {
    /// Name (letters, digits, - and _).
    pub name: String,
    /// Keys replacing `[migration]`'s.
    #[serde(default)]
    pub migration: toml::Table,
    /// Keys replacing `[policy]`'s.
    #[serde(default)]
    pub policy: toml::Table,
}

/// Lab settings that apply to every run (not matrix dimensions).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LabSpec {
    /// Accelerator: auto (timed KVM test boot, else TCG), kvm, tcg.
    pub accel: Accel,
    /// Under TCG, pad guest RAM by 8 KiB so QEMU 7.2 tracks dirty pages
    /// exactly (its fast path loses stores; see docs/src/findings.md). Set false to
    /// reproduce the bug: destination guests crash or fail integrity.
    pub tcg_dirty_workaround: bool,
    /// Start each run's guest from a state saved once per guest
    /// configuration instead of booting it (guests without a disk; on by
    /// default, `false` boots every run's guest).
    pub fast_start: bool,
}

impl Default for LabSpec {
    fn default() -> Self {
        LabSpec {
            accel: Accel::Auto,
            tcg_dirty_workaround: true,
            fast_start: true,
        }
    }
}

/// A whole scenario file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scenario {
    /// Name used for the results directory; defaults to the file stem.
    pub name: String,
    /// Free text shown in reports.
    pub description: String,
    /// How many times each combination runs (a count, or `"auto"`).
    pub repetitions: crate::repeat::Repetitions,
    /// What drives the migration.
    pub backend: BackendSpec,
    /// The guest.
    pub guest: GuestSpec,
    /// The in-guest workload.
    pub workload: WorkloadSpec,
    /// The migration link.
    pub link: LinkSpec,
    /// Migration settings.
    pub migration: MigrationSpec,
    /// Policies for migrations that do not converge.
    pub policy: PolicySpec,
    /// Named variants of `[migration]` + `[policy]`, as written.
    #[serde(rename = "variant")]
    pub variant_text: Vec<VariantText>,
    /// The variants resolved (one unnamed variant when none are written).
    #[serde(skip)]
    pub variants: Vec<Variant>,
    /// The probe.
    pub probe: ProbeSpec,
    /// The services a client uses during the migration.
    pub service: ServiceSpec,
    /// Faults injected into the migration.
    pub fault: FaultSpec,
    /// The guest's disk.
    pub storage: StorageSpec,
    /// Lab-wide settings.
    pub lab: LabSpec,
    /// Real hosts instead of the lab.
    pub hosts: Option<hosts::HostsSpec>,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            name: String::new(),
            description: String::new(),
            repetitions: crate::repeat::Repetitions::Fixed(1),
            backend: BackendSpec::default(),
            guest: GuestSpec::default(),
            workload: WorkloadSpec::default(),
            link: LinkSpec::default(),
            migration: MigrationSpec::default(),
            policy: PolicySpec::default(),
            variant_text: Vec::new(),
            variants: Vec::new(),
            probe: ProbeSpec::default(),
            service: ServiceSpec::default(),
            fault: FaultSpec::default(),
            storage: StorageSpec::default(),
            lab: LabSpec::default(),
            hosts: None,
        }
    }
}

/// "field `a.b`: ", or nothing for a syntax error that names no field.
fn field_prefix(field: &str) -> String {
    if field.is_empty() {
        String::new()
    } else {
        format!("field `{field}`: ")
    }
}

/// The largest scenario file read (1 MiB: the largest shipped is a few KiB).
pub const MAX_SCENARIO_BYTES: u64 = 1 << 20;

/// A scenario file that could not be read or is not valid.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("Cannot read scenario file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The path is not a regular file of sensible size (a pipe or a
    /// device could block or never end).
    #[error("{path}: {why}")]
    NotAFile {
        /// The path.
        path: PathBuf,
        /// What it is and what is allowed.
        why: String,
    },
    /// The file is not valid: where and why (a syntax error names no
    /// field unless the parser knows its key).
    #[error("{}:{line}:{column}: {}{message}", path.display(), field_prefix(field))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// Dotted field name, e.g. `guest.ram`.
        field: String,
        /// What is wrong and what is allowed.
        message: String,
    },
}

/// A problem found after parsing: the field, the variant whose key it is
/// (if it was written in a `[[variant]]`), and what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Problem {
    /// Dotted field, e.g. `migration.postcopy`.
    pub field: String,
    /// Index of the `[[variant]]` that wrote it.
    pub variant: Option<usize>,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl Problem {
    pub(crate) fn new(field: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            field: field.into(),
            variant: None,
            message: message.into(),
        }
    }
}

impl Scenario {
    /// Read, parse and validate a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        Self::parse(path, &Self::read_text(path)?)
    }

    /// The text of scenario file `path`: a regular file of at most
    /// [`MAX_SCENARIO_BYTES`]. A FIFO, a socket or a device is refused
    /// before it is opened (opening a FIFO blocks until a writer comes;
    /// `/dev/zero` never ends).
    pub fn read_text(path: &Path) -> Result<String, ScenarioError> {
        let read = |source| ScenarioError::Read {
            path: path.to_owned(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(read)?;
        let not = |why: String| ScenarioError::NotAFile {
            path: path.to_owned(),
            why,
        };
        if !meta.is_file() {
            use std::os::unix::fs::FileTypeExt;
            let t = meta.file_type();
            let kind = if t.is_dir() {
                "a directory"
            } else if t.is_fifo() {
                "a named pipe"
            } else if t.is_socket() {
                "a socket"
            } else if t.is_char_device() || t.is_block_device() {
                "a device"
            } else {
                "not a regular file"
            };
            return Err(not(format!(
                "is {kind}: a scenario is read from a regular file (write it to one first)"
            )));
        }
        if meta.len() > MAX_SCENARIO_BYTES {
            return Err(not(format!(
                "is {} bytes: a scenario is at most {} bytes",
                meta.len(),
                MAX_SCENARIO_BYTES
            )));
        }
        use std::io::Read;
        let mut text = String::new();
        std::fs::File::open(path)
            .map_err(read)?
            // The file may have grown since the check.
            .take(MAX_SCENARIO_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(read)?;
        if text.len() as u64 > MAX_SCENARIO_BYTES {
            return Err(not(format!(
                "grew past {MAX_SCENARIO_BYTES} bytes while being read"
            )));
        }
        Ok(text)
    }

    /// Parse and validate scenario text; `path` is used for names and errors.
    pub fn parse(path: &Path, text: &str) -> Result<Scenario, ScenarioError> {
        let doc = toml_edit::ImDocument::parse(text);
        let invalid = |offset: usize, field: String, message: String| {
            let (line, column) = spans::line_col(text, offset);
            ScenarioError::Invalid {
                path: path.to_owned(),
                line,
                column,
                field,
                message,
            }
        };
        let mut sc: Scenario = toml::from_str(text).map_err(|e| {
            let offset = e.span().map(|s| s.start).unwrap_or(0);
            let mut message = e.message().trim().to_string();
            if message.starts_with("unknown field") {
                message = format!("{message} (unknown fields are errors)");
            }
            let field = doc
                .as_ref()
                .map(|d| spans::path_at(d, offset))
                .unwrap_or_default();
            invalid(offset, field, message)
        })?;
        // toml parsed it, so toml_edit does too.
        let doc = doc.expect("the same TOML parses with toml_edit");
        let located = |p: Problem| {
            let offset = spans::offset_of(&doc, &p.field, p.variant);
            // A range error quotes the value as written, not as printed.
            let message = spans::as_written(&p.message, &spans::written(&doc, &p.field, p.variant));
            invalid(offset, p.field, message)
        };
        sc.variants = variants::resolve(&sc, text).map_err(located)?;
        // Real hosts are reached through libvirt: the default backend there.
        if sc.hosts.is_some() && doc.get("backend").and_then(|b| b.get("kind")).is_none() {
            sc.backend.kind.0 = vec![crate::settings::Backend::Libvirt];
        }
        match sc.hosts.as_mut() {
            // An existing domain's size is its own (migbench reads it from libvirt).
            Some(h) if h.provision.is_none() => {
                if doc.get("guest").is_some() {
                    return Err(located(Problem {
                        field: "guest".into(),
                        variant: None,
                        message: "[guest] sizes migbench's own guest; the existing domain's RAM and vCPUs are read from libvirt: remove [guest] (or add [hosts.provision])".into(),
                    }));
                }
                // A stand-in until the run reads the domain's size.
                sc.guest.ram.0 = vec![Size(256 << 20)];
            }
            Some(h) => h.name_provisioned(),
            None => {}
        }
        if sc.name.is_empty() {
            sc.name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "scenario".into());
        }
        sc.validate().map_err(located)?;
        Ok(sc)
    }

    /// True when some run asks for delay, jitter or loss (which need netem).
    pub fn needs_netem(&self) -> bool {
        self.link.delay.0.iter().any(|d| !d.0.is_zero())
            || self.link.jitter.0.iter().any(|d| !d.0.is_zero())
            || self.link.loss.0.iter().any(|l| l.0 > 0.0)
    }
}
