//! The system's names: the host name and the NIS domain name that `uname`
//! reports and `sethostname` / `setdomainname` change (one UTS namespace).
//! `/proc/sys/kernel/hostname` and `domainname` read the same. The rest of
//! what `uname` reports is fixed (`crate::linux::UTSNAME`).

use alloc::string::String;

use spin::Mutex;

/// The longest name (`__NEW_UTS_LEN`).
pub const NAME_MAX: usize = 64;

static HOST_NAME: Mutex<Option<String>> = Mutex::new(None);
static DOMAIN_NAME: Mutex<Option<String>> = Mutex::new(None);

/// The host name (`UTSNAME`'s until set).
pub fn host_name() -> String {
    HOST_NAME.lock().clone().unwrap_or_else(|| String::from(crate::linux::UTSNAME[1]))
}

/// The NIS domain name (`(none)` until set, as Linux reports it).
pub fn domain_name() -> String {
    DOMAIN_NAME.lock().clone().unwrap_or_else(|| String::from(crate::linux::UTSNAME[5]))
}

/// Why a name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLong;

/// Sets the host name.
pub fn set_host_name(name: &str) -> Result<(), TooLong> {
    set(&HOST_NAME, name)
}

/// Sets the NIS domain name.
pub fn set_domain_name(name: &str) -> Result<(), TooLong> {
    set(&DOMAIN_NAME, name)
}

fn set(slot: &Mutex<Option<String>>, name: &str) -> Result<(), TooLong> {
    if name.len() > NAME_MAX {
        return Err(TooLong);
    }
    *slot.lock() = Some(String::from(name));
    Ok(())
}
