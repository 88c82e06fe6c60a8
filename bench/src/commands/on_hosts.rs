//! `migbench run` on real hosts (`[hosts]`): each host pair checked (and
//! migbench's own guest booted on it), then the matrix migrates each
//! pair's guest back and forth, the pairs in parallel, each one run at a
//! time, all into one results directory. A pair that cannot run is
//! reported and skipped; the others go on.

use std::path::{Path, PathBuf};

use anyhow::Result;
use migbench_model::{RunParams, RunRecord, Scenario};

use super::*;
use crate::backend::libvirt::provision::{self, Provisioned};
use crate::backend::libvirt::remote::{RemoteHosts, RemotePreflight};

/// A host pair that passed its checks.
struct Ready {
    name: String,
    hosts: RemoteHosts,
    /// Its stretch of the matrix, sized from the domain libvirt reports.
    runs: Vec<RunParams>,
    /// migbench's own guest on it, removed when the pair's runs end.
    own: std::sync::Mutex<Option<Provisioned>>,
    accel: String,
}

/// A host pair that cannot run: its name, why, and how many of its runs
/// are left unrecorded.
type Skipped = (String, String, usize);

/// A results directory being resumed, with the runs it keeps.
type Resumed = (Recorder, Vec<RunRecord>);

/// How a pair is named in messages: nothing for `[hosts]`' one pair.
fn who(name: &str) -> String {
    if name.is_empty() {
        String::new()
    } else {
        format!("pair `{name}`: ")
    }
}

/// `migbench run` on real hosts: check each pair that has runs left, run
/// those that pass in parallel; the exit code (2 when no pair can run, 1
/// when a run failed or a pair was skipped, 130 interrupted).
pub(super) fn run_on_hosts(
    rt: &tokio::runtime::Runtime,
    cancel: &Cancel,
    (sc, scenario, text): (&Scenario, &Path, &str),
    matrix: &[RunParams],
    results: &Path,
    (agent, resume): (Option<PathBuf>, Option<&Path>),
) -> Result<i32> {
    let spec = sc.hosts.as_ref().expect("called with [hosts]");
    let display = Display::new();
    // A resume first: what each pair has left decides what is checked.
    let resumed = resume
        .map(|dir| resume_results(dir, matrix.len(), &display))
        .transpose()?;
    let recorded: std::collections::HashSet<&str> = resumed
        .iter()
        .flat_map(|(_, kept)| kept.iter().map(|k| k.run_id.as_str()))
        .collect();
    let mut image = None;
    let mut ready: Vec<Ready> = Vec::new();
    let mut skipped: Vec<Skipped> = Vec::new();
    for (name, one) in spec.each_pair() {
        if cancel.is_cancelled() {
            break;
        }
        let runs: Vec<RunParams> = matrix.iter().filter(|p| p.pair == name).cloned().collect();
        let left = runs
            .iter()
            .filter(|p| !recorded.contains(p.run_id().as_str()))
            .count();
        if left == 0 {
            display.line(&format!("{}all {} runs recorded", who(&name), runs.len()));
            continue;
        }
        // The pool and the guest's name before the image is built.
        if one.provision.is_some() {
            if let Err(e) = provision::check(&one) {
                skipped.push((name, format!("{e:#}"), left));
                continue;
            }
            if image.is_none() {
                image = Some(guest_image(agent.as_deref(), &display)?);
            }
        }
        match prepare(rt, cancel, sc, (&name, one), runs, image.as_ref(), &display) {
            Ok(r) => ready.push(r),
            Err(e) => skipped.push((name, format!("{e:#}"), left)),
        }
    }
    let result = run_ready(
        rt,
        cancel,
        (sc, scenario, text),
        (matrix, results, resumed),
        &ready,
        &skipped,
        &display,
    );
    // Guests whose worker never ran (an error before) or did not end.
    for r in &ready {
        remove_own(r, &display);
    }
    result
}

/// Remove the pair's own guest, if it still has one.
fn remove_own(r: &Ready, display: &Display) {
    let own = r.own.lock().unwrap_or_else(|e| e.into_inner()).take();
    remove_guest(&r.name, own, display);
}

/// Remove pair `name`'s own guest `own`, showing what could not go.
fn remove_guest(name: &str, own: Option<Provisioned>, display: &Display) {
    for w in own.map(Provisioned::remove).unwrap_or_default() {
        display.line(&format!("warning: {}{w}", who(name)));
    }
}

/// One pair's checks: its own guest booted (with `[hosts.provision]`,
/// from `image`), the hosts and domain found, every setting of its runs
/// possible there.
fn prepare(
    rt: &tokio::runtime::Runtime,
    cancel: &Cancel,
    sc: &Scenario,
    (name, spec): (&str, migbench_model::scenario::hosts::HostsSpec),
    runs: Vec<RunParams>,
    image: Option<&image::GuestImage>,
    display: &Display,
) -> Result<Ready> {
    let (own, accel) = match (&spec.provision, image) {
        (Some(_), Some(img)) => {
            let accel = provision::accel_for(&spec, sc.lab.accel)?;
            let p = &runs[0];
            display.line(&format!(
                "{}provisioning {} ({}, {} vCPUs, {accel}) on {}",
                who(name),
                spec.domain,
                p.ram,
                p.vcpus,
                spec.src
            ));
            let guest = rt.block_on(provision::provision(
                &spec,
                img,
                (p.ram, p.vcpus.0),
                &accel,
                sc.lab.tcg_dirty_workaround,
                cancel,
            ))?;
            (Some(guest), accel)
        }
        _ => (None, "remote".to_string()),
    };
    let hosts = RemoteHosts { spec, netns: None };
    let checked = (|| {
        let pre = RemotePreflight { hosts: &hosts };
        let found = rt.block_on(pre.hosts())?;
        // The domain's size as libvirt has it, not a default.
        let runs: Vec<RunParams> = runs
            .iter()
            .map(|p| RunParams {
                ram: found.ram,
                vcpus: migbench_model::units::Count(found.vcpus),
                ..p.clone()
            })
            .collect();
        if let Err(u) = rt.block_on(pre.check(&runs))? {
            return Err(anyhow::Error::from(u));
        }
        let who = who(name);
        display.line(&format!("{who}hosts: {}", found.versions));
        display.line(&format!(
            "{who}domain {}: {} RAM, {} vCPUs",
            hosts.spec.domain, found.ram, found.vcpus
        ));
        for line in &found.reach {
            display.line(&format!("{who}{line}"));
        }
        Ok(runs)
    })();
    match checked {
        Ok(runs) => Ok(Ready {
            name: name.to_string(),
            hosts,
            runs,
            own: own.into(),
            accel,
        }),
        Err(e) => {
            remove_guest(name, own, display);
            Err(e)
        }
    }
}

/// Record the pairs that passed, each in a worker of its own, into the
/// results directory being resumed, or a new one.
fn run_ready(
    rt: &tokio::runtime::Runtime,
    cancel: &Cancel,
    (sc, scenario, text): (&Scenario, &Path, &str),
    (matrix, results, resumed): (&[RunParams], &Path, Option<Resumed>),
    ready: &[Ready],
    skipped: &[Skipped],
    display: &Display,
) -> Result<i32> {
    if cancel.is_cancelled() && resumed.is_none() {
        eprintln!("interrupted before any run: nothing was recorded");
        return Ok(130);
    }
    if ready.is_empty() && !skipped.is_empty() {
        let why: Vec<String> = skipped
            .iter()
            .map(|(name, e, _)| format!("{}{e}", who(name)))
            .collect();
        let why = match why.as_slice() {
            [one] if skipped[0].0.is_empty() => one.clone(),
            all => format!("no host pair can run: {}", all.join("; ")),
        };
        bail!(UsageError(format!("{}: {why}", scenario.display())));
    }
    for (name, e, n) in skipped {
        display.line(&format!("pair `{name}` is skipped ({n} runs): {e}"));
    }
    let (mut rec, kept) = match resumed {
        Some(r) => r,
        None => {
            // The manifest's matrix: each ready pair's runs as sized there.
            // (A run's index is its place in the matrix.)
            let mut sized = matrix.to_vec();
            for q in ready.iter().flat_map(|r| &r.runs) {
                sized[q.index] = q.clone();
            }
            let mut accels: Vec<&str> = ready.iter().map(|r| r.accel.as_str()).collect();
            accels.sort_unstable();
            accels.dedup();
            let image = if sc.hosts.as_ref().is_some_and(|h| h.provision.is_some()) {
                "migbench guest (provisioned)"
            } else {
                "none (existing domain)"
            };
            let m = manifest::build(
                sc,
                &scenario.display().to_string(),
                text,
                &sized,
                &accels.join(", "),
                image,
            );
            open_results(results, &m, None, display)?
        }
    };
    display.line(&format!("results: {}", rec.dir().display()));
    let rec_ref = &rec;
    let kept_ref = &kept;
    let schedules: Vec<std::io::Result<crate::scheduler::Schedule>> = std::thread::scope(|s| {
        let workers: Vec<_> = ready
            .iter()
            .map(|r| {
                s.spawn(move || {
                    let mine: Vec<RunRecord> = kept_ref
                        .iter()
                        .filter(|k| k.params.pair == r.name)
                        .cloned()
                        .collect();
                    let mut exec =
                        MigrationExecutor::new(r.hosts.clone(), sc, &r.accel, rt, cancel, display);
                    let s = crate::scheduler::run_matrix(
                        &r.runs,
                        &sc.repetitions,
                        &mine,
                        &mut exec,
                        rec_ref,
                        cancel,
                        display,
                    );
                    // Done here: its guest goes now, not after the others.
                    remove_own(r, display);
                    s
                })
            })
            .collect();
        // A worker that panicked (a bug) is an error, not the end: the
        // other pairs' records stay and the guests are still removed.
        workers
            .into_iter()
            .zip(ready)
            .map(|(w, r)| {
                w.join().unwrap_or_else(|_| {
                    Err(std::io::Error::other(format!(
                        "{}the worker running the matrix panicked (a bug): the runs it recorded are kept",
                        who(&r.name)
                    )))
                })
            })
            .collect()
    });
    // Every pair's runs are shown, whatever became of the others.
    let mut ran = Vec::new();
    let mut errors = Vec::new();
    for s in schedules {
        match s {
            Ok(s) => ran.extend(s.records),
            Err(e) => errors.push(e),
        }
    }
    let code = conclude(matrix.len(), kept, ran, cancel.is_cancelled(), &mut rec)?;
    let mut errors = errors.into_iter();
    if let Some(first) = errors.next() {
        for e in errors {
            eprintln!("error: {e}");
        }
        return Err(first.into());
    }
    if skipped.is_empty() || code == 130 {
        return Ok(code);
    }
    let names: Vec<String> = skipped.iter().map(|(n, ..)| format!("`{n}`")).collect();
    let (pairs, its, it) = if names.len() == 1 {
        ("pair", "its", "it is")
    } else {
        ("pairs", "their", "they are")
    };
    eprintln!(
        "{pairs} {} skipped: {its} runs are not recorded; once {it} fixed, run them with --resume {}",
        names.join(", "),
        rec.dir().display()
    );
    Ok(1)
}
