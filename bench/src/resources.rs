//! Resource checks before a lab matrix starts: the host must hold the
//! largest run's two QEMUs (source and destination are on this host) in
//! its available memory, and the results disk the matrix's raw series
//! with room to spare. The arithmetic is pure ([`check`]); the host's
//! facts are read by [`HostFacts::read`].

use std::path::Path;

use migbench_model::RunParams;

/// What a QEMU needs beside its guest's RAM (its own code, TCG's
/// translation cache, device buffers), bytes.
pub const QEMU_OVERHEAD: u64 = 256 << 20;
/// Free space the results disk keeps beyond the matrix's estimate, bytes.
pub const DISK_MARGIN: u64 = 256 << 20;
/// Bytes per probe line in `probes.csv` (and the service series), rounded up.
const PROBE_LINE: u64 = 48;
/// Logs, progress and workload series of one run, bytes.
const RUN_FIXED: u64 = 4 << 20;

/// What the host has.
#[derive(Debug, Clone, Copy)]
pub struct HostFacts {
    /// `MemAvailable`, bytes.
    pub mem_available: u64,
    /// Free bytes on the results disk (for an unprivileged writer).
    pub results_free: u64,
}

impl HostFacts {
    /// Read the facts; `results` may not exist yet (its nearest existing
    /// ancestor's disk counts).
    pub fn read(results: &Path) -> std::io::Result<HostFacts> {
        let meminfo = std::fs::read_to_string("/proc/meminfo")?;
        let mem_available = migbench_probes::meminfo::available_bytes(&meminfo)
            .ok_or_else(|| std::io::Error::other("no MemAvailable in /proc/meminfo"))?;
        let mut dir = results;
        while !dir.exists() {
            dir = dir
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
        }
        let st = nix::sys::statvfs::statvfs(dir).map_err(std::io::Error::from)?;
        Ok(HostFacts {
            mem_available,
            results_free: st.blocks_available() as u64 * st.fragment_size() as u64,
        })
    }
}

/// Memory the largest run needs: both QEMUs with their guest's RAM.
pub fn memory_needed(matrix: &[RunParams]) -> u64 {
    matrix
        .iter()
        .map(|p| 2 * (p.ram.0 + QEMU_OVERHEAD))
        .max()
        .unwrap_or(0)
}

/// Disk the matrix's raw data needs, estimated from its probe rates and
/// run lengths.
pub fn disk_needed(matrix: &[RunParams]) -> u64 {
    matrix
        .iter()
        .map(|p| {
            let probes_per_s = 1000.0 / p.probe_interval.ms().max(0.1);
            // Each service adds a series about as dense as the probe's.
            let series = 1 + p.services.bits().count_ones() as u64;
            let secs = migbench_predict::plan::run_secs(p) + 10.0;
            RUN_FIXED + (probes_per_s * secs) as u64 * PROBE_LINE * series
        })
        .sum::<u64>()
        + DISK_MARGIN
}

fn mib(b: u64) -> String {
    format!("{} MiB", b >> 20)
}

/// Refuse a matrix the host cannot hold, saying what it needs and has.
pub fn check(matrix: &[RunParams], facts: HostFacts, results: &Path) -> Result<(), String> {
    let mem = memory_needed(matrix);
    if mem > facts.mem_available {
        let ram = matrix
            .iter()
            .map(|p| p.ram)
            .max()
            .unwrap_or(migbench_model::units::Size(0));
        return Err(format!(
            "guest.ram = \"{ram}\" runs two QEMUs on this host (source and destination): about {} with QEMU's own, but only {} is available (MemAvailable): lower guest.ram or free memory",
            mib(mem),
            mib(facts.mem_available)
        ));
    }
    let disk = disk_needed(matrix);
    if disk > facts.results_free {
        return Err(format!(
            "the results disk ({}) has {} free; this matrix writes about {} of raw series (plus {} kept free): free space or pass --results on a larger disk",
            results.display(),
            mib(facts.results_free),
            mib(disk - DISK_MARGIN),
            mib(DISK_MARGIN)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(extra: &str) -> Vec<RunParams> {
        vec![migbench_model::matrix::sample_run(extra)]
    }

    const PLENTY: HostFacts = HostFacts {
        mem_available: 64 << 30,
        results_free: 1 << 40,
    };

    #[test]
    fn a_matrix_the_host_holds_passes_and_one_it_cannot_is_refused_saying_both_sides() {
        let small = runs("");
        assert!(check(&small, PLENTY, Path::new("results")).is_ok());
        let big = runs("").into_iter().map(|mut p| {
            p.ram = migbench_model::units::Size(16 << 30);
            p
        });
        let big: Vec<_> = big.collect();
        let e = check(&big, PLENTY.with_mem(20 << 30), Path::new("results")).unwrap_err();
        assert!(
            e.contains("guest.ram = \"16GiB\"") && e.contains("20480 MiB"),
            "{e}"
        );
        let e = check(&small, PLENTY.with_disk(100 << 20), Path::new("/r")).unwrap_err();
        assert!(e.contains("/r") && e.contains("100 MiB free"), "{e}");
    }

    #[test]
    fn faster_probes_and_more_services_need_more_disk() {
        let base = disk_needed(&runs(""));
        let fast = disk_needed(&runs("[probe]\ninterval = \"0.1ms\"\n"));
        let svc = disk_needed(&runs("[service]\nkind = \"all\"\n"));
        assert!(fast > base && svc > base, "{base} {fast} {svc}");
    }

    #[test]
    fn this_hosts_facts_can_be_read_for_a_directory_not_made_yet() {
        let f = HostFacts::read(Path::new("/tmp/not/made/yet")).unwrap();
        assert!(f.mem_available > 0 && f.results_free > 0);
    }

    impl HostFacts {
        fn with_mem(self, b: u64) -> Self {
            HostFacts {
                mem_available: b,
                ..self
            }
        }
        fn with_disk(self, b: u64) -> Self {
            HostFacts {
                results_free: b,
                ..self
            }
        }
    }
}
