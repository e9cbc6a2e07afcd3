//! Linux namespaces: the sets of names, ids and objects a process sees.
//!
//! Each process holds a [`Namespaces`] (Linux's `nsproxy`): one namespace
//! of each kind but user, whose namespace lives in the credentials
//! ([`user::UserNamespace`], as Linux's `cred->user_ns`). `clone` and
//! `unshare` with `CLONE_NEW*` flags replace some with new ones, `setns`
//! joins one a `/proc/PID/ns/*` file ([`file::NamespaceFile`]) names.
//! Every namespace has an inode number, which those links show and `stat`
//! gives, and the user namespace that owns it, against which privilege
//! over it is checked.
//!
//! What a kind keeps: UTS the host and domain names ([`crate::uts`]), mount
//! the mount table (a [`Vfs`] of its own, copied from the one it was made
//! from), the others only their identity here.

pub mod file;
pub mod user;

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;
use core::sync::atomic::{AtomicU64, Ordering};

use spin::Mutex;

use self::user::UserNamespace;
use crate::machine::Machine;
use crate::net::Network;
use crate::vfs::Vfs;

/// The kinds of namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Control groups (`CLONE_NEWCGROUP`).
    Cgroup,
    /// System V IPC and POSIX message queues (`CLONE_NEWIPC`).
    Ipc,
    /// The mount table (`CLONE_NEWNS`).
    Mount,
    /// Interfaces and sockets (`CLONE_NEWNET`).
    Network,
    /// Process ids (`CLONE_NEWPID`).
    Pid,
    /// Clock offsets (`CLONE_NEWTIME`).
    Time,
    /// User and group ids and capabilities (`CLONE_NEWUSER`).
    User,
    /// Host and domain names (`CLONE_NEWUTS`).
    Uts,
}

/// `clone` flags that ask for new namespaces (`linux/sched.h`).
pub mod flag {
    /// `CLONE_NEWTIME`.
    pub const NEWTIME: u64 = 0x0000_0080;
    /// `CLONE_NEWNS`.
    pub const NEWNS: u64 = 0x0002_0000;
    /// `CLONE_NEWCGROUP`.
    pub const NEWCGROUP: u64 = 0x0200_0000;
    /// `CLONE_NEWUTS`.
    pub const NEWUTS: u64 = 0x0400_0000;
    /// `CLONE_NEWIPC`.
    pub const NEWIPC: u64 = 0x0800_0000;
    /// `CLONE_NEWUSER`.
    pub const NEWUSER: u64 = 0x1000_0000;
    /// `CLONE_NEWPID`.
    pub const NEWPID: u64 = 0x2000_0000;
    /// `CLONE_NEWNET`.
    pub const NEWNET: u64 = 0x4000_0000;
    /// Every one of them.
    pub const ALL: u64 = NEWTIME | NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET;
}

/// The first number given to namespaces made after boot (Linux's
/// `PROC_DYNAMIC_FIRST`).
const FIRST_DYNAMIC_INODE: u64 = 0xf000_0000;

static NEXT_INODE: AtomicU64 = AtomicU64::new(FIRST_DYNAMIC_INODE);

/// A new namespace's inode number.
fn new_inode() -> u64 {
    NEXT_INODE.fetch_add(1, Ordering::Relaxed)
}

impl Kind {
    /// Every kind, in the order `/proc/PID/ns` lists them.
    pub const ALL: [Kind; 8] =
        [Kind::Cgroup, Kind::Ipc, Kind::Mount, Kind::Network, Kind::Pid, Kind::Time, Kind::User, Kind::Uts];

    /// Its `CLONE_NEW*` flag (also `setns`'s `nstype`).
    pub fn clone_flag(self) -> u64 {
        match self {
            Kind::Cgroup => flag::NEWCGROUP,
            Kind::Ipc => flag::NEWIPC,
            Kind::Mount => flag::NEWNS,
            Kind::Network => flag::NEWNET,
            Kind::Pid => flag::NEWPID,
            Kind::Time => flag::NEWTIME,
            Kind::User => flag::NEWUSER,
            Kind::Uts => flag::NEWUTS,
        }
    }

    /// The name its links show (`uts:[4026531838]`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Cgroup => "cgroup",
            Kind::Ipc => "ipc",
            Kind::Mount => "mnt",
            Kind::Network => "net",
            Kind::Pid => "pid",
            Kind::Time => "time",
            Kind::User => "user",
            Kind::Uts => "uts",
        }
    }

    /// The initial namespace's number, those Linux gives its own.
    fn initial_inode(self) -> u64 {
        match self {
            Kind::Ipc => 0xefff_ffff,
            Kind::Uts => 0xefff_fffe,
            Kind::User => 0xefff_fffd,
            Kind::Pid => 0xefff_fffc,
            Kind::Cgroup => 0xefff_fffb,
            Kind::Time => 0xefff_fffa,
            Kind::Network => 0xefff_fff9,
            Kind::Mount => 0xefff_fff8,
        }
    }
}

/// What a namespace keeps besides its identity.
#[derive(Debug)]
pub enum State {
    /// Nothing here.
    Plain,
    /// A UTS namespace's names.
    Uts(crate::uts::Names),
    /// A mount namespace's tree.
    Mount(Arc<Vfs>),
    /// A network namespace's network.
    Network(Arc<Network>),
}

/// What subsystems keep per namespace, one object of each type, made on
/// first use: an IPC namespace's System V tables and message queues.
#[derive(Default)]
pub struct Objects {
    slots: Mutex<Vec<Arc<dyn Any + Send + Sync>>>,
}

impl core::fmt::Debug for Objects {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.debug_struct("Objects").field("count", &self.slots.lock().len()).finish()
    }
}

impl Objects {
    /// The object of type `T`, made now if there is none yet.
    pub fn get<T: Default + Send + Sync + 'static>(&self) -> Arc<T> {
        let mut slots = self.slots.lock();
        if let Some(found) = slots.iter().find_map(|slot| slot.clone().downcast::<T>().ok()) {
            return found;
        }
        let made = Arc::new(T::default());
        slots.push(made.clone());
        made
    }
}

/// A namespace of any kind but user.
#[derive(Debug)]
pub struct Namespace {
    kind: Kind,
    inode: u64,
    owner: Arc<UserNamespace>,
    /// The namespace it was made in (pid namespaces).
    parent: Option<Arc<Namespace>>,
    state: State,
    objects: Objects,
}

impl Namespace {
    /// An initial namespace of `kind` with `state`.
    fn initial(kind: Kind, state: State) -> Arc<Self> {
        Arc::new(Namespace {
            kind,
            inode: kind.initial_inode(),
            owner: UserNamespace::initial(),
            parent: None,
            state,
            objects: Objects::default(),
        })
    }

    /// A new namespace made from `self`, owned by `owner`: the names or
    /// mount table are copies of `self`'s, a network is a new loop-only
    /// one that `machine` serves (`seed` varies its ports).
    pub fn new_child(
        self: &Arc<Self>,
        owner: &Arc<UserNamespace>,
        machine: &dyn Machine,
        seed: u64,
    ) -> Arc<Self> {
        let state = match &self.state {
            State::Plain => State::Plain,
            State::Uts(names) => State::Uts(names.clone()),
            State::Mount(vfs) => State::Mount(vfs.copy()),
            State::Network(network) => State::Network(network.for_namespace(machine, seed)),
        };
        let parent = (self.kind == Kind::Pid).then(|| self.clone());
        Arc::new(Namespace {
            kind: self.kind,
            inode: new_inode(),
            owner: owner.clone(),
            parent,
            state,
            objects: Objects::default(),
        })
    }

    /// Its kind.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The number its links show.
    pub fn inode(&self) -> u64 {
        self.inode
    }

    /// The user namespace that owns it.
    pub fn owner(&self) -> &Arc<UserNamespace> {
        &self.owner
    }

    /// The namespace it was made in (pid namespaces only).
    pub fn parent(&self) -> Option<&Arc<Namespace>> {
        self.parent.as_ref()
    }

    /// What subsystems keep in this namespace (new ones start empty).
    pub fn objects(&self) -> &Objects {
        &self.objects
    }

    /// A UTS namespace's names.
    pub fn names(&self) -> Option<&crate::uts::Names> {
        match &self.state {
            State::Uts(names) => Some(names),
            _ => None,
        }
    }

    /// A network namespace's network.
    pub fn network(&self) -> Option<&Arc<Network>> {
        match &self.state {
            State::Network(network) => Some(network),
            _ => None,
        }
    }

    /// A mount namespace's tree.
    pub fn vfs(&self) -> Option<&Arc<Vfs>> {
        match &self.state {
            State::Mount(vfs) => Some(vfs),
            _ => None,
        }
    }
}

/// The namespaces a process is in (Linux's `nsproxy`, with the pid and
/// time namespaces the process itself is in).
#[derive(Debug, Clone)]
pub struct Namespaces {
    /// The cgroup namespace.
    pub cgroup: Arc<Namespace>,
    /// The IPC namespace.
    pub ipc: Arc<Namespace>,
    /// The mount namespace.
    pub mount: Arc<Namespace>,
    /// The network namespace.
    pub network: Arc<Namespace>,
    /// The pid namespace the process is in.
    pub pid: Arc<Namespace>,
    /// The one its children will be in.
    pub pid_for_children: Arc<Namespace>,
    /// The time namespace the process is in.
    pub time: Arc<Namespace>,
    /// The one its children will be in.
    pub time_for_children: Arc<Namespace>,
    /// The UTS namespace.
    pub uts: Arc<Namespace>,
}

/// The initial namespaces of the kinds whose state is not the machine's
/// tree.
struct Initial {
    cgroup: Arc<Namespace>,
    ipc: Arc<Namespace>,
    pid: Arc<Namespace>,
    time: Arc<Namespace>,
    uts: Arc<Namespace>,
}

fn initial() -> &'static Initial {
    static INITIAL: spin::Once<Initial> = spin::Once::new();
    INITIAL.call_once(|| Initial {
        cgroup: Namespace::initial(Kind::Cgroup, State::Plain),
        ipc: Namespace::initial(Kind::Ipc, State::Plain),
        pid: Namespace::initial(Kind::Pid, State::Plain),
        time: Namespace::initial(Kind::Time, State::Plain),
        uts: Namespace::initial(Kind::Uts, State::Uts(crate::uts::Names::initial())),
    })
}

/// The initial IPC namespace, whose objects the kernel itself lists.
pub fn initial_ipc() -> Arc<Namespace> {
    initial().ipc.clone()
}

/// The initial UTS namespace, whose names the kernel itself reads.
pub fn initial_uts() -> Arc<Namespace> {
    initial().uts.clone()
}

impl Namespaces {
    /// The initial namespaces, over the tree `vfs` and the machine's
    /// `network`.
    pub fn initial(vfs: Arc<Vfs>, network: Arc<Network>) -> Self {
        let initial = initial();
        Namespaces {
            cgroup: initial.cgroup.clone(),
            ipc: initial.ipc.clone(),
            mount: Namespace::initial(Kind::Mount, State::Mount(vfs)),
            network: Namespace::initial(Kind::Network, State::Network(network)),
            pid: initial.pid.clone(),
            pid_for_children: initial.pid.clone(),
            time: initial.time.clone(),
            time_for_children: initial.time.clone(),
            uts: initial.uts.clone(),
        }
    }

    /// What a child process starts in: these, in the pid and time
    /// namespaces meant for children.
    pub fn for_child(&self) -> Self {
        Namespaces {
            pid: self.pid_for_children.clone(),
            time: self.time_for_children.clone(),
            ..self.clone()
        }
    }

    /// These with a new namespace, owned by `owner`, for each kind `flags`
    /// names (user aside). New pid and time namespaces are for children;
    /// `machine` serves a new network, whose ports `seed` varies.
    pub fn with_new(&self, flags: u64, owner: &Arc<UserNamespace>, machine: &dyn Machine, seed: u64) -> Self {
        let mut namespaces = self.clone();
        let new = |namespace: &Arc<Namespace>, kind: Kind| {
            if flags & kind.clone_flag() != 0 {
                namespace.new_child(owner, machine, seed)
            } else {
                namespace.clone()
            }
        };
        namespaces.cgroup = new(&self.cgroup, Kind::Cgroup);
        namespaces.ipc = new(&self.ipc, Kind::Ipc);
        namespaces.mount = new(&self.mount, Kind::Mount);
        namespaces.network = new(&self.network, Kind::Network);
        namespaces.pid_for_children = new(&self.pid_for_children, Kind::Pid);
        namespaces.time_for_children = new(&self.time_for_children, Kind::Time);
        namespaces.uts = new(&self.uts, Kind::Uts);
        namespaces
    }

    /// The namespace of `kind` (not user) a `/proc/PID/ns` link names;
    /// `for_children` picks `pid_for_children` and `time_for_children`.
    pub fn of_kind(&self, kind: Kind, for_children: bool) -> Option<&Arc<Namespace>> {
        Some(match kind {
            Kind::Cgroup => &self.cgroup,
            Kind::Ipc => &self.ipc,
            Kind::Mount => &self.mount,
            Kind::Network => &self.network,
            Kind::Pid if for_children => &self.pid_for_children,
            Kind::Pid => &self.pid,
            Kind::Time if for_children => &self.time_for_children,
            Kind::Time => &self.time,
            Kind::Uts => &self.uts,
            Kind::User => return None,
        })
    }

    /// The network of the network namespace.
    pub fn network(&self) -> &Arc<Network> {
        self.network.network().expect("a network namespace always has a network")
    }

    /// The tree of the mount namespace.
    pub fn vfs(&self) -> &Arc<Vfs> {
        self.mount.vfs().expect("a mount namespace always has a tree")
    }
}

#[cfg(test)]
mod tests;
