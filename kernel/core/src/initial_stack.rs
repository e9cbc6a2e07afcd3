//! The Linux initial process stack: argc, argv, envp, the auxiliary vector.
//!
//! From the stack pointer upwards (System V x86-64 ABI §3.4.1, and what Linux
//! `create_elf_tables` produces): `argc`; `argv[0..argc]`, NULL; `envp[..]`,
//! NULL; auxiliary vector pairs ending with `AT_NULL`; padding; then the
//! strings and the 16 `AT_RANDOM` bytes the pointers refer to. The stack
//! pointer is 16-byte aligned.

use alloc::vec;
use alloc::vec::Vec;

/// Auxiliary vector keys (Linux `include/uapi/linux/auxvec.h`).
#[allow(missing_docs)]
pub mod auxv {
    pub const AT_NULL: u64 = 0;
    pub const AT_PHDR: u64 = 3;
    pub const AT_PHENT: u64 = 4;
    pub const AT_PHNUM: u64 = 5;
    pub const AT_PAGESZ: u64 = 6;
    pub const AT_BASE: u64 = 7;
    pub const AT_FLAGS: u64 = 8;
    pub const AT_ENTRY: u64 = 9;
    pub const AT_UID: u64 = 11;
    pub const AT_EUID: u64 = 12;
    pub const AT_GID: u64 = 13;
    pub const AT_EGID: u64 = 14;
    pub const AT_PLATFORM: u64 = 15;
    pub const AT_HWCAP: u64 = 16;
    pub const AT_CLKTCK: u64 = 17;
    pub const AT_SECURE: u64 = 23;
    pub const AT_RANDOM: u64 = 25;
    pub const AT_HWCAP2: u64 = 26;
    pub const AT_SYSINFO_EHDR: u64 = 33;
    pub const AT_EXECFN: u64 = 31;
    pub const AT_MINSIGSTKSZ: u64 = 51;
}

/// Where auxiliary values that point into the string area go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuxValue {
    /// A plain number.
    Value(u64),
    /// The address of the 16 random bytes.
    RandomBytes,
    /// The address of the executable's path string.
    ExecutablePath,
    /// The address of the platform string ("x86_64").
    Platform,
}

/// The contents of a new stack and where the stack pointer starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackImage {
    /// The initial stack pointer (16-byte aligned).
    pub stack_pointer: u64,
    /// The bytes from `stack_pointer` up to the top of the stack.
    pub bytes: Vec<u8>,
    /// Where the argument and environment strings and the auxiliary
    /// vector lie.
    pub layout: StackLayout,
}

/// Where the initial stack keeps what `/proc/self/cmdline`, `environ` and
/// `auxv` show (Linux's `mm->arg_start` and friends): address ranges,
/// start inclusive, end exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StackLayout {
    /// The argument strings, each ending in a zero byte, `argv[0]` first.
    pub arguments: (u64, u64),
    /// The environment strings, likewise.
    pub environment: (u64, u64),
    /// The auxiliary vector, `AT_NULL` included.
    pub auxiliary_vector: (u64, u64),
}

/// What goes on the initial stack.
#[derive(Debug, Clone)]
pub struct StackContents<'a> {
    /// The arguments, `argv[0]` first.
    pub arguments: &'a [Vec<u8>],
    /// The environment, as `NAME=value`.
    pub environment: &'a [Vec<u8>],
    /// The auxiliary vector, without the terminating `AT_NULL`.
    pub auxiliary: &'a [(u64, AuxValue)],
    /// The path of the executable (`AT_EXECFN`).
    pub executable_path: &'a [u8],
    /// The bytes `AT_RANDOM` points at.
    pub random: [u8; 16],
}

const PLATFORM: &[u8] = b"x86_64";

/// Lays out the initial stack for a stack whose top is `top`.
pub fn build(top: u64, contents: &StackContents<'_>) -> StackImage {
    // The string area, built downwards from the top: remember each string's
    // offset from the top.
    let mut strings: Vec<u8> = Vec::new();
    let mut place = |bytes: &[u8], with_nul: bool| -> u64 {
        let mut item = bytes.to_vec();
        if with_nul {
            item.push(0);
        }
        item.extend_from_slice(&strings);
        strings = item;
        strings.len() as u64
    };
    // As on Linux, the strings run upwards: arguments, then the
    // environment, then the executable's path at the top.
    let executable_offset = place(contents.executable_path, true);
    let mut environment_offsets: Vec<u64> =
        contents.environment.iter().rev().map(|variable| place(variable, true)).collect();
    environment_offsets.reverse();
    let mut argument_offsets: Vec<u64> =
        contents.arguments.iter().rev().map(|argument| place(argument, true)).collect();
    argument_offsets.reverse();
    let platform_offset = place(PLATFORM, true);
    let random_offset = place(&contents.random, false);

    let string_area = strings.len() as u64;
    let words = 1
        + contents.arguments.len() as u64
        + 1
        + contents.environment.len() as u64
        + 1
        + 2 * (contents.auxiliary.len() as u64 + 1);
    let tables_top = (top - string_area) & !15;
    let mut stack_pointer = tables_top - words * 8;
    stack_pointer &= !15;
    let address_of = |offset: u64| top - offset;

    let mut table: Vec<u64> = Vec::with_capacity(words as usize);
    table.push(contents.arguments.len() as u64);
    table.extend(argument_offsets.iter().map(|&offset| address_of(offset)));
    table.push(0);
    table.extend(environment_offsets.iter().map(|&offset| address_of(offset)));
    table.push(0);
    for &(key, value) in contents.auxiliary {
        table.push(key);
        table.push(match value {
            AuxValue::Value(value) => value,
            AuxValue::RandomBytes => address_of(random_offset),
            AuxValue::ExecutablePath => address_of(executable_offset),
            AuxValue::Platform => address_of(platform_offset),
        });
    }
    table.push(auxv::AT_NULL);
    table.push(0);

    let mut bytes = vec![0u8; (top - stack_pointer) as usize];
    for (index, word) in table.iter().enumerate() {
        bytes[index * 8..index * 8 + 8].copy_from_slice(&word.to_le_bytes());
    }
    let strings_start = (top - string_area - stack_pointer) as usize;
    bytes[strings_start..].copy_from_slice(&strings);
    let executable = address_of(executable_offset);
    let environment_start = environment_offsets.first().map_or(executable, |&offset| address_of(offset));
    let arguments_start = argument_offsets.first().map_or(environment_start, |&offset| address_of(offset));
    let auxiliary_start =
        stack_pointer + 8 * (contents.arguments.len() as u64 + contents.environment.len() as u64 + 3);
    let layout = StackLayout {
        arguments: (arguments_start, environment_start),
        environment: (environment_start, executable),
        auxiliary_vector: (auxiliary_start, auxiliary_start + 16 * (contents.auxiliary.len() as u64 + 1)),
    };
    StackImage { stack_pointer, bytes, layout }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(image: &StackImage, address: u64) -> u64 {
        let at = (address - image.stack_pointer) as usize;
        u64::from_le_bytes(image.bytes[at..at + 8].try_into().unwrap())
    }

    fn string(image: &StackImage, address: u64) -> Vec<u8> {
        let at = (address - image.stack_pointer) as usize;
        let end = image.bytes[at..].iter().position(|&byte| byte == 0).unwrap();
        image.bytes[at..at + end].to_vec()
    }

    #[test]
    fn lays_out_argc_argv_envp_auxv() {
        let arguments = vec![b"/hello".to_vec(), b"a b".to_vec()];
        let environment = vec![b"HOME=/".to_vec()];
        let auxiliary = [
            (auxv::AT_PAGESZ, AuxValue::Value(4096)),
            (auxv::AT_RANDOM, AuxValue::RandomBytes),
            (auxv::AT_EXECFN, AuxValue::ExecutablePath),
            (auxv::AT_PLATFORM, AuxValue::Platform),
        ];
        let top = 0x7fff_f000;
        let image = build(
            top,
            &StackContents {
                arguments: &arguments,
                environment: &environment,
                auxiliary: &auxiliary,
                executable_path: b"/hello",
                random: [9; 16],
            },
        );
        let sp = image.stack_pointer;
        assert_eq!(sp % 16, 0);
        assert_eq!(sp + image.bytes.len() as u64, top);
        assert_eq!(word(&image, sp), 2);
        assert_eq!(string(&image, word(&image, sp + 8)), b"/hello");
        assert_eq!(string(&image, word(&image, sp + 16)), b"a b");
        assert_eq!(word(&image, sp + 24), 0);
        assert_eq!(string(&image, word(&image, sp + 32)), b"HOME=/");
        assert_eq!(word(&image, sp + 40), 0);
        let auxv_start = sp + 48;
        assert_eq!((word(&image, auxv_start), word(&image, auxv_start + 8)), (auxv::AT_PAGESZ, 4096));
        let bytes =
            |(start, end): (u64, u64)| image.bytes[(start - sp) as usize..(end - sp) as usize].to_vec();
        assert_eq!(bytes(image.layout.arguments), b"/hello\0a b\0", "arguments run upwards, as on Linux");
        assert_eq!(bytes(image.layout.environment), b"HOME=/\0");
        assert_eq!(image.layout.auxiliary_vector, (auxv_start, auxv_start + 5 * 16));
        let random = word(&image, auxv_start + 24);
        let at = (random - sp) as usize;
        assert_eq!(&image.bytes[at..at + 16], &[9; 16]);
        assert_eq!(string(&image, word(&image, auxv_start + 40)), b"/hello");
        assert_eq!(string(&image, word(&image, auxv_start + 56)), b"x86_64");
        assert_eq!(word(&image, auxv_start + 64), auxv::AT_NULL);
    }

    #[test]
    fn stack_pointer_is_aligned_for_any_count() {
        for count in 0..6 {
            let arguments: Vec<Vec<u8>> = (0..count).map(|index| vec![b'a'; index + 1]).collect();
            let image = build(
                0x10_0000,
                &StackContents {
                    arguments: &arguments,
                    environment: &[],
                    auxiliary: &[],
                    executable_path: b"/x",
                    random: [0; 16],
                },
            );
            assert_eq!(image.stack_pointer % 16, 0);
            assert_eq!(word(&image, image.stack_pointer), count as u64);
        }
    }
}
