//! The subcommands: typed arguments in, work done, typed errors out.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use migbench_model::matrix::Limits;
use migbench_model::scalar::ScalarField;
use migbench_model::scenario::Accel;
use migbench_model::units::Dur;
use migbench_model::{Outcome, RunParams, RunRecord, Scenario};

use crate::backend::qmp::qmp_lab::QmpLab;
use crate::cleanup::sweep;
use crate::executor::MigrationExecutor;
use crate::lab::{accel, image, net};
use crate::lab_executors::LabExecutors;
use crate::migrate::Preflight;
use crate::recorder::Recorder;
use crate::scheduler::{run_matrix, Cancel, Display};
use crate::{manifest, table};

mod lab_hosts;
pub use lab_hosts::lab_hosts;
#[cfg(feature = "libvirt")]
mod on_hosts;

pub use crate::usage::UsageError;

/// Checks before anything real runs.
pub(crate) fn preflight() -> Result<()> {
    net::check_privileges().map_err(UsageError)?;
    if crate::system::run("qemu-system-x86_64", &["--version"]).is_err() {
        bail!(UsageError(
            "qemu-system-x86_64 is missing: apt-get install qemu-system-x86".into()
        ));
    }
    Ok(())
}

/// When runs go through libvirt: the daemon is installed, its QEMU user
/// exists, and libvirt can express every setting.
fn libvirt_preflight(
    rt: &tokio::runtime::Runtime,
    matrix: &[RunParams],
    scenario: &Path,
) -> Result<()> {
    use migbench_model::settings::Backend;
    if !matrix.iter().any(|p| p.backend == Backend::Libvirt) {
        return Ok(());
    }
    let refuse = |why: String| -> anyhow::Error {
        UsageError(format!(
            "{}: backend.kind = \"libvirt\": {why}",
            scenario.display()
        ))
        .into()
    };
    #[cfg(not(feature = "libvirt"))]
    {
        let _ = rt;
        return Err(refuse(
            "this migbench was built without the `libvirt` feature".into(),
        ));
    }
    #[cfg(feature = "libvirt")]
    {
        use crate::backend::libvirt::libvirt_preflight::LibvirtPreflight;
        if crate::system::run("libvirtd", &["--version"]).is_err() {
            return Err(refuse("libvirtd is missing: apt-get install libvirt-daemon libvirt-daemon-driver-qemu libvirt-daemon-system".into()));
        }
        // libvirtd resolves its compiled-in QEMU user before reading qemu.conf.
        if nix::unistd::User::from_name("libvirt-qemu")
            .ok()
            .flatten()
            .is_none()
        {
            return Err(refuse(
                "user libvirt-qemu is missing: apt-get install libvirt-daemon-system".into(),
            ));
        }
        match rt.block_on(LibvirtPreflight.check(matrix))? {
            Ok(()) => Ok(()),
            Err(u) => Err(UsageError(format!("{}: {u}", scenario.display())).into()),
        }
    }
}

/// Build or find the guest image, with a spinner.
pub fn guest_image(agent: Option<&Path>, display: &Display) -> Result<image::GuestImage> {
    let agent = image::find_agent(agent)?;
    let spin = display.multi.add(indicatif::ProgressBar::new_spinner());
    spin.set_message("preparing guest image (first time: downloads the cloud kernel)");
    spin.enable_steady_tick(Duration::from_millis(120));
    let img = image::build(&agent);
    spin.finish_and_clear();
    Ok(img?)
}

/// `sc`'s matrix, refused (a usage error) above `limits` before it is
/// expanded.
pub(crate) fn expand_bounded(
    sc: &Scenario,
    scenario: &Path,
    limits: &Limits,
) -> Result<Vec<RunParams>> {
    migbench_predict::plan::expand_bounded(sc, limits)
        .map_err(|e| UsageError(format!("{}: {e}", scenario.display())).into())
}

/// `migbench run`.
pub fn run(
    rt: &tokio::runtime::Runtime,
    cancel: &Cancel,
    scenario: &Path,
    dry_run: bool,
    results: &Path,
    agent: Option<PathBuf>,
    (resume, allow_concurrent, limits): (Option<&Path>, bool, &Limits),
) -> Result<i32> {
    let text = Scenario::read_text(scenario)?;
    let sc = Scenario::parse(scenario, &text)?;
    let matrix = expand_bounded(&sc, scenario, limits)?;
    if let Some(dir) = resume {
        manifest::same_scenario(dir, scenario, &text)?;
    }
    if dry_run {
        use std::io::Write;
        // The size first: a long plan's total is far below. A closed
        // stdout (`| head`) ends it quietly.
        let secs = migbench_predict::plan::matrix_secs(&matrix);
        let plan = crate::table::render_plan(&sc, &matrix);
        let mut out = std::io::stdout().lock();
        return quiet_on_broken_pipe(
            writeln!(
                out,
                "matrix: {} runs, estimated {}",
                matrix.len(),
                migbench_model::matrix::human_secs(secs)
            )
            .and_then(|()| out.write_all(plan.as_bytes()))
            .map(|()| 0)
            .map_err(Into::into),
        );
    }
    let _lock = crate::lock::for_measuring(allow_concurrent)?;
    if sc.hosts.is_some() {
        #[cfg(feature = "libvirt")]
        return on_hosts::run_on_hosts(
            rt,
            cancel,
            (&sc, scenario, &text),
            &matrix,
            results,
            (agent, resume),
        );
        #[cfg(not(feature = "libvirt"))]
        bail!(UsageError(format!(
            "{}: [hosts] needs migbench built with the `libvirt` feature",
            scenario.display()
        )));
    }
    preflight()?;
    // The largest run's two QEMUs must fit in memory, the raw series on disk.
    let facts = crate::resources::HostFacts::read(results).with_context(|| {
        format!(
            "reading free memory and disk space for {}",
            results.display()
        )
    })?;
    crate::resources::check(&matrix, facts, results)
        .map_err(|e| UsageError(format!("{}: {e}", scenario.display())))?;
    if sc.needs_netem() {
        net::check_netem().map_err(|e| UsageError(format!("{}: {e}", scenario.display())))?;
    }
    // Refuse settings the installed QEMU lacks before anything runs.
    let probe_dir = crate::lab::rundir::RunDir::create("probe")?;
    let qemu = crate::backend::qmp::qmp_preflight::QmpPreflight {
        dir: probe_dir.path(),
    };
    match rt.block_on(qemu.check(&matrix))? {
        Ok(()) => {}
        Err(u) => {
            return Err(UsageError(format!("{}: {u}", scenario.display())).into());
        }
    }
    drop(probe_dir);
    libvirt_preflight(rt, &matrix, scenario)?;
    let display = Display::new();
    sweep(&display);
    let img = guest_image(agent.as_deref(), &display)?;
    let accel = rt.block_on(accel::resolve(sc.lab.accel, &img));
    if sc.lab.accel == Accel::Auto {
        display.line(&format!("accelerator: {accel} (auto: timed KVM test boot)"));
    }
    let m = manifest::build(
        &sc,
        &scenario.display().to_string(),
        &text,
        &matrix,
        &accel,
        &img.id,
    );
    let (mut rec, kept) = open_results(results, &m, resume, &display)?;
    display.line(&format!("results: {}", rec.dir().display()));
    let env = QmpLab::new(
        img,
        accel.clone(),
        sc.lab.tcg_dirty_workaround,
        sc.lab.fast_start,
    );
    let mut exec = LabExecutors::new(MigrationExecutor::new(
        env, &sc, &accel, rt, cancel, &display,
    ));
    finish_matrix(
        &matrix,
        &sc.repetitions,
        kept,
        &mut exec,
        &mut rec,
        cancel,
        &display,
    )
}

/// A new results directory under `results`, or the one being resumed
/// with the runs it keeps (what it dropped shown on `display`).
fn open_results(
    results: &Path,
    m: &migbench_model::Manifest,
    resume: Option<&Path>,
    display: &Display,
) -> Result<(Recorder, Vec<RunRecord>)> {
    let Some(dir) = resume else {
        let rec = Recorder::create(results, m)
            .with_context(|| format!("creating a results directory under {}", results.display()))?;
        return Ok((rec, Vec::new()));
    };
    resume_results(dir, m.matrix.len(), display)
}

/// The results directory `dir` being resumed, with the runs it keeps of a
/// matrix of `total` (what it dropped shown on `display`).
fn resume_results(
    dir: &Path,
    total: usize,
    display: &Display,
) -> Result<(Recorder, Vec<RunRecord>)> {
    let r = Recorder::resume(dir).with_context(|| format!("resuming {}", dir.display()))?;
    for n in &r.notes {
        display.line(&format!("resume: {n}"));
    }
    display.line(&format!(
        "resume: {} of {total} runs recorded, {} to run",
        r.kept.len(),
        total.saturating_sub(r.kept.len())
    ));
    Ok((r.recorder, r.kept))
}

/// Run the matrix, print the table; the exit code (130 interrupted, 1 a
/// run failed, else 0).
fn finish_matrix(
    matrix: &[RunParams],
    plan: &migbench_model::repeat::Repetitions,
    kept: Vec<RunRecord>,
    exec: &mut dyn crate::scheduler::Executor,
    rec: &mut Recorder,
    cancel: &Cancel,
    display: &Display,
) -> Result<i32> {
    let s = run_matrix(matrix, plan, &kept, exec, rec, cancel, display)?;
    conclude(matrix.len(), kept, s.records, s.interrupted, rec)
}

/// Print the table of a matrix of `total` runs: those `kept` from before a
/// resume and those that `ran` now; the exit code (130 interrupted, 1 a
/// run failed, else 0).
fn conclude(
    total: usize,
    kept: Vec<RunRecord>,
    ran: Vec<RunRecord>,
    interrupted: bool,
    rec: &mut Recorder,
) -> Result<i32> {
    // A resumed matrix, or host pairs run in parallel, appended out of
    // order: `runs.jsonl` is rewritten in matrix order.
    let reorder = !kept.is_empty() || ran.iter().any(|r| !r.params.pair.is_empty());
    let mut all = kept;
    all.extend(ran);
    all.sort_by_key(|r| r.params.index);
    if reorder {
        rec.sort_runs()?;
    }
    println!("{}", table::render(&all));
    if let Some(line) = table::render_timing(&all) {
        println!("{line}");
    }
    println!("results: {}", rec.dir().display());
    if interrupted {
        eprintln!(
            "interrupted: {} of {total} runs recorded; continue with --resume {}",
            all.len(),
            rec.dir().display()
        );
        return Ok(130);
    }
    Ok(if all.iter().any(|r| r.outcome == Outcome::Failed) {
        1
    } else {
        0
    })
}

/// `migbench image`.
pub fn image_cmd(agent: Option<PathBuf>) -> Result<i32> {
    let img = guest_image(agent.as_deref(), &Display::new())?;
    println!("image   {}", img.id);
    println!("kernel  {}", img.kernel.display());
    println!("initrd  {}", img.initrd.display());
    println!("from    {}", img.kernel_package);
    Ok(0)
}

/// Where each saved guest state's non-zero memory lies: its RAM, its
/// non-zero bytes in all and in the top 16, 32 and 64 MiB, and per 16 MiB
/// from the top down.
pub fn saved_states_cmd() -> Result<i32> {
    use crate::backend::qmp::{snapshot, state_layout};
    const MIB: u64 = 1 << 20;
    let states = snapshot::saved();
    if states.is_empty() {
        println!("no saved guest states in {}", snapshot::cache().display());
        return Ok(0);
    }
    println!(
        "MB non-zero: in all, in the top 16/32/64 MiB of RAM, then per 16 MiB from the top down"
    );
    for (path, _) in states {
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let layout = state_layout::read(&bytes).with_context(|| format!("{}", path.display()))?;
        let mb = |b: u64| format!("{:.1}", b as f64 / 1e6);
        let tops: Vec<String> = [16, 32, 64]
            .iter()
            .map(|w| mb(layout.nonzero_in_top(w * MIB)))
            .collect();
        println!(
            "{}  {} MiB  {}  top {}",
            path.file_name().unwrap_or_default().to_string_lossy(),
            layout.ram_bytes() / MIB,
            mb(layout.nonzero_between(0, layout.ram_bytes())),
            tops.join(" / ")
        );
        let map: Vec<String> = layout
            .map_from_top(16 * MIB)
            .iter()
            .map(|b| format!("{:.0}", *b as f64 / 1e6))
            .collect();
        println!("  {}", map.join(" "));
    }
    Ok(0)
}

pub(crate) fn parse_dur(what: &str, s: &str) -> Result<Duration> {
    Dur::parse_str(s)
        .map(|d| d.0)
        .map_err(|e| UsageError(format!("{what}: {e}")).into())
}

/// Run `migbench-analyze <sub> <args>` in place of this process. The
/// analyzer is a separate binary so the driver does not link polars.
pub fn analyze(sub: &str, args: &[String]) -> Result<i32> {
    use std::os::unix::process::CommandExt;
    let beside = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join("migbench-analyze")))
        .filter(|p| p.is_file());
    let program = beside.unwrap_or_else(|| PathBuf::from("migbench-analyze"));
    // argv[0] `migbench`: the analyzer's help and usage errors then name
    // the command the user typed (`migbench report ...`).
    let err = std::process::Command::new(&program)
        .arg0("migbench")
        .arg(sub)
        .args(args)
        .exec();
    bail!(UsageError(format!(
        "cannot run {} ({err}): build it with `cargo build --release -p migbench-analysis`",
        program.display()
    )))
}

/// A command's result, with a closed stdout (`| head`) taken as success:
/// the reader has what it wanted.
pub fn quiet_on_broken_pipe(r: Result<i32>) -> Result<i32> {
    match r {
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            Ok(0)
        }
        r => r,
    }
}
