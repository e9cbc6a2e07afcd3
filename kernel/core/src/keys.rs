//! The key retention service: keys and keyrings that programs keep secrets
//! in (`add_key`, `request_key`, `keyctl`).
//!
//! Every key has a serial number, a type (`user` and `logon` keys hold a
//! payload, `keyring`s hold links to other keys), a description, an owner
//! and permissions. Keys live in one global table; the special keyrings a
//! caller names by negative numbers (its thread's, its process's, its
//! session's, its user's) are made when first named. One process owns the
//! machine, so the process and session keyrings are the machine's, and
//! permission checks stop at possession: the caller possesses every key.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use spin::Mutex;

/// A key's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `user`: a payload the owner may read.
    User,
    /// `logon`: a payload nobody reads back.
    Logon,
    /// `keyring`: links to other keys.
    Keyring,
}

impl Kind {
    /// The kind named `name`.
    pub fn named(name: &str) -> Option<Kind> {
        match name {
            "user" => Some(Kind::User),
            "logon" => Some(Kind::Logon),
            "keyring" => Some(Kind::Keyring),
            _ => None,
        }
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::User => "user",
            Kind::Logon => "logon",
            Kind::Keyring => "keyring",
        }
    }
}

/// Why an operation on keys failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyError {
    /// No such key (`ENOKEY`).
    NotFound,
    /// It was revoked (`EKEYREVOKED`).
    Revoked,
    /// Its timeout passed (`EKEYEXPIRED`).
    Expired,
    /// The operation needs a keyring (`ENOTDIR`).
    NotKeyring,
    /// The operation does not apply to this kind (`EOPNOTSUPP`).
    NotSupported,
    /// Not linked there (`ENOENT`).
    NotLinked,
    /// The link would make a keyring contain itself (`EDEADLK`).
    Cycle,
}

/// A key.
#[derive(Debug, Clone)]
pub struct Key {
    /// What it is.
    pub kind: Kind,
    /// Its description (the name searches match).
    pub description: String,
    /// The payload (a keyring's is empty).
    pub payload: Vec<u8>,
    /// Linked keys, for a keyring.
    pub links: Vec<i32>,
    /// Owner user and group.
    pub owner: (u32, u32),
    /// `KEY_POS_*`, `KEY_USR_*`, `KEY_GRP_*`, `KEY_OTH_*` bits.
    pub permissions: u32,
    /// Revoked: only unlinking and describing errors are left.
    pub is_revoked: bool,
    /// When it expires, in monotonic nanoseconds.
    pub expiry_ns: Option<u64>,
}

/// Permissions of a new key: all for its possessor, viewing for its user;
/// keyrings can also be read and searched by the user.
fn default_permissions(kind: Kind) -> u32 {
    match kind {
        Kind::Keyring => 0x3f03_0000,
        Kind::User | Kind::Logon => 0x3f01_0000,
    }
}

/// The special keyrings a caller names by number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    /// `KEY_SPEC_THREAD_KEYRING` of a thread.
    Thread(u64),
    /// `KEY_SPEC_PROCESS_KEYRING`.
    Process,
    /// `KEY_SPEC_SESSION_KEYRING`.
    Session,
    /// `KEY_SPEC_USER_KEYRING` of a user.
    User(u32),
    /// `KEY_SPEC_USER_SESSION_KEYRING` of a user.
    UserSession(u32),
}

#[derive(Default)]
struct Table {
    keys: BTreeMap<i32, Key>,
    special: Vec<(Special, i32)>,
    next_serial: i32,
}

static TABLE: Mutex<Table> = Mutex::new(Table { keys: BTreeMap::new(), special: Vec::new(), next_serial: 0 });

impl Table {
    fn insert(&mut self, key: Key) -> i32 {
        // Serial numbers start high, as Linux's look, and never repeat.
        self.next_serial = self.next_serial.max(0x1000_0000) + 1;
        let serial = self.next_serial;
        self.keys.insert(serial, key);
        serial
    }

    fn special(&mut self, which: Special, owner: (u32, u32), may_create: bool) -> Option<i32> {
        if let Some(&(_, serial)) = self.special.iter().find(|(special, _)| *special == which) {
            return Some(serial);
        }
        if !may_create {
            return None;
        }
        let description = match which {
            Special::Thread(_) => String::from("_tid"),
            Special::Process => String::from("_pid"),
            Special::Session => String::from("_ses"),
            Special::User(uid) => alloc::format!("_uid.{uid}"),
            Special::UserSession(uid) => alloc::format!("_uid_ses.{uid}"),
        };
        let serial = self.insert(new_key(Kind::Keyring, description, Vec::new(), owner));
        self.special.push((which, serial));
        Some(serial)
    }

    /// The usable key `serial` (revoked and expired ones fail).
    fn usable(&self, serial: i32, now_ns: u64) -> Result<&Key, KeyError> {
        let key = self.keys.get(&serial).ok_or(KeyError::NotFound)?;
        if key.is_revoked {
            return Err(KeyError::Revoked);
        }
        if key.expiry_ns.is_some_and(|expiry| now_ns >= expiry) {
            return Err(KeyError::Expired);
        }
        Ok(key)
    }

    fn usable_mut(&mut self, serial: i32, now_ns: u64) -> Result<&mut Key, KeyError> {
        self.usable(serial, now_ns)?;
        self.keys.get_mut(&serial).ok_or(KeyError::NotFound)
    }

    /// Searches `keyring` and the keyrings it links, breadth first; a key
    /// found revoked or expired is that error.
    fn search(
        &self,
        keyring: i32,
        kind: Kind,
        description: &str,
        now_ns: u64,
    ) -> Option<Result<i32, KeyError>> {
        let mut queue = alloc::collections::VecDeque::from([keyring]);
        let mut seen = Vec::new();
        while let Some(ring) = queue.pop_front() {
            if seen.contains(&ring) {
                continue;
            }
            seen.push(ring);
            let Ok(ring_key) = self.usable(ring, now_ns) else {
                continue;
            };
            for &link in &ring_key.links {
                let Some(linked) = self.keys.get(&link) else {
                    continue;
                };
                if linked.kind == kind && linked.description == description {
                    // Found revoked or expired, it is reported so.
                    return Some(self.usable(link, now_ns).map(|_| link));
                }
                if self.usable(link, now_ns).is_err() {
                    continue;
                }
                if linked.kind == Kind::Keyring {
                    queue.push_back(link);
                }
            }
        }
        None
    }

    /// Whether `keyring` contains `target`, directly or through others.
    fn contains(&self, keyring: i32, target: i32) -> bool {
        let mut stack = alloc::vec![keyring];
        let mut seen = Vec::new();
        while let Some(ring) = stack.pop() {
            if ring == target {
                return true;
            }
            if seen.contains(&ring) {
                continue;
            }
            seen.push(ring);
            if let Some(key) = self.keys.get(&ring) {
                stack.extend(key.links.iter().copied());
            }
        }
        false
    }
}

fn new_key(kind: Kind, description: String, payload: Vec<u8>, owner: (u32, u32)) -> Key {
    Key {
        kind,
        description,
        payload,
        links: Vec::new(),
        owner,
        permissions: default_permissions(kind),
        is_revoked: false,
        expiry_ns: None,
    }
}

/// The serial of special keyring `which`, made now if `may_create`.
pub fn special(which: Special, owner: (u32, u32), may_create: bool) -> Result<i32, KeyError> {
    TABLE.lock().special(which, owner, may_create).ok_or(KeyError::NotFound)
}

/// A new session keyring (named `name`, or `_ses`) replacing the current.
pub fn join_session(name: Option<String>, owner: (u32, u32)) -> i32 {
    let mut table = TABLE.lock();
    if let Some(name) = &name
        && let Some((&serial, _)) = table
            .keys
            .iter()
            .find(|(_, key)| key.kind == Kind::Keyring && key.description == *name && !key.is_revoked)
    {
        table.special.retain(|(special, _)| *special != Special::Session);
        table.special.push((Special::Session, serial));
        return serial;
    }
    let serial =
        table.insert(new_key(Kind::Keyring, name.unwrap_or_else(|| String::from("_ses")), Vec::new(), owner));
    table.special.retain(|(special, _)| *special != Special::Session);
    table.special.push((Special::Session, serial));
    serial
}

/// `add_key`: updates the key of `kind` and `description` linked in
/// `keyring`, or makes one and links it there; returns its serial.
pub fn add(
    keyring: i32,
    kind: Kind,
    description: String,
    payload: Vec<u8>,
    owner: (u32, u32),
    now_ns: u64,
) -> Result<i32, KeyError> {
    let mut table = TABLE.lock();
    let ring = table.usable(keyring, now_ns)?;
    if ring.kind != Kind::Keyring {
        return Err(KeyError::NotKeyring);
    }
    let existing = ring.links.iter().copied().find(|link| {
        table
            .keys
            .get(link)
            .is_some_and(|key| key.kind == kind && key.description == description && !key.is_revoked)
    });
    if let Some(serial) = existing
        && kind != Kind::Keyring
    {
        table.usable_mut(serial, now_ns)?.payload = payload;
        return Ok(serial);
    }
    let serial = table.insert(new_key(kind, description, payload, owner));
    table.usable_mut(keyring, now_ns)?.links.push(serial);
    Ok(serial)
}

/// Searches `keyrings` in order for a key of `kind` and `description`.
pub fn search(keyrings: &[i32], kind: Kind, description: &str, now_ns: u64) -> Result<i32, KeyError> {
    let table = TABLE.lock();
    keyrings
        .iter()
        .find_map(|&ring| table.search(ring, kind, description, now_ns))
        .unwrap_or(Err(KeyError::NotFound))
}

/// Runs `change` on the usable key `serial`.
pub fn with_key<T>(
    serial: i32,
    now_ns: u64,
    change: impl FnOnce(&mut Key) -> Result<T, KeyError>,
) -> Result<T, KeyError> {
    change(TABLE.lock().usable_mut(serial, now_ns)?)
}

/// A copy of key `serial`, revoked or not (`describe` of a revoked key
/// fails, but unlinking works).
pub fn get(serial: i32, now_ns: u64) -> Result<Key, KeyError> {
    TABLE.lock().usable(serial, now_ns).cloned()
}

/// Links `serial` into `keyring`.
pub fn link(serial: i32, keyring: i32, now_ns: u64) -> Result<(), KeyError> {
    let mut table = TABLE.lock();
    table.usable(serial, now_ns)?;
    if table.usable(keyring, now_ns)?.kind != Kind::Keyring {
        return Err(KeyError::NotKeyring);
    }
    if table.contains(serial, keyring) {
        return Err(KeyError::Cycle);
    }
    let ring = table.usable_mut(keyring, now_ns)?;
    if !ring.links.contains(&serial) {
        ring.links.push(serial);
    }
    Ok(())
}

/// Unlinks `serial` from `keyring` (a revoked key may be unlinked).
pub fn unlink(serial: i32, keyring: i32, now_ns: u64) -> Result<(), KeyError> {
    let mut table = TABLE.lock();
    if !table.keys.contains_key(&serial) {
        return Err(KeyError::NotFound);
    }
    let ring = table.usable_mut(keyring, now_ns)?;
    if ring.kind != Kind::Keyring {
        return Err(KeyError::NotKeyring);
    }
    let before = ring.links.len();
    ring.links.retain(|&link| link != serial);
    if ring.links.len() == before {
        return Err(KeyError::NotLinked);
    }
    Ok(())
}

/// Removes key `serial` everywhere (`KEYCTL_INVALIDATE`).
pub fn invalidate(serial: i32, now_ns: u64) -> Result<(), KeyError> {
    let mut table = TABLE.lock();
    table.usable(serial, now_ns)?;
    table.keys.remove(&serial);
    for key in table.keys.values_mut() {
        key.links.retain(|&link| link != serial);
    }
    table.special.retain(|&(_, special)| special != serial);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_added_found_through_keyrings_and_updated_in_place() {
        let owner = (0, 0);
        let outer = add(
            special(Special::Process, owner, true).unwrap(),
            Kind::Keyring,
            "outer-test".into(),
            Vec::new(),
            owner,
            0,
        )
        .unwrap();
        let inner = add(outer, Kind::Keyring, "inner-test".into(), Vec::new(), owner, 0).unwrap();
        let key = add(inner, Kind::User, "secret-test".into(), b"one".to_vec(), owner, 0).unwrap();
        assert_eq!(search(&[outer], Kind::User, "secret-test", 0), Ok(key));
        assert_eq!(add(inner, Kind::User, "secret-test".into(), b"two".to_vec(), owner, 0), Ok(key));
        assert_eq!(get(key, 0).map(|key| key.payload), Ok(b"two".to_vec()));
        assert_eq!(link(outer, inner, 0), Err(KeyError::Cycle));
        assert_eq!(unlink(key, outer, 0), Err(KeyError::NotLinked));
        with_key(key, 0, |key| {
            key.is_revoked = true;
            Ok(())
        })
        .unwrap();
        assert_eq!(get(key, 0).map(|_| ()), Err(KeyError::Revoked));
        assert_eq!(search(&[outer], Kind::User, "secret-test", 0), Err(KeyError::Revoked));
        assert_eq!(unlink(key, inner, 0), Ok(()));
        with_key(inner, 0, |key| {
            key.expiry_ns = Some(10);
            Ok(())
        })
        .unwrap();
        assert_eq!(get(inner, 10).map(|_| ()), Err(KeyError::Expired));
        assert_eq!(invalidate(outer, 0), Ok(()));
        assert_eq!(get(outer, 0).map(|_| ()), Err(KeyError::NotFound));
    }
}
