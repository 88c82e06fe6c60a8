//! The libvirt calls the `virt` crate (0.5) does not wrap, made through its
//! `sys` layer: abort the domain's job, switch a migration to post-copy,
//! read the downtime limit, measure a domain's dirty rate. Each returns
//! libvirt's last error on failure.

use virt::domain::Domain;
use virt::error::Error;
use virt::sys;

fn check(rc: std::os::raw::c_int) -> Result<(), Error> {
    if rc < 0 {
        Err(Error::last_error())
    } else {
        Ok(())
    }
}

/// `virDomainAbortJob`: cancel the migration in flight.
pub fn abort_job(dom: &Domain) -> Result<(), Error> {
    // SAFETY: `dom` holds a live reference to a libvirt domain for the call.
    check(unsafe { sys::virDomainAbortJob(dom.as_ptr()) })
}

/// `virDomainMigrateStartPostCopy`: switch the migration to post-copy.
pub fn start_post_copy(dom: &Domain) -> Result<(), Error> {
    // SAFETY: as above; flags must be 0.
    check(unsafe { sys::virDomainMigrateStartPostCopy(dom.as_ptr(), 0) })
}

/// `virDomainMigrateGetMaxDowntime`: the downtime limit, ms.
pub fn max_downtime(dom: &Domain) -> Result<u64, Error> {
    let mut ms: std::os::raw::c_ulonglong = 0;
    // SAFETY: as above; `ms` outlives the call.
    check(unsafe { sys::virDomainMigrateGetMaxDowntime(dom.as_ptr(), &mut ms, 0) })?;
    Ok(ms)
}

/// `virDomainStartDirtyRateCalc` and `virDomainListGetStats`
/// (`VIR_DOMAIN_STATS_DIRTYRATE`): sample domain `name` at `uri` for
/// `secs` seconds and return its dirty rate, MiB/s (libvirt's
/// `dirtyrate.megabytes_per_second`, from QEMU's calc-dirty-rate).
pub fn measure_dirty_rate(uri: &str, name: &str, secs: u64) -> anyhow::Result<f64> {
    use anyhow::Context;
    let conn = super::remote::connect("--connect", uri)?;
    let dom = conn
        .lookup_domain_by_name(name)
        .with_context(|| format!("--domain {name}: no such domain on {uri}"))?;
    // SAFETY: `dom` is live for the call; flags 0 is page sampling.
    check(unsafe { sys::virDomainStartDirtyRateCalc(dom.as_ptr(), secs as i32, 0) })
        .context("virDomainStartDirtyRateCalc")?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs + 10);
    loop {
        std::thread::sleep(std::time::Duration::from_millis(200));
        let (status, rate) = dirty_rate_stats(&dom)?;
        // calc_status: 0 unstarted, 1 measuring, 2 measured.
        match (status, rate) {
            (Some(2), Some(r)) => return Ok(r),
            _ if std::time::Instant::now() < deadline => {}
            _ => anyhow::bail!("libvirt did not finish measuring {name}'s dirty rate"),
        }
    }
}

/// The domain's `dirtyrate.calc_status` and `dirtyrate.megabytes_per_second`.
fn dirty_rate_stats(dom: &Domain) -> anyhow::Result<(Option<i64>, Option<f64>)> {
    // SAFETY: `dom` stays alive (and its pointer valid) for this function.
    let mut doms = [unsafe { dom.as_ptr() }, std::ptr::null_mut()];
    let mut recs: *mut sys::virDomainStatsRecordPtr = std::ptr::null_mut();
    // SAFETY: `doms` is a NULL-terminated array of live domains; libvirt
    // allocates `recs`, freed below after reading.
    let n = unsafe {
        sys::virDomainListGetStats(
            doms.as_mut_ptr(),
            sys::VIR_DOMAIN_STATS_DIRTYRATE,
            &mut recs,
            0,
        )
    };
    if n < 0 {
        return Err(anyhow::Error::from(Error::last_error()));
    }
    let (mut status, mut rate) = (None, None);
    // SAFETY: libvirt returned `n` records, each with `nparams` parameters.
    unsafe {
        for k in 0..n as usize {
            let rec = &**recs.add(k);
            for j in 0..rec.nparams.max(0) as usize {
                let p = &*rec.params.add(j);
                let field = std::ffi::CStr::from_ptr(p.field.as_ptr()).to_string_lossy();
                let value = match p.type_ as u32 {
                    sys::VIR_TYPED_PARAM_INT => p.value.i as i64,
                    sys::VIR_TYPED_PARAM_UINT => p.value.ui as i64,
                    sys::VIR_TYPED_PARAM_LLONG => p.value.l,
                    sys::VIR_TYPED_PARAM_ULLONG => p.value.ul as i64,
                    _ => continue,
                };
                match &*field {
                    "dirtyrate.calc_status" => status = Some(value),
                    "dirtyrate.megabytes_per_second" => rate = Some(value as f64),
                    _ => {}
                }
            }
        }
        sys::virDomainStatsRecordListFree(recs);
    }
    Ok((status, rate))
}
