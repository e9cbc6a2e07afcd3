//! Linux x86-64 ABI definitions: system call numbers and the byte layouts
//! of the structures system calls exchange with applications.

use alloc::vec;
use alloc::vec::Vec;

pub mod files;

/// System call numbers (Linux `arch/x86/entry/syscalls/syscall_64.tbl`).
#[allow(missing_docs)]
pub mod number {
    pub const READ: u64 = 0;
    pub const WRITE: u64 = 1;
    pub const OPEN: u64 = 2;
    pub const CLOSE: u64 = 3;
    pub const STAT: u64 = 4;
    pub const FSTAT: u64 = 5;
    pub const LSTAT: u64 = 6;
    pub const POLL: u64 = 7;
    pub const LSEEK: u64 = 8;
    pub const MMAP: u64 = 9;
    pub const MPROTECT: u64 = 10;
    pub const MUNMAP: u64 = 11;
    pub const BRK: u64 = 12;
    pub const RT_SIGACTION: u64 = 13;
    pub const RT_SIGPROCMASK: u64 = 14;
    pub const RT_SIGRETURN: u64 = 15;
    pub const IOCTL: u64 = 16;
    pub const PREAD64: u64 = 17;
    pub const PWRITE64: u64 = 18;
    pub const READV: u64 = 19;
    pub const WRITEV: u64 = 20;
    pub const ACCESS: u64 = 21;
    pub const PIPE: u64 = 22;
    pub const SELECT: u64 = 23;
    pub const SCHED_YIELD: u64 = 24;
    pub const MREMAP: u64 = 25;
    pub const MSYNC: u64 = 26;
    pub const MINCORE: u64 = 27;
    pub const MADVISE: u64 = 28;
    pub const SHMGET: u64 = 29;
    pub const SHMAT: u64 = 30;
    pub const SHMCTL: u64 = 31;
    pub const SHMDT: u64 = 67;
    pub const MLOCK: u64 = 149;
    pub const MUNLOCK: u64 = 150;
    pub const MLOCKALL: u64 = 151;
    pub const MUNLOCKALL: u64 = 152;
    pub const MEMFD_CREATE: u64 = 319;
    pub const MLOCK2: u64 = 325;
    pub const DUP: u64 = 32;
    pub const DUP2: u64 = 33;
    pub const NANOSLEEP: u64 = 35;
    pub const GETPID: u64 = 39;
    pub const SENDFILE: u64 = 40;
    pub const CLONE: u64 = 56;
    pub const EXIT: u64 = 60;
    pub const KILL: u64 = 62;
    pub const UNAME: u64 = 63;
    pub const FCNTL: u64 = 72;
    pub const FLOCK: u64 = 73;
    pub const FSYNC: u64 = 74;
    pub const FDATASYNC: u64 = 75;
    pub const TRUNCATE: u64 = 76;
    pub const FTRUNCATE: u64 = 77;
    pub const GETCWD: u64 = 79;
    pub const CHDIR: u64 = 80;
    pub const FCHDIR: u64 = 81;
    pub const RENAME: u64 = 82;
    pub const MKDIR: u64 = 83;
    pub const RMDIR: u64 = 84;
    pub const CREAT: u64 = 85;
    pub const LINK: u64 = 86;
    pub const UNLINK: u64 = 87;
    pub const SYMLINK: u64 = 88;
    pub const READLINK: u64 = 89;
    pub const CHMOD: u64 = 90;
    pub const FCHMOD: u64 = 91;
    pub const CHOWN: u64 = 92;
    pub const FCHOWN: u64 = 93;
    pub const LCHOWN: u64 = 94;
    pub const UMASK: u64 = 95;
    pub const GETTIMEOFDAY: u64 = 96;
    pub const GETRLIMIT: u64 = 97;
    pub const GETUID: u64 = 102;
    pub const GETGID: u64 = 104;
    pub const GETEUID: u64 = 107;
    pub const GETEGID: u64 = 108;
    pub const GETGROUPS: u64 = 115;
    pub const SETUID: u64 = 105;
    pub const SETGID: u64 = 106;
    pub const SETREUID: u64 = 113;
    pub const SETREGID: u64 = 114;
    pub const SETGROUPS: u64 = 116;
    pub const SETRESUID: u64 = 117;
    pub const SETRESGID: u64 = 119;
    pub const SETFSUID: u64 = 122;
    pub const SETFSGID: u64 = 123;
    pub const CAPGET: u64 = 125;
    pub const CAPSET: u64 = 126;
    pub const WAIT4: u64 = 61;
    pub const FORK: u64 = 57;
    pub const VFORK: u64 = 58;
    pub const EXECVE: u64 = 59;
    pub const EXECVEAT: u64 = 322;
    pub const SETPGID: u64 = 109;
    pub const GETPGID: u64 = 121;
    pub const SETSID: u64 = 112;
    pub const UNSHARE: u64 = 272;
    pub const SETNS: u64 = 308;
    pub const GETSID: u64 = 124;
    pub const WAITID: u64 = 247;
    pub const GETRESUID: u64 = 118;
    pub const GETRESGID: u64 = 120;
    pub const GETPPID: u64 = 110;
    pub const GETPGRP: u64 = 111;
    pub const RT_SIGPENDING: u64 = 127;
    pub const RT_SIGTIMEDWAIT: u64 = 128;
    pub const RT_SIGQUEUEINFO: u64 = 129;
    pub const RT_SIGSUSPEND: u64 = 130;
    pub const PAUSE: u64 = 34;
    pub const RT_TGSIGQUEUEINFO: u64 = 297;
    pub const SIGNALFD: u64 = 282;
    pub const SIGNALFD4: u64 = 289;
    pub const SIGALTSTACK: u64 = 131;
    pub const STATFS: u64 = 137;
    pub const FSTATFS: u64 = 138;
    pub const PRCTL: u64 = 157;
    pub const ARCH_PRCTL: u64 = 158;
    pub const SETRLIMIT: u64 = 160;
    pub const SYNC: u64 = 162;
    pub const GETTID: u64 = 186;
    pub const SETXATTR: u64 = 188;
    pub const LSETXATTR: u64 = 189;
    pub const FSETXATTR: u64 = 190;
    pub const GETXATTR: u64 = 191;
    pub const LGETXATTR: u64 = 192;
    pub const FGETXATTR: u64 = 193;
    pub const LISTXATTR: u64 = 194;
    pub const LLISTXATTR: u64 = 195;
    pub const FLISTXATTR: u64 = 196;
    pub const REMOVEXATTR: u64 = 197;
    pub const LREMOVEXATTR: u64 = 198;
    pub const FREMOVEXATTR: u64 = 199;
    pub const TKILL: u64 = 200;
    pub const TIME: u64 = 201;
    pub const FUTEX: u64 = 202;
    pub const SCHED_SETAFFINITY: u64 = 203;
    pub const SCHED_GETAFFINITY: u64 = 204;
    pub const EPOLL_CREATE: u64 = 213;
    pub const GETDENTS64: u64 = 217;
    pub const SET_TID_ADDRESS: u64 = 218;
    pub const FADVISE64: u64 = 221;
    pub const CLOCK_GETTIME: u64 = 228;
    pub const CLOCK_SETTIME: u64 = 227;
    pub const SETTIMEOFDAY: u64 = 164;
    pub const CLOCK_GETRES: u64 = 229;
    pub const CLOCK_NANOSLEEP: u64 = 230;
    pub const GETITIMER: u64 = 36;
    pub const ALARM: u64 = 37;
    pub const SETITIMER: u64 = 38;
    pub const TIMER_CREATE: u64 = 222;
    pub const TIMER_SETTIME: u64 = 223;
    pub const TIMER_GETTIME: u64 = 224;
    pub const TIMER_GETOVERRUN: u64 = 225;
    pub const TIMER_DELETE: u64 = 226;
    pub const TIMERFD_CREATE: u64 = 283;
    pub const TIMERFD_SETTIME: u64 = 286;
    pub const TIMERFD_GETTIME: u64 = 287;
    pub const GETRUSAGE: u64 = 98;
    pub const SYSINFO: u64 = 99;
    pub const TIMES: u64 = 100;
    pub const ADJTIMEX: u64 = 159;
    pub const CLOCK_ADJTIME: u64 = 305;
    pub const SEMGET: u64 = 64;
    pub const SEMOP: u64 = 65;
    pub const SEMCTL: u64 = 66;
    pub const MSGGET: u64 = 68;
    pub const MSGSND: u64 = 69;
    pub const MSGRCV: u64 = 70;
    pub const MSGCTL: u64 = 71;
    pub const SEMTIMEDOP: u64 = 220;
    pub const MQ_OPEN: u64 = 240;
    pub const MQ_UNLINK: u64 = 241;
    pub const MQ_TIMEDSEND: u64 = 242;
    pub const MQ_TIMEDRECEIVE: u64 = 243;
    pub const MQ_NOTIFY: u64 = 244;
    pub const MQ_GETSETATTR: u64 = 245;
    pub const GETPRIORITY: u64 = 140;
    pub const SETPRIORITY: u64 = 141;
    pub const SCHED_SETPARAM: u64 = 142;
    pub const SCHED_GETPARAM: u64 = 143;
    pub const SCHED_SETSCHEDULER: u64 = 144;
    pub const SCHED_GETSCHEDULER: u64 = 145;
    pub const SCHED_GET_PRIORITY_MAX: u64 = 146;
    pub const SCHED_GET_PRIORITY_MIN: u64 = 147;
    pub const SCHED_RR_GET_INTERVAL: u64 = 148;
    pub const IOPRIO_SET: u64 = 251;
    pub const IOPRIO_GET: u64 = 252;
    pub const SCHED_SETATTR: u64 = 314;
    pub const SCHED_GETATTR: u64 = 315;
    pub const PERSONALITY: u64 = 135;
    pub const SETHOSTNAME: u64 = 170;
    pub const SETDOMAINNAME: u64 = 171;
    pub const PTRACE: u64 = 101;
    pub const PROCESS_VM_READV: u64 = 310;
    pub const PROCESS_VM_WRITEV: u64 = 311;
    pub const KCMP: u64 = 312;
    pub const MEMBARRIER: u64 = 324;
    pub const RSEQ: u64 = 334;
    pub const ADD_KEY: u64 = 248;
    pub const REQUEST_KEY: u64 = 249;
    pub const KEYCTL: u64 = 250;
    pub const SYSLOG: u64 = 103;
    pub const EXIT_GROUP: u64 = 231;
    pub const EPOLL_WAIT: u64 = 232;
    pub const EPOLL_CTL: u64 = 233;
    pub const TGKILL: u64 = 234;
    pub const OPENAT: u64 = 257;
    pub const MKDIRAT: u64 = 258;
    pub const MKNOD: u64 = 133;
    pub const MKNODAT: u64 = 259;
    pub const FCHOWNAT: u64 = 260;
    pub const NEWFSTATAT: u64 = 262;
    pub const UNLINKAT: u64 = 263;
    pub const RENAMEAT: u64 = 264;
    pub const LINKAT: u64 = 265;
    pub const SYMLINKAT: u64 = 266;
    pub const READLINKAT: u64 = 267;
    pub const FCHMODAT: u64 = 268;
    pub const FACCESSAT: u64 = 269;
    pub const PSELECT6: u64 = 270;
    pub const PPOLL: u64 = 271;
    pub const SET_ROBUST_LIST: u64 = 273;
    pub const GET_ROBUST_LIST: u64 = 274;
    pub const UTIMENSAT: u64 = 280;
    pub const EPOLL_PWAIT: u64 = 281;
    pub const EVENTFD: u64 = 284;
    pub const EVENTFD2: u64 = 290;
    pub const EPOLL_CREATE1: u64 = 291;
    pub const DUP3: u64 = 292;
    pub const PIPE2: u64 = 293;
    pub const PREADV: u64 = 295;
    pub const PWRITEV: u64 = 296;
    pub const PRLIMIT64: u64 = 302;
    pub const SYNCFS: u64 = 306;
    pub const GETCPU: u64 = 309;
    pub const RENAMEAT2: u64 = 316;
    pub const PREADV2: u64 = 327;
    pub const PWRITEV2: u64 = 328;
    pub const GETRANDOM: u64 = 318;
    pub const PKEY_MPROTECT: u64 = 329;
    pub const PKEY_ALLOC: u64 = 330;
    pub const PKEY_FREE: u64 = 331;
    pub const STATX: u64 = 332;
    pub const SPLICE: u64 = 275;
    pub const TEE: u64 = 276;
    pub const SYNC_FILE_RANGE: u64 = 277;
    pub const VMSPLICE: u64 = 278;
    pub const FALLOCATE: u64 = 285;
    pub const FANOTIFY_INIT: u64 = 300;
    pub const NAME_TO_HANDLE_AT: u64 = 303;
    pub const OPEN_BY_HANDLE_AT: u64 = 304;
    pub const COPY_FILE_RANGE: u64 = 326;
    pub const PIVOT_ROOT: u64 = 155;
    pub const MOUNT: u64 = 165;
    pub const UMOUNT2: u64 = 166;
    pub const OPEN_TREE: u64 = 428;
    pub const MOVE_MOUNT: u64 = 429;
    pub const FSOPEN: u64 = 430;
    pub const FSCONFIG: u64 = 431;
    pub const FSMOUNT: u64 = 432;
    pub const FSPICK: u64 = 433;
    pub const MOUNT_SETATTR: u64 = 442;
    pub const OPEN_TREE_ATTR: u64 = 467;
    pub const CHROOT: u64 = 161;
    pub const INOTIFY_INIT: u64 = 253;
    pub const INOTIFY_ADD_WATCH: u64 = 254;
    pub const INOTIFY_RM_WATCH: u64 = 255;
    pub const INOTIFY_INIT1: u64 = 294;
    pub const PIDFD_SEND_SIGNAL: u64 = 424;
    pub const PIDFD_OPEN: u64 = 434;
    pub const CLONE3: u64 = 435;
    pub const PIDFD_GETFD: u64 = 438;
    pub const CLOSE_RANGE: u64 = 436;
    pub const OPENAT2: u64 = 437;
    pub const FACCESSAT2: u64 = 439;
    pub const EPOLL_PWAIT2: u64 = 441;
    pub const FUTEX_WAITV: u64 = 449;
    pub const SOCKET: u64 = 41;
    pub const CONNECT: u64 = 42;
    pub const ACCEPT: u64 = 43;
    pub const SENDTO: u64 = 44;
    pub const RECVFROM: u64 = 45;
    pub const SENDMSG: u64 = 46;
    pub const RECVMSG: u64 = 47;
    pub const SHUTDOWN: u64 = 48;
    pub const BIND: u64 = 49;
    pub const LISTEN: u64 = 50;
    pub const GETSOCKNAME: u64 = 51;
    pub const GETPEERNAME: u64 = 52;
    pub const SOCKETPAIR: u64 = 53;
    pub const SETSOCKOPT: u64 = 54;
    pub const GETSOCKOPT: u64 = 55;
    pub const ACCEPT4: u64 = 288;
    pub const RECVMMSG: u64 = 299;
    pub const SENDMMSG: u64 = 307;
}

/// What `uname` reports (system, node, release, version, machine, domain):
/// a Linux system, so that C libraries accept it. `/proc/version` and
/// `/proc/sys/kernel` say the same.
pub const UTSNAME: [&str; 6] = ["Linux", "rosv", "6.1.0-rosv", "#1 SMP rosv", "x86_64", "(none)"];

/// The name of system call `number`, for traces.
pub fn syscall_name(number: u64) -> &'static str {
    const NAMES: &[(u64, &str)] = &[
        (0, "read"),
        (1, "write"),
        (2, "open"),
        (3, "close"),
        (4, "stat"),
        (5, "fstat"),
        (6, "lstat"),
        (7, "poll"),
        (8, "lseek"),
        (9, "mmap"),
        (10, "mprotect"),
        (11, "munmap"),
        (12, "brk"),
        (13, "rt_sigaction"),
        (14, "rt_sigprocmask"),
        (15, "rt_sigreturn"),
        (16, "ioctl"),
        (17, "pread64"),
        (18, "pwrite64"),
        (19, "readv"),
        (20, "writev"),
        (21, "access"),
        (22, "pipe"),
        (23, "select"),
        (24, "sched_yield"),
        (25, "mremap"),
        (28, "madvise"),
        (32, "dup"),
        (33, "dup2"),
        (34, "pause"),
        (35, "nanosleep"),
        (39, "getpid"),
        (40, "sendfile"),
        (41, "socket"),
        (56, "clone"),
        (57, "fork"),
        (59, "execve"),
        (60, "exit"),
        (61, "wait4"),
        (62, "kill"),
        (63, "uname"),
        (72, "fcntl"),
        (73, "flock"),
        (74, "fsync"),
        (75, "fdatasync"),
        (76, "truncate"),
        (77, "ftruncate"),
        (79, "getcwd"),
        (80, "chdir"),
        (81, "fchdir"),
        (82, "rename"),
        (83, "mkdir"),
        (84, "rmdir"),
        (85, "creat"),
        (86, "link"),
        (87, "unlink"),
        (88, "symlink"),
        (89, "readlink"),
        (90, "chmod"),
        (91, "fchmod"),
        (92, "chown"),
        (93, "fchown"),
        (94, "lchown"),
        (95, "umask"),
        (96, "gettimeofday"),
        (97, "getrlimit"),
        (99, "sysinfo"),
        (102, "getuid"),
        (104, "getgid"),
        (107, "geteuid"),
        (108, "getegid"),
        (105, "setuid"),
        (106, "setgid"),
        (113, "setreuid"),
        (114, "setregid"),
        (115, "getgroups"),
        (116, "setgroups"),
        (117, "setresuid"),
        (119, "setresgid"),
        (122, "setfsuid"),
        (123, "setfsgid"),
        (126, "capset"),
        (247, "waitid"),
        (118, "getresuid"),
        (120, "getresgid"),
        (110, "getppid"),
        (111, "getpgrp"),
        (125, "capget"),
        (127, "rt_sigpending"),
        (128, "rt_sigtimedwait"),
        (129, "rt_sigqueueinfo"),
        (130, "rt_sigsuspend"),
        (131, "sigaltstack"),
        (137, "statfs"),
        (138, "fstatfs"),
        (157, "prctl"),
        (158, "arch_prctl"),
        (160, "setrlimit"),
        (162, "sync"),
        (186, "gettid"),
        (188, "setxattr"),
        (189, "lsetxattr"),
        (190, "fsetxattr"),
        (191, "getxattr"),
        (192, "lgetxattr"),
        (193, "fgetxattr"),
        (194, "listxattr"),
        (195, "llistxattr"),
        (196, "flistxattr"),
        (197, "removexattr"),
        (198, "lremovexattr"),
        (199, "fremovexattr"),
        (200, "tkill"),
        (201, "time"),
        (202, "futex"),
        (203, "sched_setaffinity"),
        (204, "sched_getaffinity"),
        (213, "epoll_create"),
        (217, "getdents64"),
        (218, "set_tid_address"),
        (221, "fadvise64"),
        (228, "clock_gettime"),
        (229, "clock_getres"),
        (230, "clock_nanosleep"),
        (231, "exit_group"),
        (232, "epoll_wait"),
        (233, "epoll_ctl"),
        (234, "tgkill"),
        (257, "openat"),
        (258, "mkdirat"),
        (260, "fchownat"),
        (262, "newfstatat"),
        (263, "unlinkat"),
        (264, "renameat"),
        (265, "linkat"),
        (266, "symlinkat"),
        (267, "readlinkat"),
        (268, "fchmodat"),
        (269, "faccessat"),
        (270, "pselect6"),
        (271, "ppoll"),
        (273, "set_robust_list"),
        (274, "get_robust_list"),
        (280, "utimensat"),
        (281, "epoll_pwait"),
        (282, "signalfd"),
        (284, "eventfd"),
        (289, "signalfd4"),
        (290, "eventfd2"),
        (291, "epoll_create1"),
        (292, "dup3"),
        (293, "pipe2"),
        (295, "preadv"),
        (296, "pwritev"),
        (297, "rt_tgsigqueueinfo"),
        (302, "prlimit64"),
        (306, "syncfs"),
        (309, "getcpu"),
        (316, "renameat2"),
        (318, "getrandom"),
        (324, "membarrier"),
        (327, "preadv2"),
        (328, "pwritev2"),
        (329, "pkey_mprotect"),
        (330, "pkey_alloc"),
        (331, "pkey_free"),
        (332, "statx"),
        (334, "rseq"),
        (428, "open_tree"),
        (429, "move_mount"),
        (430, "fsopen"),
        (431, "fsconfig"),
        (432, "fsmount"),
        (433, "fspick"),
        (435, "clone3"),
        (436, "close_range"),
        (439, "faccessat2"),
        (441, "epoll_pwait2"),
        (442, "mount_setattr"),
        (467, "open_tree_attr"),
    ];
    NAMES.iter().find(|(known, _)| *known == number).map_or("unknown", |(_, name)| name)
}

/// `st_mode` file type bits.
#[allow(missing_docs)]
pub mod mode {
    pub const S_IFCHR: u32 = 0o020000;
    pub const S_IFDIR: u32 = 0o040000;
    pub const S_IFREG: u32 = 0o100000;
    pub const S_IFLNK: u32 = 0o120000;
}

/// `AT_FDCWD`: relative to the working directory.
pub const AT_FDCWD: i32 = -100;
/// `AT_SYMLINK_NOFOLLOW`: do not follow a final symlink.
pub const AT_SYMLINK_NOFOLLOW: u64 = 0x100;
/// `AT_REMOVEDIR` (`unlinkat`) and `AT_EACCESS` (`faccessat2`).
pub const AT_REMOVEDIR: u64 = 0x200;
/// `AT_EACCESS`: check with the effective ids.
pub const AT_EACCESS: u64 = 0x200;
/// `AT_SYMLINK_FOLLOW` (`linkat`): follow a final symlink.
pub const AT_SYMLINK_FOLLOW: u64 = 0x400;
/// `AT_NO_AUTOMOUNT`.
pub const AT_NO_AUTOMOUNT: u64 = 0x800;
/// `AT_EMPTY_PATH`: operate on the descriptor itself.
pub const AT_EMPTY_PATH: u64 = 0x1000;
/// `AT_STATX_SYNC_TYPE`: the sync mode bits of `statx`.
pub const AT_STATX_SYNC_TYPE: u64 = 0x6000;

/// `struct stat` (144 bytes on x86-64).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct Stat {
    pub device: u64,
    pub inode: u64,
    pub link_count: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u64,
    pub size: i64,
    pub block_size: i64,
    pub blocks: i64,
    pub access_time: Timespec,
    pub modify_time: Timespec,
    pub change_time: Timespec,
}

impl Stat {
    /// The structure's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = vec![0u8; 144];
        put_u64(&mut bytes, 0, self.device);
        put_u64(&mut bytes, 8, self.inode);
        put_u64(&mut bytes, 16, self.link_count);
        bytes[24..28].copy_from_slice(&self.mode.to_le_bytes());
        bytes[28..32].copy_from_slice(&self.uid.to_le_bytes());
        bytes[32..36].copy_from_slice(&self.gid.to_le_bytes());
        put_u64(&mut bytes, 40, self.rdev);
        put_u64(&mut bytes, 48, self.size as u64);
        put_u64(&mut bytes, 56, self.block_size as u64);
        put_u64(&mut bytes, 64, self.blocks as u64);
        bytes[72..88].copy_from_slice(&self.access_time.encode());
        bytes[88..104].copy_from_slice(&self.modify_time.encode());
        bytes[104..120].copy_from_slice(&self.change_time.encode());
        bytes
    }
}

/// `struct timespec`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timespec {
    /// Seconds.
    pub seconds: i64,
    /// Nanoseconds, 0 to 999 999 999.
    pub nanoseconds: i64,
}

impl Timespec {
    /// A timespec from nanoseconds.
    pub fn from_ns(ns: u64) -> Self {
        Timespec { seconds: (ns / 1_000_000_000) as i64, nanoseconds: (ns % 1_000_000_000) as i64 }
    }

    /// Decodes a timespec; `None` if the nanoseconds are out of range.
    pub fn decode(bytes: &[u8; 16]) -> Option<Self> {
        let seconds = i64::from_le_bytes(bytes[..8].try_into().ok()?);
        let nanoseconds = i64::from_le_bytes(bytes[8..].try_into().ok()?);
        ((0..1_000_000_000).contains(&nanoseconds) && seconds >= 0)
            .then_some(Timespec { seconds, nanoseconds })
    }

    /// The time in nanoseconds, saturating.
    pub fn to_ns(self) -> u64 {
        (self.seconds as u64).saturating_mul(1_000_000_000).saturating_add(self.nanoseconds as u64)
    }

    /// The structure's bytes.
    pub fn encode(&self) -> [u8; 16] {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.seconds.to_le_bytes());
        bytes[8..].copy_from_slice(&self.nanoseconds.to_le_bytes());
        bytes
    }
}

/// `struct utsname`: six 65-byte NUL-padded fields.
pub fn encode_utsname(fields: [&str; 6]) -> Vec<u8> {
    let mut bytes = vec![0u8; 6 * 65];
    for (index, field) in fields.iter().enumerate() {
        let length = field.len().min(64);
        bytes[index * 65..index * 65 + length].copy_from_slice(&field.as_bytes()[..length]);
    }
    bytes
}

/// The kernel's `struct termios` for a serial console in its default state:
/// `ICRNL|IXON`, `OPOST|ONLCR`, `B38400|CS8|CREAD|HUPCL`, `ISIG|ICANON|ECHO|
/// ECHOE|ECHOK|ECHOCTL|ECHOKE|IEXTEN`, and the usual control characters.
pub fn console_termios() -> [u8; 36] {
    let mut bytes = [0u8; 36];
    bytes[0..4].copy_from_slice(&0o002400u32.to_le_bytes());
    bytes[4..8].copy_from_slice(&0o000005u32.to_le_bytes());
    bytes[8..12].copy_from_slice(&0o002277u32.to_le_bytes());
    bytes[12..16].copy_from_slice(&0o105073u32.to_le_bytes());
    let control_characters = [3u8, 28, 127, 21, 4, 0, 1, 0, 17, 19, 26, 0, 18, 15, 23, 22, 0, 0, 0];
    bytes[17..36].copy_from_slice(&control_characters);
    bytes
}

fn put_u64(bytes: &mut [u8], at: usize, value: u64) {
    bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_land_at_their_offsets() {
        let stat = Stat {
            inode: 7,
            mode: mode::S_IFCHR | 0o620,
            rdev: 0x440,
            size: -1,
            block_size: 1024,
            modify_time: Timespec { seconds: 5, nanoseconds: 6 },
            ..Stat::default()
        };
        let bytes = stat.encode();
        assert_eq!(bytes.len(), 144);
        assert_eq!(bytes[8], 7);
        assert_eq!(u32::from_le_bytes(bytes[24..28].try_into().unwrap()), 0o20620);
        assert_eq!(u64::from_le_bytes(bytes[40..48].try_into().unwrap()), 0x440);
        assert_eq!(i64::from_le_bytes(bytes[48..56].try_into().unwrap()), -1);
        assert_eq!(bytes[88], 5);
        assert_eq!(bytes[96], 6);
    }

    #[test]
    fn timespecs_round_trip_and_reject_bad_nanoseconds() {
        let time = Timespec::from_ns(3_000_000_007);
        assert_eq!(time, Timespec { seconds: 3, nanoseconds: 7 });
        assert_eq!(Timespec::decode(&time.encode()), Some(time));
        assert_eq!(time.to_ns(), 3_000_000_007);
        let bad = Timespec { seconds: 1, nanoseconds: 1_000_000_000 }.encode();
        assert_eq!(Timespec::decode(&bad), None);
    }

    #[test]
    fn utsname_fields_are_padded() {
        let bytes = encode_utsname(["Linux", "rosv", "6.1.0", "#1", "x86_64", "(none)"]);
        assert_eq!(&bytes[..6], b"Linux\0");
        assert_eq!(&bytes[65..70], b"rosv\0");
        assert_eq!(&bytes[4 * 65..4 * 65 + 6], b"x86_64");
    }
}
