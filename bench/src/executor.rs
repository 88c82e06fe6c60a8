//! The local lab's [`Executor`]: one real migration per run. Builds the
//! environment — namespaces and shaped link, disks, the booted source
//! guest and an incoming destination, the workload and the prober — hands
//! the migration to the backend-neutral core ([`crate::migrate::run`])
//! through the QMP backend, writes the raw series, assembles the record
//! ([`crate::migrate::record::assemble`]) and tears everything down,
//! whatever happened.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use migbench_model::settings::{DiskPattern, StorageMode};
use migbench_model::{Outcome, RunParams, RunRecord};
use migbench_probes::disk::DiskRequest;
use migbench_probes::prober::Prober;
use migbench_probes::protocol::Request;

use crate::backend::qmp::{QmpDriver, QmpVm};
use crate::control::{Cancel, Display};
use crate::lab::boot::boot_source;
use crate::lab::image::GuestImage;
use crate::lab::net::{LabNet, Shaping};
use crate::lab::qemu::{QemuProcess, QemuSpec, Role};
use crate::lab::rundir::RunDir;
use crate::migrate::guest::{agent_request, spawn_sampler};
use crate::migrate::record::{assemble, Measured};
use crate::migrate::run::{migrate, Migrated, RunContext};
use crate::recorder::{unix_now, write_json, write_jsonl};
use crate::scheduler::Executor;

/// Runs migrations in the local lab.
pub struct LabExecutor {
    /// Guest image.
    pub image: GuestImage,
    /// `kvm` or `tcg`.
    pub accel: String,
    /// Tokio runtime the async parts run on.
    pub rt: tokio::runtime::Handle,
    /// Interruption flag.
    pub cancel: Cancel,
    /// How often the migration's progress is sampled.
    pub poll_interval: Duration,
    /// Pad guest RAM under TCG to dodge QEMU 7.2's lost-dirty-page bug.
    pub tcg_dirty_workaround: bool,
    /// Progress display.
    pub display: Display,
}

/// One run's lab: its network, private directory and QEMU command line.
struct Env<'a> {
    net: &'a LabNet,
    run_dir: &'a Path,
    spec: &'a QemuSpec,
}

impl Executor for LabExecutor {
    fn execute(&mut self, p: &RunParams, raw: &Path) -> RunRecord {
        let mut rec = RunRecord::pending(p, unix_now(), &self.accel);
        let result = self.rt.block_on(self.run(p, raw, &mut rec));
        if let Err(e) = result {
            if rec.outcome == Outcome::Completed {
                rec.outcome = if self.cancel.is_cancelled() {
                    Outcome::Interrupted
                } else {
                    Outcome::Failed
                };
            }
            rec.error = Some(format!("{e:#}"));
        }
        rec
    }
}

impl LabExecutor {
    async fn run(&self, p: &RunParams, raw: &Path, rec: &mut RunRecord) -> Result<()> {
        let shaping = Shaping {
            rate: p.link_rate,
            delay: p.link_delay,
            jitter: p.link_jitter,
            loss: p.link_loss,
        };
        let mut net = LabNet::create(&shaping)?;
        let run_dir = RunDir::create("run")?;
        let disks = crate::lab::storage::prepare(
            run_dir.path(),
            p.storage_mode,
            p.disk_format,
            p.disk_size,
            p.base_data,
            p.disk_block_size.0.max(4096),
        )?;
        // shared-nbd: a storage host on its own link serves the image.
        let mut storage_daemon = None;
        if let (Some(d), StorageMode::SharedNbd) = (&disks, p.storage_mode) {
            net.add_storage_host(p.storage_link_rate)?;
            let ns = net.storage.clone().expect("storage host just added");
            storage_daemon =
                Some(crate::lab::storage::serve_nbd(d, &ns, &net.src, run_dir.path(), raw).await?);
        }
        let spec = QemuSpec {
            image: self.image.clone(),
            ram_mib: p.ram.mib(),
            tcg_dirty_workaround: self.tcg_dirty_workaround,
            vcpus: p.vcpus.0,
            accel: self.accel.clone(),
            disks,
        };
        let env = Env {
            net: &net,
            run_dir: run_dir.path(),
            spec: &spec,
        };
        let result = self.migrate(p, raw, rec, &env).await;
        drop(storage_daemon);
        net.teardown();
        drop(run_dir);
        result
    }

    /// Boot both ends, start the workload and the prober, migrate, then
    /// record the raw series and assemble the record from them.
    async fn migrate(
        &self,
        p: &RunParams,
        raw: &Path,
        rec: &mut RunRecord,
        env: &Env<'_>,
    ) -> Result<()> {
        let (net, cancel) = (env.net, &self.cancel);
        let origin = Instant::now();
        let started_at = rec.started_at;
        let (src, agent) = boot_source(env.spec, net, env.run_dir, raw, cancel).await?;
        let mut src = QmpVm::connect(src).await?;
        let dst = QemuProcess::start(
            env.spec,
            Role::Destination,
            Some(&net.dst),
            env.run_dir,
            raw,
        )
        .await?;
        let mut dst = QmpVm::connect(dst).await?;
        let fill_timeout =
            Duration::from_secs(30 + p.working_set.mib() / 4 + p.disk_fill.mib() / 2);
        let disk = (p.storage_mode != StorageMode::None).then(|| DiskRequest {
            device: "/dev/vda".into(),
            rate: p.disk_write_rate.0,
            block_size: p.disk_block_size.0,
            random: p.disk_pattern == DiskPattern::Random,
            fill: p.disk_fill.0,
            base: p.base_data.0,
        });
        let start = Request::Start {
            rate: p.dirty_rate.0,
            working_set: p.working_set.0,
            compressible: p.compressibility.0 / 100.0,
            disk,
        };
        agent_request(&agent, start, fill_timeout)
            .await
            .context("starting the workload")?;
        let prober = Prober::start(
            Some(&net.client),
            net.guest_echo(),
            p.probe_interval.0,
            origin,
        )
        .context("starting the prober")?;
        let stop_sampler = Arc::new(AtomicBool::new(false));
        let sampler = spawn_sampler(agent.clone(), origin, stop_sampler.clone());
        let link_tx = || net.migration_tx_bytes();
        let ctx = RunContext {
            params: p,
            raw,
            origin,
            started_at,
            poll: self.poll_interval,
            cancel,
            display: &self.display,
            agent: &agent,
            link_tx: &link_tx,
        };
        let mut out = Migrated::default();
        let outcome = migrate(&ctx, &mut QmpDriver::new(&mut src, &mut dst), &mut out).await;
        stop_sampler.store(true, Ordering::Relaxed);
        let workload = sampler.await.unwrap_or_default();
        let probes =
            tokio::task::spawn_blocking(move || prober.finish(Duration::from_millis(300))).await?;
        let write = || -> std::io::Result<()> {
            let f = std::io::BufWriter::new(std::fs::File::create(raw.join("probes.csv"))?);
            migbench_model::record::write_probes_csv(f, &probes)?;
            write_jsonl(&raw.join("workload.jsonl"), &workload)?;
            write_jsonl(&raw.join("progress.jsonl"), &out.samples)?;
            match &out.timeline {
                Some(t) => write_json(&raw.join("timeline.json"), t),
                None => Ok(()),
            }
        };
        write().context("writing raw series")?;
        if let Some(timeline) = &out.timeline {
            let measured = Measured {
                timeline,
                samples: &out.samples,
                probes: &probes,
                workload: &workload,
                verdict: out.verdict,
            };
            *rec = assemble(p, &self.accel, measured);
        } else {
            rec.probes_sent = probes.len() as u64;
            rec.probes_lost = probes.iter().filter(|e| e.recv_ms.is_none()).count() as u64;
        }
        src.shutdown().await;
        dst.shutdown().await;
        outcome
    }
}
