//! Checks of values that parse but make no sense, alone or together;
//! each failure is a [`Problem`] naming the field (and the `[[variant]]`
//! that wrote it).

use super::{Problem, Scenario, StorageSpec, Variant};
use crate::capability::Capability;
use crate::fault::{Fault, FaultAt, FaultKind};
use crate::knobs::ServiceSpec;
use crate::service::Services;
use crate::settings::{
    Backend, Channels, CompletionAction, Compression, DiskFormat, Postcopy, StorageMode, Transport,
};
use crate::units::BitRate;

impl Scenario {
    /// Check values that parse but make no sense, alone or together.
    pub(crate) fn validate(&self) -> Result<(), Problem> {
        self.repetitions
            .check()
            .map_err(|m| Problem::new("repetitions", m))?;
        let sections: [(&str, Option<&'static str>); 9] = [
            ("backend", self.backend.missing()),
            ("guest", self.guest.missing()),
            ("workload", self.workload.missing()),
            ("link", self.link.missing()),
            ("migration", self.migration.missing()),
            ("policy", self.policy.missing()),
            ("probe", self.probe.missing()),
            ("storage", self.storage.missing()),
            ("service", self.service.missing()),
        ];
        if let Some((table, Some(key))) = sections.iter().find(|(_, m)| m.is_some()) {
            return Err(Problem::new(
                format!("{table}.{key}"),
                format!("missing field `{key}` in [{table}]: it has no default"),
            ));
        }
        self.check().map_err(|(f, m)| Problem::new(f, m))?;
        self.check_capabilities()
            .map_err(|(f, m)| Problem::new(f, m))?;
        self.check_hosts().map_err(|(f, m)| Problem::new(f, m))?;
        for (i, v) in self.variants.iter().enumerate() {
            v.validate(&self.storage).map_err(|(field, m)| {
                // The variant's own key if it wrote one, else the base table's.
                let written = self.variant_text.get(i).is_some_and(|t| {
                    let (table, key) = field.split_once('.').unwrap_or(("", field));
                    match table {
                        "migration" => t.migration.contains_key(key),
                        "policy" => t.policy.contains_key(key),
                        _ => false,
                    }
                });
                Problem {
                    field: field.to_string(),
                    variant: written.then_some(i),
                    message: if v.name.is_empty() {
                        m
                    } else {
                        format!("variant `{}`: {m}", v.name)
                    },
                }
            })?;
        }
        Ok(())
    }

    /// What the runs need of their backends that is not checked with its
    /// own section (faults in [`Scenario::check_fault`], real hosts in
    /// [`Scenario::check_hosts`]): a disk copied to the destination.
    fn check_capabilities(&self) -> Result<(), (&'static str, String)> {
        let copies = self
            .storage
            .mode
            .0
            .iter()
            .any(|m| matches!(m, StorageMode::Block | StorageMode::BlockIncremental));
        if let Some(r) = self
            .lacking(Capability::BlockMigration, "")
            .filter(|_| copies)
        {
            return Err(("storage.mode", r));
        }
        let transports = &self.backend.transport.0;
        if let Some(r) = self
            .lacking(Capability::DaemonTransports, "")
            .filter(|_| transports.iter().any(|t| *t != Transport::Direct))
        {
            return Err(("backend.transport", r));
        }
        if transports.contains(&Transport::Tunnelled)
            && self.variants.iter().any(|v| {
                v.migration
                    .multifd_channels
                    .0
                    .iter()
                    .any(|c| *c != Channels::Off)
            })
        {
            return Err((
                "backend.transport",
                "a tunnelled migration is one stream through the daemons' connection: libvirt refuses multifd channels with it (migration.multifd_channels = \"off\", or another transport)".into(),
            ));
        }
        if transports.contains(&Transport::Tunnelled) && copies {
            return Err((
                "backend.transport",
                "libvirt 9.0 does not copy disks through a tunnel (tried here: the daemons' connection closed mid-migration, then \"argument key 'host' must not have null value\"): block migration needs transport = \"direct\" or \"p2p\"".into(),
            ));
        }
        Ok(())
    }

    /// `[fault]`: faults the lab can inject into the runs they apply to.
    /// A refusal naming `c` when a backend of the scenario lacks it (and
    /// which backends have it), `why` appended.
    pub(super) fn lacking(&self, c: Capability, why: &str) -> Option<String> {
        let b = self.backend.kind.0.iter().find(|b| !b.can(c))?;
        let able: Vec<String> = Backend::able(c)
            .iter()
            .map(|b| format!("\"{b}\""))
            .collect();
        Some(format!(
            "backend {b} lacks the capability `{}`{why}: kind = {}",
            c.name(),
            able.join(" or ")
        ))
    }

    fn check_fault(&self) -> Result<(), (&'static str, String)> {
        let faults: Vec<Fault> = self
            .fault
            .inject
            .0
            .iter()
            .copied()
            .filter(Fault::is_some)
            .collect();
        let Some(first) = faults.first() else {
            return Ok(());
        };
        if self.hosts.is_some() {
            return Err((
                "fault.inject",
                format!("`{first}`: faults are injected in migbench's lab; on real hosts the link and processes are yours: remove [fault] or [hosts]"),
            ));
        }
        if let Some(r) = self.lacking(Capability::Faults, "") {
            return Err(("fault.inject", format!("`{first}`: {r}")));
        }
        if let Some(f) = faults.iter().find(|f| f.at == FaultAt::Switchover) {
            if let Some(r) = self.lacking(
                Capability::SwitchoverHold,
                " (the fault strikes while QEMU holds before switchover; strike at a time or a pass instead)",
            ) {
                return Err(("fault.inject", format!("`{f}`: {r}")));
            }
        }
        if let Some(f) = faults.iter().find(|f| f.kind == FaultKind::StorageDown) {
            if self
                .storage
                .mode
                .0
                .iter()
                .any(|m| *m != StorageMode::SharedNbd)
            {
                return Err((
                    "fault.inject",
                    format!("`{f}` cuts the storage host's link: it needs storage.mode = \"shared-nbd\" in every run"),
                ));
            }
        }
        let postcopy = self
            .variants
            .iter()
            .any(|v| v.migration.postcopy.0.iter().any(|p| p.enabled()));
        if postcopy {
            if let Some(r) = self.lacking(
                Capability::PostcopyRecovery,
                " (a fault may stall post-copy, which must then be paused and resumed; use pre-copy only)",
            ) {
                return Err(("fault.inject", format!("`{first}` with post-copy: {r}")));
            }
        }
        if let Some(f) = faults.iter().find(|f| f.at == FaultAt::Postcopy) {
            if !postcopy {
                return Err((
                    "fault.inject",
                    format!("`{f}` strikes at post-copy, but no run enables it: set migration.postcopy (e.g. \"after 1 pass\") in a variant"),
                ));
            }
        }
        Ok(())
    }

    /// `[service]`: rates the link can carry, sizes a request can have.
    fn check_service(&self) -> Result<(), (&'static str, String)> {
        let sv = &self.service;
        // A rate only matters to a service some run uses: the defaults of
        // an unused one never make a scenario invalid.
        let uses = |s: Services| sv.kind.0.iter().any(|k| k.has(s));
        let (stream, rr) = (uses(Services::TCP_STREAM), uses(Services::TCP_RR));
        // The knob table's default, not a copy of it.
        let default_stream = sv.stream_rate == ServiceSpec::default().stream_rate;
        for r in sv.stream_rate.0.iter().filter(|_| stream) {
            if r.0 < 8_000 {
                return Err(("service.stream_rate", format!("{r} is below 8kbit")));
            }
            // The stream shares the link with the migration: at most half of it.
            if let Some(link) = self.link.rate.0.iter().find(|l| r.0 * 2 > l.0) {
                let rate = if default_stream {
                    format!("the TCP stream's rate, {r} unless set,")
                } else {
                    format!("the TCP stream's rate {r}")
                };
                return Err((
                    "service.stream_rate",
                    format!(
                        "{rate} needs a link of at least {} (it may use half of the link it shares with the migration), and link.rate has {link}: set a lower service.stream_rate or a faster link.rate",
                        BitRate(r.0 * 2)
                    ),
                ));
            }
        }
        for r in &sv.rr_rate.0 {
            if !(1..=10_000).contains(&r.0) {
                return Err((
                    "service.rr_rate",
                    format!("{r} is outside 1 – 10000 requests/s"),
                ));
            }
        }
        for s in &sv.rr_size.0 {
            if !(16..=(1 << 20)).contains(&s.0) {
                return Err(("service.rr_size", format!("{s} is outside 16B – 1MiB")));
            }
            for r in sv.rr_rate.0.iter().filter(|_| rr) {
                for link in &self.link.rate.0 {
                    if s.0 * 8 * u64::from(r.0) * 2 > link.0 {
                        return Err((
                            "service.rr_rate",
                            format!("{r} requests/s of {s} is more than half the {link} link"),
                        ));
                    }
                }
            }
        }
        for d in &sv.rr_deadline.0 {
            if d.0.is_zero() {
                return Err(("service.rr_deadline", "must be longer than 0s".into()));
            }
        }
        if sv.buffer.len() > 8 {
            return Err(("service.buffer", "give at most 8 buffers".into()));
        }
        if let Some(b) = sv
            .buffer
            .iter()
            .find(|b| b.0 > std::time::Duration::from_secs(60))
        {
            return Err(("service.buffer", format!("{b} is longer than 60s")));
        }
        Ok(())
    }

    /// The checks of the scenario's own tables; returns (field, message).
    fn check(&self) -> Result<(), (&'static str, String)> {
        if !self
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err((
                "name",
                format!("`{}`: use letters, digits, - and _ only", self.name),
            ));
        }
        for ram in &self.guest.ram.0 {
            if ram.0 < (96 << 20) || ram.0 > (64 << 30) {
                return Err(("guest.ram", format!("{ram} is outside 96MiB – 64GiB")));
            }
            if ram.0 % (1 << 20) != 0 {
                return Err(("guest.ram", format!("{ram} is not a whole number of MiB")));
            }
            for ws in &self.workload.working_set.0 {
                if ws.0 + (64 << 20) > ram.0 {
                    return Err((
                        "workload.working_set",
                        format!("{ws} leaves less than 64MiB of the {ram} guest for its kernel"),
                    ));
                }
            }
        }
        for v in &self.guest.vcpus.0 {
            if v.0 > 64 {
                return Err(("guest.vcpus", format!("{v} is outside 1 – 64")));
            }
        }
        for ws in &self.workload.working_set.0 {
            if ws.0 < 4096 {
                return Err((
                    "workload.working_set",
                    format!("{ws} is smaller than one 4KiB page"),
                ));
            }
        }
        for d in &self.storage.disk_size.0 {
            if d.0 < (16 << 20) || d.0 % (1 << 20) != 0 {
                return Err((
                    "storage.disk_size",
                    format!("{d}: use a whole number of MiB, at least 16MiB"),
                ));
            }
            for f in &self.workload.disk_fill.0 {
                for b in &self.storage.base_data.0 {
                    if f.0 + b.0 > d.0 {
                        return Err((
                            "workload.disk_fill",
                            format!("{f} after {b} of base data does not fit the {d} disk"),
                        ));
                    }
                }
            }
        }
        for b in &self.workload.disk_block_size.0 {
            if b.0 < 4096 || b.0 % 4096 != 0 || b.0 > (16 << 20) {
                return Err((
                    "workload.disk_block_size",
                    format!("{b}: use a multiple of 4KiB up to 16MiB"),
                ));
            }
        }
        if self.storage.mode.0.contains(&StorageMode::BlockIncremental)
            && self.storage.format.0.contains(&DiskFormat::Raw)
        {
            return Err((
                "storage.format",
                "block-incremental mirrors qcow2 overlays: use format = \"qcow2\"".into(),
            ));
        }
        let disk_work = self.workload.disk_write_rate.0.iter().any(|r| r.0 > 0)
            || self.workload.disk_fill.0.iter().any(|f| f.0 > 0);
        if disk_work && self.storage.mode.0.contains(&StorageMode::None) {
            return Err((
                "workload.disk_write_rate",
                "a disk workload needs a disk: set storage.mode to shared or block".into(),
            ));
        }
        self.check_service()?;
        self.check_fault()?;
        for (field, ds) in [
            ("probe.before", &self.probe.before.0),
            ("probe.after", &self.probe.after.0),
        ] {
            if let Some(d) = ds.iter().find(|d| d.0 > std::time::Duration::from_secs(60)) {
                return Err((field, format!("{d} is outside 0s – 60s")));
            }
        }
        // The probe looks a second past the switchover for the guest's
        // network to come back (re-convergence).
        if let Some(d) = self
            .probe
            .after
            .0
            .iter()
            .find(|d| d.0 < std::time::Duration::from_secs(1))
        {
            return Err((
                "probe.after",
                format!("{d} is under 1s: the probe watches a second past the switchover for the guest's network to return"),
            ));
        }
        for i in &self.probe.interval.0 {
            let us = i.0.as_micros();
            if !(100..=100_000).contains(&us) {
                return Err(("probe.interval", format!("{i} is outside 0.1ms – 100ms")));
            }
        }
        let p = self.migration.poll_interval.0.as_millis();
        if !(10..=10_000).contains(&p) {
            return Err((
                "migration.poll_interval",
                format!("{} is outside 10ms – 10s", self.migration.poll_interval),
            ));
        }
        Ok(())
    }
}

impl Variant {
    /// Check settings that parse but make no sense together.
    fn validate(&self, storage: &StorageSpec) -> Result<(), (&'static str, String)> {
        let m = &self.migration;
        let pol = &self.policy;
        for t in &m.timeout.0 {
            if t.0.as_secs_f64() < 1.0 {
                return Err(("migration.timeout", format!("{t} is shorter than 1s")));
            }
            for (field, list) in [
                ("policy.completion_timeout", &pol.completion_timeout),
                ("policy.progress_timeout", &pol.progress_timeout),
            ] {
                if let Some(c) = list.0.iter().find(|c| !c.0.is_zero() && c.0 >= t.0) {
                    return Err((
                        field,
                        format!("{c} is not shorter than migration.timeout {t}, so it never fires"),
                    ));
                }
            }
        }
        for d in &m.downtime_limit.0 {
            if d.0.as_millis() < 1 || d.0.as_secs() > 2000 {
                return Err((
                    "migration.downtime_limit",
                    format!("{d} is outside 1ms – 2000s (QEMU's range)"),
                ));
            }
        }
        for s in &pol.downtime_steps.0 {
            if *s > 100 {
                return Err(("policy.downtime_steps", format!("{s} is outside 0 – 100")));
            }
        }
        let multifd_off = m.multifd_channels.0.contains(&Channels::Off);
        for c in &m.multifd_compression.0 {
            if *c != Compression::None && multifd_off {
                return Err((
                    "migration.multifd_compression",
                    format!("{c} compresses multifd channels: set multifd_channels to a count (use a [[variant]] to compare with multifd off)"),
                ));
            }
            for l in &m.multifd_compression_level.0 {
                let max = match c {
                    Compression::Zlib => 9,
                    Compression::Zstd => 20,
                    _ => u32::MAX,
                };
                if l.0 > max {
                    return Err((
                        "migration.multifd_compression_level",
                        format!("{l} is outside {c}'s levels 1 – {max}"),
                    ));
                }
            }
        }
        let block = storage
            .mode
            .0
            .iter()
            .any(|s| matches!(s, StorageMode::Block | StorageMode::BlockIncremental));
        if block && m.postcopy.0.iter().any(|p| p.enabled()) {
            return Err((
                "migration.postcopy",
                "post-copy with block storage modes is not supported by migbench yet: use shared storage".into(),
            ));
        }
        let force = pol
            .completion_action
            .0
            .contains(&CompletionAction::ForceComplete)
            && pol.completion_timeout.0.iter().any(|c| !c.0.is_zero());
        if force
            && m.postcopy
                .0
                .iter()
                .any(|p| matches!(p, Postcopy::AfterPasses(_) | Postcopy::AfterTime(_)))
        {
            return Err((
                "policy.completion_action",
                "force-complete and a scheduled post-copy switch both switch to post-copy: use postcopy = \"allowed\" with force-complete".into(),
            ));
        }
        Ok(())
    }
}
