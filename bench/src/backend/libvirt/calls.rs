//! The libvirt calls the `virt` crate (0.5) does not wrap, made through its
//! `sys` layer: abort the domain's job, switch a migration to post-copy,
//! read the downtime limit. Each returns libvirt's last error on failure.

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
