//! The Multiboot2 boot information walk on arbitrary bytes: every tag it
//! yields lies within the information, and decoding one never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rosv_abi::multiboot2::{self, Tags};

fuzz_target!(|bytes: &[u8]| {
    let Ok(tags) = Tags::new(bytes) else {
        return;
    };
    for tag in tags.take(4096) {
        assert!(tag.body.len() <= bytes.len());
        let _ = multiboot2::decode_module(tag.body);
        let _ = multiboot2::memory_regions(tag.body).count();
    }
    let _ = multiboot2::find_header(bytes);
});
