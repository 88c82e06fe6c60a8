//! The executor: one real migration per run, in any [`Environment`]. The
//! environment builds the hosts and boots the guest; the executor starts
//! the workload, the prober and the workload sampler, hands the migration
//! to the backend-neutral core ([`crate::migrate::run`]) through the
//! hosts' driver, writes the raw series, assembles the record
//! ([`crate::migrate::record::assemble`]) and has the environment remove
//! the hosts, whatever happened.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use migbench_model::settings::{DiskPattern, StorageMode};
use migbench_model::{Outcome, RunParams, RunRecord};
use migbench_probes::clock::{Origin, WallLog};
use migbench_probes::host::prober::{ProbeTarget, Prober};
use migbench_probes::protocol::DiskRequest;
use migbench_probes::protocol::Request;

use crate::control::{Cancel, Display};
use crate::migrate::env::{Environment, Hosts};
use crate::migrate::fault::FaultTarget;
use crate::migrate::guest::{agent_request, spawn_sampler};
use crate::migrate::record::{assemble, count_probes, Measured};
use crate::migrate::run::{migrate, Migrated, RunContext};
use crate::migrate::services::ServiceClients;
use crate::recorder::{unix_now, write_atomic, write_json, write_jsonl};
use crate::scheduler::Executor;

/// Runs migrations in an environment.
pub struct MigrationExecutor<E> {
    /// Where the runs happen.
    pub env: E,
    /// `kvm` or `tcg`, for the records.
    pub accel: String,
    /// Tokio runtime the async parts run on.
    pub rt: tokio::runtime::Handle,
    /// Interruption flag.
    pub cancel: Cancel,
    /// How often the migration's progress is sampled.
    pub poll_interval: Duration,
    /// Progress display.
    pub display: Display,
    /// Playout buffers the stream service is evaluated with (`[service] buffer`).
    pub buffers: Vec<Duration>,
}

impl<E> MigrationExecutor<E> {
    /// Runs in `env` sampled at the scenario's `poll_interval`, with its
    /// playout buffers.
    pub fn new(
        env: E,
        sc: &migbench_model::Scenario,
        accel: &str,
        rt: &tokio::runtime::Runtime,
        cancel: &Cancel,
        display: &Display,
    ) -> Self {
        MigrationExecutor {
            env,
            accel: accel.to_string(),
            rt: rt.handle().clone(),
            cancel: cancel.clone(),
            poll_interval: sc.migration.poll_interval.0,
            display: display.clone(),
            buffers: sc.service.buffer.iter().map(|b| b.0).collect(),
        }
    }

    /// The same accelerator, runtime, controls and settings in another
    /// environment.
    pub fn with_env<F>(&self, env: F) -> MigrationExecutor<F> {
        MigrationExecutor {
            env,
            accel: self.accel.clone(),
            rt: self.rt.clone(),
            cancel: self.cancel.clone(),
            poll_interval: self.poll_interval,
            display: self.display.clone(),
            buffers: self.buffers.clone(),
        }
    }
}

impl<E: Environment> Executor for MigrationExecutor<E> {
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

/// Where a run's wall time went, in ms (`raw/phases.json`): the parts of
/// the per-run overhead around the migration.
#[derive(Debug, Default, serde::Serialize)]
struct Phases {
    /// Hosts built, source guest booted or restored, destination started.
    boot_ms: f64,
    /// The workload started in the guest.
    workload_ms: f64,
    /// Probing before, the migration, probing after, the verdict.
    migrate_ms: f64,
    /// Probes and series collected and written.
    collect_ms: f64,
    /// Hosts stopped and removed.
    teardown_ms: f64,
}

/// Milliseconds since `t`, restarting `t`.
fn lap(t: &mut Instant) -> f64 {
    let ms = t.elapsed().as_secs_f64() * 1e3;
    *t = Instant::now();
    ms
}

impl<E: Environment> MigrationExecutor<E> {
    async fn run(&self, p: &RunParams, raw: &Path, rec: &mut RunRecord) -> Result<()> {
        let mut phases = Phases::default();
        let mut t = Instant::now();
        let mut hosts = self.env.boot(p, raw, &self.cancel).await?;
        phases.boot_ms = lap(&mut t);
        let faults = p.fault.is_some().then(|| hosts.fault_target()).flatten();
        let result = self
            .migrate(p, raw, rec, &mut hosts, faults.clone(), &mut phases)
            .await;
        let mut t = Instant::now();
        if let Some(f) = &faults {
            f.remember();
        }
        self.env.teardown(hosts).await;
        phases.teardown_ms = lap(&mut t);
        let _ = write_json(&raw.join("phases.json"), &phases);
        // After a fault, prove the teardown left nothing behind.
        if let (Some(t), Some(f)) = (faults, rec.fault.as_mut()) {
            f.leftovers = Some(t.leftovers());
        }
        result
    }

    /// Start the workload and the prober, migrate, then record the raw
    /// series and assemble the record from them.
    async fn migrate(
        &self,
        p: &RunParams,
        raw: &Path,
        rec: &mut RunRecord,
        hosts: &mut E::Hosts,
        faults: Option<Arc<dyn FaultTarget>>,
        phases: &mut Phases,
    ) -> Result<()> {
        let cancel = &self.cancel;
        // Every raw series counts from this instant; its wall time goes
        // into timeline.json and the record as `origin_unix`.
        let clock = Origin::now();
        let wall_log = WallLog::start(clock);
        let origin = clock.at;
        let mut t = origin;
        let started_at = rec.started_at;
        let guest = hosts.guest();
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
        // A guest without migbench's agent (ICMP only) runs no workload.
        if let Some(agent) = guest.agent() {
            agent_request(agent, start, fill_timeout)
                .await
                .context("starting the workload")?;
        }
        phases.workload_ms = lap(&mut t);
        let (probe_ns, target) = hosts.probe_target();
        let guest_ip = match target {
            ProbeTarget::Udp(a) => match a.ip() {
                std::net::IpAddr::V4(ip) => ip,
                std::net::IpAddr::V6(_) => anyhow::bail!("the guest has no IPv4 address"),
            },
            ProbeTarget::Icmp(ip) => ip,
            ProbeTarget::TcpRr { .. } => anyhow::bail!("the probe cannot be a TCP service"),
        };
        let services =
            ServiceClients::start(p, &self.buffers, probe_ns.clone(), guest_ip, clock, cancel)
                .await?;
        let prober = Prober::start(probe_ns.as_deref(), target, p.probe_interval.0, clock)
            .context("starting the prober")?;
        let stop_sampler = Arc::new(AtomicBool::new(false));
        let sampler = guest
            .agent()
            .map(|a| spawn_sampler(a.clone(), origin, stop_sampler.clone()));
        let link_tx = hosts.link_counter();
        // Probes and workload samples end with the window after; the
        // last replies and samples arrive while the guest is verified.
        let stop_probes = prober.sender_stop();
        let sampler_done = stop_sampler.clone();
        let end_probing = move || {
            stop_probes();
            sampler_done.store(true, Ordering::Relaxed);
        };
        let ctx = RunContext {
            params: p,
            raw,
            origin,
            origin_unix: clock.unix_secs(),
            started_at,
            poll: self.poll_interval,
            cancel,
            display: &self.display,
            guest: &guest,
            link_tx: &*link_tx,
            faults,
            end_probing: &end_probing,
        };
        let mut out = Migrated::default();
        let outcome = migrate(&ctx, &mut hosts.driver(), &mut out).await;
        phases.migrate_ms = lap(&mut t);
        stop_sampler.store(true, Ordering::Relaxed);
        // The probers wait for their last replies while the sampler
        // fetches its last samples.
        let grace = Duration::from_millis(300);
        let collect = tokio::task::spawn_blocking(move || {
            std::thread::scope(|sc| {
                let s = sc.spawn(move || services.finish(grace));
                let probes = prober.finish(grace);
                (probes, s.join().unwrap_or_default())
            })
        });
        let workload = match sampler {
            Some(s) => s.await.unwrap_or_default(),
            None => Vec::new(),
        };
        let (probes, services) = collect.await?;
        let wall_clock = wall_log.finish();
        let write = || -> std::io::Result<()> {
            write_jsonl(&raw.join("clock.jsonl"), &wall_clock)?;
            write_atomic(&raw.join("probes.csv"), |w| {
                migbench_model::record::write_probes_csv(w, &probes)
            })?;
            write_jsonl(&raw.join("workload.jsonl"), &workload)?;
            write_jsonl(&raw.join("progress.jsonl"), &out.samples)?;
            services.write(raw)?;
            match &out.timeline {
                Some(t) => write_json(&raw.join("timeline.json"), t),
                None => Ok(()),
            }
        };
        write().context("writing raw series")?;
        phases.collect_ms = lap(&mut t);
        if let Some(timeline) = &out.timeline {
            let measured = Measured {
                timeline,
                samples: &out.samples,
                probes: &probes,
                workload: &workload,
                verdict: out.verdict,
                services: &services,
                buffers: &self.buffers,
            };
            *rec = assemble(p, &self.accel, measured);
        } else {
            count_probes(rec, &probes);
            rec.origin_unix = Some(clock.unix_secs());
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::atomic::AtomicU32;

    use super::*;
    use crate::migrate::env::LinkCounter;
    use crate::migrate::guest::GuestLink;
    use crate::migrate::{
        BackendError, DiskCopy, MigrationDriver, MigrationSettings, Status, StoragePlan,
    };

    /// Nothing listens here: every agent request fails at once.
    const NOBODY: &str = "127.0.0.1:9";

    /// A driver that must never be reached.
    struct Unused;

    impl MigrationDriver for Unused {
        async fn prepare(
            &mut self,
            _: &MigrationSettings,
            _: StoragePlan,
        ) -> Result<Option<DiskCopy>, BackendError> {
            unreachable!("no migration without a workload")
        }
        async fn settings(&mut self) -> Result<serde_json::Value, BackendError> {
            unreachable!()
        }
        async fn start(&mut self) -> Result<(), BackendError> {
            unreachable!()
        }
        async fn status(&mut self) -> Result<Status, BackendError> {
            unreachable!()
        }
        async fn cancel(&mut self) -> Result<(), BackendError> {
            unreachable!()
        }
        async fn finish(&mut self, _: bool) -> Result<(), BackendError> {
            unreachable!()
        }
        async fn set_downtime_limit(&mut self, _: u64) -> Result<(), BackendError> {
            unreachable!()
        }
        async fn start_postcopy(&mut self) -> Result<(), BackendError> {
            unreachable!()
        }
        async fn pause_guest(&mut self) -> Result<(), BackendError> {
            unreachable!()
        }
    }

    struct NoGuest;

    impl Hosts for NoGuest {
        type Driver<'a> = Unused;
        fn guest(&self) -> GuestLink {
            GuestLink::Agent(migbench_probes::host::agent_client::AgentClient::new(
                None,
                NOBODY.parse().unwrap(),
            ))
        }
        fn probe_target(&self) -> (Option<String>, ProbeTarget) {
            (
                None,
                ProbeTarget::Udp(NOBODY.parse::<SocketAddr>().unwrap()),
            )
        }
        fn link_counter(&self) -> LinkCounter {
            Box::new(|| None)
        }
        fn driver(&mut self) -> Unused {
            Unused
        }
    }

    /// Counts boots and teardowns; can fail to boot.
    #[derive(Default)]
    struct Counting {
        boots: AtomicU32,
        teardowns: AtomicU32,
        fail_boot: bool,
    }

    impl Environment for &Counting {
        type Hosts = NoGuest;
        async fn boot(&self, _: &RunParams, _: &Path, _: &Cancel) -> Result<NoGuest> {
            self.boots.fetch_add(1, Ordering::SeqCst);
            if self.fail_boot {
                anyhow::bail!("the hosts could not be built");
            }
            Ok(NoGuest)
        }
        async fn teardown(&self, _: NoGuest) {
            self.teardowns.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn execute(env: &Counting) -> RunRecord {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let mut exec = MigrationExecutor {
            env,
            accel: "tcg".into(),
            rt: rt.handle().clone(),
            cancel: Cancel::default(),
            poll_interval: Duration::from_millis(100),
            display: Display::new(),
            buffers: Vec::new(),
        };
        let raw = tempfile::tempdir().unwrap();
        exec.execute(&migbench_model::matrix::sample_run(""), raw.path())
    }

    #[test]
    fn a_run_that_fails_after_boot_is_recorded_failed_and_its_hosts_torn_down() {
        let env = Counting::default();
        let rec = execute(&env);
        assert_eq!(rec.outcome, Outcome::Failed);
        assert!(
            rec.error
                .as_deref()
                .unwrap()
                .contains("starting the workload"),
            "{:?}",
            rec.error
        );
        assert_eq!(env.boots.load(Ordering::SeqCst), 1);
        assert_eq!(env.teardowns.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_run_whose_hosts_cannot_be_built_is_recorded_failed_with_the_reason() {
        let env = Counting {
            fail_boot: true,
            ..Counting::default()
        };
        let rec = execute(&env);
        assert_eq!(rec.outcome, Outcome::Failed);
        assert!(rec.error.unwrap().contains("could not be built"));
        assert_eq!(env.teardowns.load(Ordering::SeqCst), 0);
    }
}
