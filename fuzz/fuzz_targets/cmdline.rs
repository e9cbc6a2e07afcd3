//! The kernel command-line grammar on arbitrary text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(line) = rosv_cmdline::CommandLine::parse(text) {
        for command in &line.commands {
            assert!(!command.argv.is_empty());
        }
    }
});
