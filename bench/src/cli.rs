//! The command line (clap). Only builds typed arguments; commands live in
//! `commands`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Benchmark QEMU live migration on real, shaped links and measure the
/// downtime a client of the guest really sees.
#[derive(Debug, Parser)]
#[command(name = "migbench", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Cmd,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Run every combination of a scenario's matrix as a real live migration
    /// and record the results under RESULTS/<scenario>/<timestamp>/.
    Run {
        /// Scenario file (TOML), e.g. scenarios/quick.toml.
        scenario: PathBuf,
        /// Print the expanded matrix and the estimated duration; run nothing.
        #[arg(long)]
        dry_run: bool,
        /// Root of the results tree.
        #[arg(long, default_value = "results")]
        results: PathBuf,
        /// Guest agent binary (default: $MIGBENCH_AGENT or the musl release build).
        #[arg(long)]
        agent: Option<PathBuf>,
        /// Continue the interrupted or killed matrix in this results
        /// directory (results/<scenario>/<timestamp>): finished runs are
        /// kept and skipped, a half-finished run is redone. The scenario
        /// file must be the one the directory was started with.
        #[arg(long, value_name = "RESULTS_DIR", conflicts_with = "dry_run")]
        resume: Option<PathBuf>,
        /// Run even while another migbench run or calibrate measures on
        /// this host (their timings will distort each other's).
        #[arg(long)]
        allow_concurrent: bool,
        /// How large a matrix may be.
        #[command(flatten)]
        bounds: Bounds,
    },
    /// Predict each run of a scenario's matrix before running anything:
    /// total time, downtime, passes, bytes and how it ends (and, when it
    /// does not complete, the smallest change that would), from a
    /// migration model with this lab's constants, or with constants
    /// fitted on results (`--fit`, stored for later predictions).
    Predict {
        /// Scenario file (TOML).
        scenario: PathBuf,
        /// Output: a table, or one JSON object per run with its params (as
        /// in runs.jsonl) and predicted_* fields.
        #[arg(long, value_enum, default_value = "table")]
        format: crate::predict::Format,
        /// Same as --format json.
        #[arg(long, conflicts_with = "format")]
        json: bool,
        /// Fit the model on these results directories first and store it
        /// (in --model, default results/model.json).
        #[arg(long, value_name = "RESULTS_DIR", num_args = 1..)]
        fit: Vec<PathBuf>,
        /// The stored model to use (default: results/model.json if a fit
        /// stored one, else this lab's constants).
        #[arg(long, value_name = "FILE")]
        model: Option<PathBuf>,
        /// How large a matrix may be.
        #[command(flatten)]
        bounds: Bounds,
    },
    /// Which migration settings meet a downtime (and time) target for a
    /// guest on a link, ranked least intrusive first, each with its
    /// predicted outcome and why; the link it would need when none does.
    /// Nothing runs: the answers come from the model (see `predict`).
    Advise(crate::advise::AdviseArgs),
    /// Build (or find in the cache) the guest image and print where it is.
    Image {
        /// Guest agent binary (default: $MIGBENCH_AGENT or the musl release build).
        #[arg(long)]
        agent: Option<PathBuf>,
        /// Instead, print where each saved guest state in the cache
        /// (`[lab] fast_start`) holds non-zero memory: its top of RAM is
        /// what an idle guest's first pass sends last, and its pause.
        #[arg(long, conflicts_with = "agent")]
        saved_states: bool,
    },
    /// What a scenario file may say: `scenario keys` prints every key of
    /// the knob table with how it is written, its default and its meaning.
    Scenario {
        /// What to print.
        #[command(subcommand)]
        what: ScenarioCmd,
    },
    /// Pause a running guest for known durations (QMP stop/cont) and compare
    /// the probe-measured outage with each true pause.
    Calibrate(CalibrateArgs),
    /// Remove namespaces, QEMU processes and temp dirs left by killed runs,
    /// and say how much the saved guest states (`[lab] fast_start`) take.
    Cleanup {
        /// Also delete the saved guest states in the cache; the next run of
        /// each guest configuration boots it and saves it again (a few
        /// seconds once).
        #[arg(long)]
        snapshots: bool,
    },
    /// Start two lab hypervisor hosts, each with its own libvirt daemon,
    /// and a running guest on the first; print the `[hosts]` table that
    /// reaches them and keep them until interrupted. A stand-in for real
    /// hosts: try a real-hosts scenario (run migbench inside the printed
    /// client namespace, where the guest's network is) without hypervisors.
    LabHosts {
        /// Guest RAM.
        #[arg(long, default_value = "256MiB")]
        ram: String,
        /// Guest agent binary (default: $MIGBENCH_AGENT or the musl release build).
        #[arg(long)]
        agent: Option<PathBuf>,
        /// Directory for the guest's and daemons' logs.
        #[arg(long, default_value = "lab-hosts")]
        logs: PathBuf,
        /// How `[hosts]` reaches the daemons: unix (their sockets) or ssh
        /// (an sshd beside each, `qemu+ssh://root@…` with keys of the
        /// lab's own kept under --logs, as users reach real hosts).
        #[arg(long, default_value = "unix", value_parser = ["unix", "ssh"])]
        transport: String,
        /// Give the guest a qcow2 disk of this size in the source host's
        /// storage pool `default` (/var/lib/libvirt/images, private to
        /// each host), so `[hosts]` runs with storage.mode = "block" copy
        /// it as `virsh migrate --copy-storage-all` does; every run must
        /// then move the disk (the other host has no such file).
        #[arg(long)]
        disk: Option<String>,
    },
    /// Write a report (HTML, SVG/PNG charts, CSV/Markdown summary) from
    /// results directories: runs `migbench-analyze report` (see its --help).
    #[command(disable_help_flag = true)]
    Report {
        /// Arguments for `migbench-analyze report`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Compare two results directories metric by metric (Welch's t-test),
    /// or gate CI on regressions (--fail-if "total_time_ms > +5%", exit 1
    /// on a significant one): runs `migbench-analyze compare`.
    #[command(disable_help_flag = true)]
    Compare {
        /// Arguments for `migbench-analyze compare`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Print the summary table (--format csv|json|markdown, or parquet
    /// with --output FILE): runs `migbench-analyze summary`.
    #[command(disable_help_flag = true)]
    Summary {
        /// Arguments for `migbench-analyze summary`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Export every run and probe as parquet (or csv) tables for other
    /// tools: runs `migbench-analyze export` (see its --help).
    #[command(disable_help_flag = true)]
    Export {
        /// Arguments for `migbench-analyze export`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

/// `migbench calibrate`'s arguments.
#[derive(Debug, clap::Args)]
pub struct CalibrateArgs {
    /// Pause lengths, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "50ms,200ms,1000ms")]
    pub pauses: Vec<String>,
    /// Probe interval (0.1ms – 100ms).
    #[arg(long, default_value = "1ms")]
    pub interval: String,
    /// How many times each pause is repeated.
    #[arg(long, default_value_t = 3)]
    pub repeat: u32,
    /// Services watched beside the UDP probe: udp (the probe alone), icmp,
    /// tcp-stream, tcp-rr, joined with + or all. With TCP services the
    /// pauses are 3 s apart, so each pause's retransmissions settle.
    #[arg(long, default_value = "all")]
    pub service: String,
    /// Accelerator: auto, kvm or tcg.
    #[arg(long, default_value = "auto")]
    pub accel: String,
    /// Guest agent binary.
    #[arg(long)]
    pub agent: Option<PathBuf>,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Calibrate even while another migbench run or calibrate measures on
    /// this host.
    #[arg(long)]
    pub allow_concurrent: bool,
}

/// The largest matrix `run` and `predict` accept: a bigger one is refused
/// before it is expanded, with what makes it so large.
#[derive(Debug, Clone, clap::Args)]
pub struct Bounds {
    /// Refuse a matrix of more runs than this.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub max_runs: u64,
    /// Refuse a matrix whose runs are estimated to take longer than this
    /// (e.g. "168h").
    #[arg(long, value_name = "DURATION", default_value = "168h")]
    pub max_duration: migbench_model::units::Dur,
}

impl Bounds {
    /// As the model's limits.
    pub fn limits(&self) -> migbench_model::matrix::Limits {
        migbench_model::matrix::Limits {
            max_runs: self.max_runs,
            max_secs: self.max_duration.0.as_secs_f64(),
        }
    }
}

/// `migbench scenario` subcommands.
#[derive(Debug, Subcommand)]
pub enum ScenarioCmd {
    /// Every key of the knob table, section by section: how a value is
    /// written, its default, whether a list makes it a dimension, what it
    /// means (the Markdown form is docs/src/scenario-reference.md).
    Keys {
        /// Plain text, or the Markdown page of the docs.
        #[arg(long, value_enum, default_value = "text")]
        format: KeysFormat,
    },
}

/// How `scenario keys` prints.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum KeysFormat {
    /// One paragraph per key.
    Text,
    /// The docs' scenario reference page.
    Markdown,
}
