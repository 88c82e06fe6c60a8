//! The model's constants: what a lab's runs fit ([`Constants::LAB`] for
//! this machine), what a fit keeps where its runs cannot tell
//! ([`Constants::PRIOR`]), and the check of a hand-edited model file.

use serde::{Deserialize, Serialize};

/// The model's constants.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Constants {
    /// Share of the link rate the migration stream achieves (TCP/IP and
    /// QEMU framing, the token bucket).
    pub goodput: f64,
    /// From `migrate` to the first page sent, ms, plus
    /// [`Constants::setup_ms_per_gib`] per GiB of guest RAM.
    pub setup_ms: f64,
    /// Setup per GiB of guest RAM (its dirty bitmap, under TCG its
    /// translation state), ms.
    #[serde(default)]
    pub setup_ms_per_gib: f64,
    /// Cost of each dirty-bitmap sync between passes, ms.
    pub pass_ms: f64,
    /// Switchover beyond sending the last pages (device state, stop and
    /// start), ms, plus [`Constants::switchover_ms_per_gib`] per GiB of RAM.
    pub switchover_ms: f64,
    /// Switchover per GiB of guest RAM (the last bitmap sync), ms.
    #[serde(default)]
    pub switchover_ms_per_gib: f64,
    /// Non-zero memory of the guest outside the workload's working set
    /// (kernel, initramfs, page cache), bytes.
    pub base_bytes: f64,
    /// The guest's own non-zero memory per GiB of RAM (its page tables
    /// and structures grow with it), bytes.
    #[serde(default)]
    pub base_bytes_per_gib: f64,
    /// Memory dirtied per byte the workload means to write (the guest's
    /// own writes beside the workload's, and the pacing's bursts).
    #[serde(default = "one")]
    pub dirty_scale: f64,
    /// What the guest dirties by itself, whatever the workload (network
    /// buffers of the probe traffic, timers, page cache), bytes/s; it
    /// keeps an idle guest from converging under a tight bandwidth cap.
    #[serde(default)]
    pub background_rate: f64,
    /// Share of the downtime limit's worth of memory (the limit at the
    /// send rate) still unsent of the pass when QEMU completes a
    /// throttled (auto-converge) guest's migration, and any guest's when
    /// the model has no check span (a fit whose runs cannot identify the
    /// span keeps the prior's none, and with it this share). Not fitted:
    /// with a span, a plain pre-copy run's remainder follows the span.
    #[serde(default = "half")]
    pub remainder_share: f64,
    /// Share of what the guest dirtied since the last bitmap sync (over
    /// the last pass: its background writes for an idle guest, the
    /// workload's pages for a busy one) that is still to send at the
    /// switchover: an idle guest's is small, a busy guest's nears the
    /// limit. It counts at the first check below the limit's worth, after
    /// the first pass' top of RAM and for a throttled guest; where that
    /// check's sync does not fit, what the guest dirtied while QEMU sent
    /// on counts instead.
    #[serde(default = "half")]
    pub sync_share: f64,
    /// The guest's non-zero memory that QEMU's first pass meets last,
    /// after the free (zero) pages, bytes: what the guest's kernel
    /// allocated from the top of its RAM at boot (page cache, slabs,
    /// page tables). When the limit's worth holds it, QEMU's check fires
    /// while the first pass is still in the zero pages, and all of it
    /// goes in the pause: an idle guest's downtime is this at the link
    /// rate, not a share of the limit.
    #[serde(default)]
    pub tail_bytes: f64,
    /// The top of RAM per GiB of guest RAM, bytes: a line fitted through
    /// guests of 256 MiB–1 GiB (what the kernel puts there is not
    /// measured).
    #[serde(default)]
    pub tail_bytes_per_gib: f64,
    /// The span of sending between two of QEMU's completion checks, ms,
    /// with [`Constants::check_bytes`] (an iteration sends for up to
    /// 50 ms, and the socket takes more without waiting): the first check
    /// below the limit's worth finds the pass anywhere in the span below
    /// it (the model takes the mean over the span), so the shorter the
    /// limit against the span, the less of the pass is left.
    #[serde(default)]
    pub check_ms: f64,
    /// What the socket takes between two checks beyond
    /// [`Constants::check_ms`] of sending, bytes.
    #[serde(default)]
    pub check_bytes: f64,
    /// What the migration socket takes at once when a bandwidth cap has
    /// left it drained, bytes. QEMU sends the last pages in the pause
    /// regardless of the cap and, without a return path, its downtime
    /// ends once they are written to the socket, not once they arrive:
    /// under a cap of half the link or less the first this many bytes of
    /// the pause cost nothing, above it a share falling to none at the
    /// link (a link-bound stream keeps the socket full).
    #[serde(default)]
    pub socket_bytes: f64,
    /// How fast the workload could dirty memory with a whole vCPU,
    /// bytes/s: auto-converge's throttle slows a rate-paced workload only
    /// once the vCPU time left falls below what its rate needs.
    #[serde(default = "dirty_capacity")]
    pub dirty_capacity: f64,
    /// What one multifd channel compresses per second (host CPU), bytes/s.
    #[serde(default = "compress_rate")]
    pub compress_rate: f64,
}

fn one() -> f64 {
    1.0
}
fn half() -> f64 {
    0.5
}
fn dirty_capacity() -> f64 {
    Constants::LAB.dirty_capacity
}
fn compress_rate() -> f64 {
    Constants::LAB.compress_rate
}

impl Constants {
    /// What a fit keeps where its runs cannot identify a constant (RAM,
    /// link or limit that does not vary, no dirtying guest) and for what
    /// it never fits: the per-GiB slopes of this lab (TCG on 2 cores) but
    /// the top of RAM's (the prior has no top of RAM: none, and no slope),
    /// the switchover of its post-copy runs (5 ms, the pause of a switch
    /// that sends no pages), otherwise round values. A fit never starts
    /// from [`Constants::LAB`] for what it estimates.
    pub const PRIOR: Constants = Constants {
        goodput: 0.95,
        setup_ms: 0.0,
        setup_ms_per_gib: Constants::LAB.setup_ms_per_gib,
        pass_ms: 0.0,
        switchover_ms: 5.0,
        switchover_ms_per_gib: Constants::LAB.switchover_ms_per_gib,
        base_bytes: 64e6,
        base_bytes_per_gib: Constants::LAB.base_bytes_per_gib,
        dirty_scale: 1.0,
        background_rate: 0.5e6,
        remainder_share: 0.5,
        sync_share: 0.5,
        tail_bytes: 0.0,
        tail_bytes_per_gib: 0.0,
        check_ms: 0.0,
        check_bytes: 0.0,
        socket_bytes: 0.0,
        dirty_capacity: Constants::LAB.dirty_capacity,
        compress_rate: Constants::LAB.compress_rate,
    };

    /// Fitted from this machine's runs by [`fit`] (`fixtures/model/*.jsonl`,
    /// TCG on 2 cores; `bench/predict/tests/predict.rs` refits them and
    /// compares). `dirty_capacity` and `compress_rate` are not fitted (no
    /// such runs): set from the auto-converge finding (20 MB/s was slowed
    /// only at 99 %) and a conservative zstd rate.
    pub const LAB: Constants = Constants {
        goodput: 0.957,
        setup_ms: 0.0,
        setup_ms_per_gib: 788.0,
        pass_ms: 0.0,
        switchover_ms: 4.0,
        switchover_ms_per_gib: 0.0,
        base_bytes: 66.5e6,
        base_bytes_per_gib: 33.8e6,
        dirty_scale: 1.0,
        background_rate: 0.0,
        remainder_share: 0.5,
        sync_share: 0.5,
        tail_bytes: 8e6,
        tail_bytes_per_gib: 8e6,
        check_ms: 150.0,
        check_bytes: 1e6,
        socket_bytes: 3.25e6,
        dirty_capacity: 500e6,
        compress_rate: 200e6,
    };
}

impl Constants {
    /// Whether QEMU's checks come a span apart ([`Constants::check_ms`],
    /// [`Constants::check_bytes`]): without, a plain run's remainder is
    /// [`Constants::remainder_share`] of the limit's worth.
    pub fn has_check_span(&self) -> bool {
        self.check_ms > 0.0 || self.check_bytes > 0.0
    }

    /// The first constant outside what the model can use, in words
    /// naming it (a hand-edited model file): every constant is a cost,
    /// an amount or a rate, never negative; the shares lie in 0–1 and
    /// the goodput above 0.
    pub fn out_of_range(&self) -> Option<String> {
        let serde_json::Value::Object(fields) = serde_json::to_value(self).ok()? else {
            return None;
        };
        for (name, v) in &fields {
            let x = v.as_f64().unwrap_or(f64::NAN);
            let share = matches!(name.as_str(), "goodput" | "remainder_share" | "sync_share");
            let bad =
                !x.is_finite() || x < 0.0 || (share && x > 1.0) || (name == "goodput" && x == 0.0);
            if bad {
                let allowed = if share { "0–1" } else { "0 or more" };
                return Some(format!("constants.{name} is {v}; allowed: {allowed}"));
            }
        }
        None
    }
}
