//! `siginfo_t`: what a delivered signal tells its handler, `sigwaitinfo`
//! and `signalfd`.
//!
//! The x86-64 layout (Linux `include/uapi/asm-generic/siginfo.h`) is 128
//! bytes: `si_signo`, `si_errno`, `si_code` at 0, 4 and 8, then a union at
//! 16 whose member the code selects. [`SignalInfo`] keeps the code, the
//! errno and the union's bytes as the sender filled them, so a
//! `rt_sigqueueinfo` caller's structure arrives whole.

/// `si_code` values senders use (Linux `include/uapi/asm-generic/siginfo.h`).
pub mod code {
    /// Sent by `kill`.
    pub const USER: i32 = 0;
    /// Sent by the kernel.
    pub const KERNEL: i32 = 0x80;
    /// Sent by `sigqueue`.
    pub const QUEUE: i32 = -1;
    /// A POSIX timer expired.
    pub const TIMER: i32 = -2;
    /// A POSIX message queue became non-empty.
    pub const MESSAGE_QUEUE: i32 = -3;
    /// Asynchronous I/O completed.
    pub const ASYNCHRONOUS_IO: i32 = -4;
    /// Queued `SIGIO`.
    pub const SIGIO: i32 = -5;
    /// Sent by `tkill` / `tgkill`.
    pub const TKILL: i32 = -6;
    /// `SIGCHLD`: the child called `exit`.
    pub const CHILD_EXITED: i32 = 1;
    /// `SIGCHLD`: a signal ended the child.
    pub const CHILD_KILLED: i32 = 2;
    /// `SIGCHLD`: the child stopped.
    pub const CHILD_STOPPED: i32 = 5;
    /// `SIGCHLD`: the child was continued.
    pub const CHILD_CONTINUED: i32 = 6;
}

/// Size of `siginfo_t` and of `struct signalfd_siginfo`.
pub const SIGINFO_SIZE: usize = 128;
/// Words of the union, after the three leading `int`s and padding.
const UNION_WORDS: usize = 14;

/// What a pending signal carries into `siginfo_t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SignalInfo {
    /// `si_code`.
    pub code: i32,
    /// `si_errno`.
    pub errno: i32,
    /// The union at offset 16, as 64-bit words.
    pub fields: [u64; UNION_WORDS],
}

/// Which member of the union a signal's code selects (Linux's
/// `siginfo_layout`), as `signalfd` needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `si_pid`, `si_uid`: `kill`, and the kernel's own sends.
    Kill,
    /// `si_tid`, `si_overrun`, `si_value`: a POSIX timer.
    Timer,
    /// `si_pid`, `si_uid`, `si_value`: `sigqueue` and other queued signals.
    Queued,
    /// `si_band`, `si_fd`.
    Poll,
    /// `si_addr`: a fault.
    Fault,
    /// `si_pid`, `si_uid`, `si_status`, `si_utime`, `si_stime`.
    Child,
    /// `si_call_addr`, `si_syscall`, `si_arch`.
    System,
}

/// Signal numbers the layouts depend on.
const SIGILL: u8 = 4;
const SIGTRAP: u8 = 5;
const SIGBUS: u8 = 7;
const SIGFPE: u8 = 8;
const SIGSEGV: u8 = 11;
const SIGCHLD: u8 = 17;
const SIGPOLL: u8 = 29;
const SIGSYS: u8 = 31;

impl SignalInfo {
    /// From a process (`kill`, `tkill`) or the kernel: `si_pid`, `si_uid`.
    pub fn sender(code: i32, pid: u32, uid: u32) -> Self {
        let mut info = SignalInfo { code, ..SignalInfo::default() };
        info.fields[0] = u64::from(pid) | u64::from(uid) << 32;
        info
    }

    /// Sent by the kernel with no sender (`SI_KERNEL`).
    pub fn kernel() -> Self {
        SignalInfo::sender(code::KERNEL, 0, 0)
    }

    /// A fault at `address` (`si_addr`).
    pub fn fault(code: i32, address: u64) -> Self {
        let mut info = SignalInfo { code, ..SignalInfo::default() };
        info.fields[0] = address;
        info
    }

    /// A queued signal with a value (`sigqueue`, a message queue's
    /// notification): `si_pid`, `si_uid`, `si_value`.
    pub fn queued(code: i32, pid: u32, uid: u32, value: u64) -> Self {
        let mut info = SignalInfo::sender(code, pid, uid);
        info.fields[1] = value;
        info
    }

    /// A POSIX timer's expiry: `si_timerid`, `si_overrun`, `si_value`.
    pub fn timer(timer_id: i32, overrun: i32, value: u64) -> Self {
        let mut info = SignalInfo { code: code::TIMER, ..SignalInfo::default() };
        info.fields[0] = u64::from(timer_id as u32) | u64::from(overrun as u32) << 32;
        info.fields[1] = value;
        info
    }

    /// A child's end (`SIGCHLD`, `waitid`): `si_pid`, `si_uid`,
    /// `si_status` (the exit status or the signal).
    pub fn child(code: i32, pid: u32, uid: u32, status: i32) -> Self {
        let mut info = SignalInfo::sender(code, pid, uid);
        info.fields[1] = u64::from(status as u32);
        info
    }

    /// A `SIGPOLL`-style notice: `si_band`, `si_fd`.
    pub fn poll(code: i32, band: i64, fd: i32) -> Self {
        let mut info = SignalInfo { code, ..SignalInfo::default() };
        info.fields[0] = band as u64;
        info.fields[1] = u64::from(fd as u32);
        info
    }

    /// Decodes a `siginfo_t` an application wrote (its `si_signo` is
    /// ignored: the call names the signal).
    pub fn decode(bytes: &[u8; SIGINFO_SIZE]) -> Self {
        let int = |offset: usize| {
            i32::from_le_bytes([bytes[offset], bytes[offset + 1], bytes[offset + 2], bytes[offset + 3]])
        };
        let mut info = SignalInfo { errno: int(4), code: int(8), ..SignalInfo::default() };
        for (index, word) in info.fields.iter_mut().enumerate() {
            let offset = 16 + index * 8;
            let mut raw = [0u8; 8];
            raw.copy_from_slice(&bytes[offset..offset + 8]);
            *word = u64::from_le_bytes(raw);
        }
        info
    }

    /// The `siginfo_t` of `signal`.
    pub fn encode(&self, signal: u8) -> [u8; SIGINFO_SIZE] {
        let mut bytes = [0u8; SIGINFO_SIZE];
        bytes[0..4].copy_from_slice(&i32::from(signal).to_le_bytes());
        bytes[4..8].copy_from_slice(&self.errno.to_le_bytes());
        bytes[8..12].copy_from_slice(&self.code.to_le_bytes());
        for (index, word) in self.fields.iter().enumerate() {
            bytes[16 + index * 8..24 + index * 8].copy_from_slice(&word.to_le_bytes());
        }
        bytes
    }

    /// The low 32 bits of the union's first word (`si_pid`, `si_tid`).
    fn low(&self, word: usize) -> u32 {
        self.fields[word] as u32
    }

    /// The high 32 bits of one of the union's words (`si_uid`,
    /// `si_overrun`).
    fn high(&self, word: usize) -> u32 {
        (self.fields[word] >> 32) as u32
    }

    /// `si_pid` (for the layouts that carry it).
    pub fn pid(&self) -> u32 {
        self.low(0)
    }

    /// `si_value` (for timers and queued signals).
    pub fn value(&self) -> u64 {
        self.fields[1]
    }

    /// Sets `si_overrun` (a timer's).
    pub fn set_overrun(&mut self, overrun: i32) {
        self.fields[0] = u64::from(self.low(0)) | u64::from(overrun as u32) << 32;
    }

    /// The union member `si_code` selects for `signal`.
    pub fn layout(&self, signal: u8) -> Layout {
        let code = self.code;
        if code > code::USER && code < code::KERNEL {
            // Codes between the two are the kernel's per-signal reasons.
            return match signal {
                SIGILL | SIGFPE | SIGSEGV | SIGBUS | SIGTRAP => Layout::Fault,
                SIGCHLD => Layout::Child,
                SIGPOLL => Layout::Poll,
                SIGSYS => Layout::System,
                _ => Layout::Kill,
            };
        }
        match code {
            code::TIMER => Layout::Timer,
            code::SIGIO => Layout::Poll,
            _ if code < 0 => Layout::Queued,
            _ => Layout::Kill,
        }
    }

    /// The `struct signalfd_siginfo` a `signalfd` read gives for `signal`.
    pub fn encode_for_signalfd(&self, signal: u8) -> [u8; SIGINFO_SIZE] {
        let mut bytes = [0u8; SIGINFO_SIZE];
        let mut put32 =
            |offset: usize, value: u32| bytes[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
        put32(0, u32::from(signal));
        put32(4, self.errno as u32);
        put32(8, self.code as u32);
        // ssi_pid 12, ssi_uid 16, ssi_fd 20, ssi_tid 24, ssi_band 28,
        // ssi_overrun 32, ssi_trapno 36, ssi_status 40, ssi_int 44,
        // ssi_ptr 48, ssi_utime 56, ssi_stime 64, ssi_addr 72.
        let mut words64: [(usize, u64); 4] = [(48, 0), (56, 0), (64, 0), (72, 0)];
        match self.layout(signal) {
            Layout::Kill => {
                put32(12, self.low(0));
                put32(16, self.high(0));
            }
            Layout::Queued => {
                put32(12, self.low(0));
                put32(16, self.high(0));
                put32(44, self.fields[1] as u32);
                words64[0].1 = self.fields[1];
            }
            Layout::Timer => {
                put32(24, self.low(0));
                put32(32, self.high(0));
                put32(44, self.fields[1] as u32);
                words64[0].1 = self.fields[1];
            }
            Layout::Poll => {
                put32(28, self.fields[0] as u32);
                put32(20, self.fields[1] as u32);
            }
            Layout::Fault => words64[3].1 = self.fields[0],
            Layout::Child => {
                put32(12, self.low(0));
                put32(16, self.high(0));
                put32(40, self.fields[1] as u32);
                words64[1].1 = self.fields[2];
                words64[2].1 = self.fields[3];
            }
            Layout::System => words64[3].1 = self.fields[0],
        }
        for (offset, value) in words64 {
            bytes[offset..offset + 8].copy_from_slice(&value.to_le_bytes());
        }
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn senders_fill_pid_and_uid() {
        let bytes = SignalInfo::sender(code::TKILL, 1, 1000).encode(10);
        assert_eq!(&bytes[0..4], &10i32.to_le_bytes());
        assert_eq!(&bytes[8..12], &(-6i32).to_le_bytes());
        assert_eq!(&bytes[16..20], &1u32.to_le_bytes());
        assert_eq!(&bytes[20..24], &1000u32.to_le_bytes());
    }

    #[test]
    fn queued_values_and_timers_reach_signalfd_fields() {
        let info = SignalInfo::queued(code::QUEUE, 1, 0, 0x1234_5678_9abc);
        assert_eq!(info.layout(35), Layout::Queued);
        let bytes = info.encode_for_signalfd(35);
        assert_eq!(&bytes[12..16], &1u32.to_le_bytes());
        assert_eq!(&bytes[44..48], &0x5678_9abcu32.to_le_bytes());
        assert_eq!(&bytes[48..56], &0x1234_5678_9abcu64.to_le_bytes());

        let mut timer = SignalInfo::timer(3, 0, 77);
        timer.set_overrun(5);
        assert_eq!(timer.layout(14), Layout::Timer);
        let bytes = timer.encode_for_signalfd(14);
        assert_eq!(&bytes[24..28], &3u32.to_le_bytes());
        assert_eq!(&bytes[32..36], &5u32.to_le_bytes());
        assert_eq!(&bytes[48..56], &77u64.to_le_bytes());
    }

    #[test]
    fn faults_carry_the_address_and_decoding_round_trips() {
        let fault = SignalInfo::fault(1, 0xdead_0000);
        assert_eq!(fault.layout(11), Layout::Fault);
        assert_eq!(&fault.encode_for_signalfd(11)[72..80], &0xdead_0000u64.to_le_bytes());
        let bytes = SignalInfo::queued(code::QUEUE, 9, 8, 7).encode(40);
        assert_eq!(SignalInfo::decode(&bytes), SignalInfo::queued(code::QUEUE, 9, 8, 7));
        assert_eq!(SignalInfo::kernel().layout(13), Layout::Kill);
    }
}
