//! The system's names: the host name and the NIS domain name that `uname`
//! reports and `sethostname` / `setdomainname` change, one pair per UTS
//! namespace ([`crate::namespace`]). `/proc/sys/kernel/hostname` and
//! `domainname` read the caller's. The rest of what `uname` reports is
//! fixed (`crate::linux::UTSNAME`).

use alloc::string::String;

use spin::Mutex;

/// The longest name (`__NEW_UTS_LEN`).
pub const NAME_MAX: usize = 64;

/// Why a name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLong;

/// One UTS namespace's names.
#[derive(Debug)]
pub struct Names {
    host: Mutex<String>,
    domain: Mutex<String>,
}

impl Clone for Names {
    fn clone(&self) -> Self {
        Names { host: Mutex::new(self.host_name()), domain: Mutex::new(self.domain_name()) }
    }
}

impl Names {
    /// The names a machine starts with: `UTSNAME`'s host name and
    /// `(none)` for the domain, as Linux reports it.
    pub fn initial() -> Self {
        Names {
            host: Mutex::new(String::from(crate::linux::UTSNAME[1])),
            domain: Mutex::new(String::from(crate::linux::UTSNAME[5])),
        }
    }

    /// The host name.
    pub fn host_name(&self) -> String {
        self.host.lock().clone()
    }

    /// The NIS domain name.
    pub fn domain_name(&self) -> String {
        self.domain.lock().clone()
    }

    /// Sets the host name.
    pub fn set_host_name(&self, name: &str) -> Result<(), TooLong> {
        set(&self.host, name)
    }

    /// Sets the NIS domain name.
    pub fn set_domain_name(&self, name: &str) -> Result<(), TooLong> {
        set(&self.domain, name)
    }
}

fn set(slot: &Mutex<String>, name: &str) -> Result<(), TooLong> {
    if name.len() > NAME_MAX {
        return Err(TooLong);
    }
    *slot.lock() = String::from(name);
    Ok(())
}
