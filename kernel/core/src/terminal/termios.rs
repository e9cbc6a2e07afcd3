//! Terminal settings as Linux's `struct termios` holds them, and the
//! window size (`struct winsize`).

/// Number of control characters (`NCCS` of the kernel's `struct termios`).
pub const CONTROL_CHARACTER_COUNT: usize = 19;
/// Bytes of `struct termios` (`TCGETS`).
pub const TERMIOS_SIZE: usize = 36;
/// Bytes of `struct termios2` (`TCGETS2`): `termios` and two speeds.
pub const TERMIOS2_SIZE: usize = 44;
/// Bytes of `struct winsize`.
pub const WINDOW_SIZE_SIZE: usize = 8;

/// Input flags (`c_iflag`).
#[allow(missing_docs)]
pub mod input {
    pub const IGNBRK: u32 = 0o1;
    pub const BRKINT: u32 = 0o2;
    pub const ISTRIP: u32 = 0o40;
    pub const INLCR: u32 = 0o100;
    pub const IGNCR: u32 = 0o200;
    pub const ICRNL: u32 = 0o400;
    pub const IXON: u32 = 0o2000;
    pub const IXANY: u32 = 0o4000;
    pub const IMAXBEL: u32 = 0o20000;
    pub const IUTF8: u32 = 0o40000;
}

/// Output flags (`c_oflag`).
#[allow(missing_docs)]
pub mod output {
    pub const OPOST: u32 = 0o1;
    pub const ONLCR: u32 = 0o4;
    pub const OCRNL: u32 = 0o10;
}

/// Control flags (`c_cflag`).
#[allow(missing_docs)]
pub mod control {
    pub const B38400: u32 = 0o17;
    pub const CS8: u32 = 0o60;
    pub const CREAD: u32 = 0o200;
    pub const HUPCL: u32 = 0o2000;
}

/// Local flags (`c_lflag`).
#[allow(missing_docs)]
pub mod local {
    pub const ISIG: u32 = 0o1;
    pub const ICANON: u32 = 0o2;
    pub const ECHO: u32 = 0o10;
    pub const ECHOE: u32 = 0o20;
    pub const ECHOK: u32 = 0o40;
    pub const ECHONL: u32 = 0o100;
    pub const NOFLSH: u32 = 0o200;
    pub const TOSTOP: u32 = 0o400;
    pub const ECHOCTL: u32 = 0o1000;
    pub const ECHOKE: u32 = 0o4000;
    pub const IEXTEN: u32 = 0o100000;
}

/// Indices of the control characters (`c_cc`).
#[allow(missing_docs)]
pub mod character {
    pub const VINTR: usize = 0;
    pub const VQUIT: usize = 1;
    pub const VERASE: usize = 2;
    pub const VKILL: usize = 3;
    pub const VEOF: usize = 4;
    pub const VTIME: usize = 5;
    pub const VMIN: usize = 6;
    pub const VSTART: usize = 8;
    pub const VSTOP: usize = 9;
    pub const VSUSP: usize = 10;
    pub const VEOL: usize = 11;
    pub const VREPRINT: usize = 12;
    pub const VDISCARD: usize = 13;
    pub const VWERASE: usize = 14;
    pub const VLNEXT: usize = 15;
    pub const VEOL2: usize = 16;
}

/// A terminal's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Termios {
    /// Input flags.
    pub input_flags: u32,
    /// Output flags.
    pub output_flags: u32,
    /// Control flags.
    pub control_flags: u32,
    /// Local flags.
    pub local_flags: u32,
    /// The line discipline number (0, `N_TTY`).
    pub line: u8,
    /// Control characters.
    pub characters: [u8; CONTROL_CHARACTER_COUNT],
}

/// The speed `termios2` reports (B38400's baud rate).
const SPEED: u32 = 38400;

impl Default for Termios {
    /// Linux's settings for a new terminal (`tty_std_termios`), with UTF-8
    /// input as terminals use today.
    fn default() -> Self {
        let mut characters = [0u8; CONTROL_CHARACTER_COUNT];
        let defaults = [
            (character::VINTR, 0x03),
            (character::VQUIT, 0x1c),
            (character::VERASE, 0x7f),
            (character::VKILL, 0x15),
            (character::VEOF, 0x04),
            (character::VMIN, 1),
            (character::VSTART, 0x11),
            (character::VSTOP, 0x13),
            (character::VSUSP, 0x1a),
            (character::VREPRINT, 0x12),
            (character::VDISCARD, 0x0f),
            (character::VWERASE, 0x17),
            (character::VLNEXT, 0x16),
        ];
        for (index, value) in defaults {
            characters[index] = value;
        }
        Termios {
            input_flags: input::ICRNL | input::IXON | input::IMAXBEL | input::IUTF8,
            output_flags: output::OPOST | output::ONLCR,
            control_flags: control::B38400 | control::CS8 | control::CREAD | control::HUPCL,
            local_flags: local::ISIG
                | local::ICANON
                | local::ECHO
                | local::ECHOE
                | local::ECHOK
                | local::ECHOCTL
                | local::ECHOKE
                | local::IEXTEN,
            line: 0,
            characters,
        }
    }
}

impl Termios {
    /// Whether the local flag `flag` is set.
    pub fn has_local(&self, flag: u32) -> bool {
        self.local_flags & flag != 0
    }

    /// Whether the input flag `flag` is set.
    pub fn has_input(&self, flag: u32) -> bool {
        self.input_flags & flag != 0
    }

    /// Whether output is processed with the output flag `flag`.
    pub fn has_output(&self, flag: u32) -> bool {
        self.output_flags & output::OPOST != 0 && self.output_flags & flag != 0
    }

    /// Control character `index`; `None` when disabled (0, `_POSIX_VDISABLE`).
    pub fn character(&self, index: usize) -> Option<u8> {
        self.characters.get(index).copied().filter(|&value| value != 0)
    }

    /// The `struct termios` bytes.
    pub fn encode(&self) -> [u8; TERMIOS_SIZE] {
        let mut bytes = [0u8; TERMIOS_SIZE];
        let flags = [self.input_flags, self.output_flags, self.control_flags, self.local_flags];
        for (index, flag) in flags.into_iter().enumerate() {
            bytes[index * 4..index * 4 + 4].copy_from_slice(&flag.to_le_bytes());
        }
        bytes[16] = self.line;
        bytes[17..17 + CONTROL_CHARACTER_COUNT].copy_from_slice(&self.characters);
        bytes
    }

    /// The `struct termios2` bytes: the settings and both speeds.
    pub fn encode2(&self) -> [u8; TERMIOS2_SIZE] {
        let mut bytes = [0u8; TERMIOS2_SIZE];
        bytes[..TERMIOS_SIZE].copy_from_slice(&self.encode());
        bytes[TERMIOS_SIZE..TERMIOS_SIZE + 4].copy_from_slice(&SPEED.to_le_bytes());
        bytes[TERMIOS_SIZE + 4..].copy_from_slice(&SPEED.to_le_bytes());
        bytes
    }

    /// Settings from `struct termios` (or the start of `termios2`) bytes.
    pub fn decode(bytes: &[u8; TERMIOS_SIZE]) -> Termios {
        let flag = |index: usize| {
            u32::from_le_bytes([
                bytes[index * 4],
                bytes[index * 4 + 1],
                bytes[index * 4 + 2],
                bytes[index * 4 + 3],
            ])
        };
        let mut characters = [0u8; CONTROL_CHARACTER_COUNT];
        characters.copy_from_slice(&bytes[17..17 + CONTROL_CHARACTER_COUNT]);
        Termios {
            input_flags: flag(0),
            output_flags: flag(1),
            control_flags: flag(2),
            local_flags: flag(3),
            line: bytes[16],
            characters,
        }
    }
}

/// A terminal window's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WindowSize {
    /// Rows of characters.
    pub rows: u16,
    /// Columns of characters.
    pub columns: u16,
    /// Width in pixels (unused by most programs).
    pub width_pixels: u16,
    /// Height in pixels.
    pub height_pixels: u16,
}

impl WindowSize {
    /// The `struct winsize` bytes.
    pub fn encode(&self) -> [u8; WINDOW_SIZE_SIZE] {
        let mut bytes = [0u8; WINDOW_SIZE_SIZE];
        for (index, value) in
            [self.rows, self.columns, self.width_pixels, self.height_pixels].into_iter().enumerate()
        {
            bytes[index * 2..index * 2 + 2].copy_from_slice(&value.to_le_bytes());
        }
        bytes
    }

    /// A size from `struct winsize` bytes.
    pub fn decode(bytes: &[u8; WINDOW_SIZE_SIZE]) -> WindowSize {
        let half = |index: usize| u16::from_le_bytes([bytes[index * 2], bytes[index * 2 + 1]]);
        WindowSize { rows: half(0), columns: half(1), width_pixels: half(2), height_pixels: half(3) }
    }
}
