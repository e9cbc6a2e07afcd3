//! The boot configuration reader on arbitrary blobs: whatever it accepts
//! reads back the same after writing it again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rosv_abi::boot_config::BootConfig;

fuzz_target!(|bytes: &[u8]| {
    let Ok(config) = BootConfig::parse(bytes) else {
        return;
    };
    let written = config.encode();
    assert_eq!(BootConfig::parse(&written).as_ref(), Ok(&config));
});
