//! The 9P client against a fake server in memory: a tree read and written
//! through the VFS's node interface, many threads at once, and hostile
//! replies (short, wrong tag, sizes past `msize`, too much data), which
//! must be I/O errors and never panics.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use std::sync::Mutex;

use super::protocol::{Decoder, kind};
use super::{MESSAGE_BYTES_DEFAULT, mount};
use crate::device::{DeviceError, MessageChannel};
use crate::fake::FakeMachine;
use crate::vfs::{Caller, FileSystem, FileType, FsError, NewNode, Node, RenameMode};

/// How the fake server spoils its replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spoil {
    None,
    /// Replies to `Tread` with a tag other than the request's.
    WrongTag,
    /// Replies to `Tread` with three bytes.
    Short,
    /// Replies to `Tread` with a size field past what arrived.
    SizePastWritten,
    /// Replies to `Tread` claiming more data than was asked for.
    TooMuchData,
    /// Replies to `Tgetattr` with a truncated body.
    TruncatedAttributes,
    /// Replies to `Tread` with an `Rwrite`.
    WrongType,
}

#[derive(Debug, Clone)]
enum Object {
    Directory(BTreeMap<String, u64>),
    File(Vec<u8>),
    Symlink(String),
}

struct Server {
    objects: BTreeMap<u64, (Object, u32)>,
    next_path: u64,
    /// fid to object.
    fids: BTreeMap<u32, u64>,
    spoil: Spoil,
    message_bytes: u32,
}

struct FakeShare {
    server: Mutex<Server>,
}

fn reply(kind: u8, tag: u16, fields: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&((7 + fields.len()) as u32).to_le_bytes());
    bytes.push(kind);
    bytes.extend_from_slice(&tag.to_le_bytes());
    bytes.extend_from_slice(fields);
    bytes
}

fn error(tag: u16, code: u32) -> Vec<u8> {
    reply(kind::RLERROR, tag, &code.to_le_bytes())
}

fn qid(server: &Server, path: u64) -> Vec<u8> {
    let kind = match server.objects.get(&path).map(|(object, _)| object) {
        Some(Object::Directory(_)) => 0x80,
        Some(Object::Symlink(_)) => 0x02,
        _ => 0,
    };
    let mut bytes = vec![kind];
    bytes.extend_from_slice(&0u32.to_le_bytes());
    bytes.extend_from_slice(&path.to_le_bytes());
    bytes
}

fn string(text: &[u8]) -> Vec<u8> {
    let mut bytes = (text.len() as u16).to_le_bytes().to_vec();
    bytes.extend_from_slice(text);
    bytes
}

impl Server {
    fn new(spoil: Spoil) -> Self {
        let mut objects = BTreeMap::new();
        let mut root = BTreeMap::new();
        root.insert(String::from("hello"), 2);
        root.insert(String::from("link"), 3);
        objects.insert(1, (Object::Directory(root), 0o755));
        objects.insert(2, (Object::File(b"hello, guest\n".to_vec()), 0o644));
        objects.insert(3, (Object::Symlink(String::from("hello")), 0o777));
        Server { objects, next_path: 4, fids: BTreeMap::new(), spoil, message_bytes: 0 }
    }

    fn add(&mut self, directory: u64, name: &str, object: Object, mode: u32) -> Result<u64, u32> {
        let path = self.next_path;
        match self.objects.get_mut(&directory) {
            Some((Object::Directory(entries), _)) => {
                if entries.contains_key(name) {
                    return Err(17);
                }
                entries.insert(String::from(name), path);
            }
            _ => return Err(20),
        }
        self.next_path += 1;
        self.objects.insert(path, (object, mode));
        Ok(path)
    }

    fn answer(&mut self, request: &[u8]) -> Vec<u8> {
        let request_kind = request[4];
        let tag = u16::from_le_bytes([request[5], request[6]]);
        let mut fields = Decoder::new(&request[7..]);
        let result = self.handle(request_kind, tag, &mut fields);
        match result {
            Ok(bytes) => bytes,
            Err(code) => error(tag, code),
        }
    }

    fn object(&self, fid: u32) -> Result<u64, u32> {
        self.fids.get(&fid).copied().ok_or(9)
    }

    fn handle(&mut self, request_kind: u8, tag: u16, fields: &mut Decoder<'_>) -> Result<Vec<u8>, u32> {
        let bad = |_| 22u32;
        let answer = |fields: &[u8]| reply(request_kind + 1, tag, fields);
        Ok(match request_kind {
            kind::TVERSION => {
                let asked = fields.u32().map_err(bad)?;
                self.message_bytes = asked.min(64 * 1024);
                let mut bytes = self.message_bytes.to_le_bytes().to_vec();
                bytes.extend(string(b"9P2000.L"));
                answer(&bytes)
            }
            kind::TATTACH => {
                let fid = fields.u32().map_err(bad)?;
                self.fids.insert(fid, 1);
                answer(&qid(self, 1))
            }
            kind::TWALK => {
                let fid = fields.u32().map_err(bad)?;
                let new_fid = fields.u32().map_err(bad)?;
                let count = fields.u16().map_err(bad)?;
                let mut path = self.object(fid)?;
                let mut qids = Vec::new();
                for _ in 0..count {
                    let name =
                        String::from_utf8(fields.string().map_err(bad)?.to_vec()).map_err(|_| 22u32)?;
                    match self.objects.get(&path) {
                        Some((Object::Directory(entries), _)) => match entries.get(&name) {
                            Some(child) => path = *child,
                            None if qids.is_empty() => return Err(2),
                            None => break,
                        },
                        _ => return Err(20),
                    }
                    qids.push(qid(self, path));
                }
                if qids.len() == usize::from(count) {
                    self.fids.insert(new_fid, path);
                }
                let mut bytes = (qids.len() as u16).to_le_bytes().to_vec();
                for qid in qids {
                    bytes.extend(qid);
                }
                answer(&bytes)
            }
            kind::TGETATTR => {
                let path = self.object(fields.u32().map_err(bad)?)?;
                let (object, mode) = self.objects.get(&path).ok_or(2u32)?;
                let (type_bits, size) = match object {
                    Object::Directory(_) => (0o040000, 0),
                    Object::File(bytes) => (0o100000, bytes.len() as u64),
                    Object::Symlink(target) => (0o120000, target.len() as u64),
                };
                let mut bytes = 0x7ffu64.to_le_bytes().to_vec();
                bytes.extend(qid(self, path));
                bytes.extend((type_bits | mode).to_le_bytes());
                bytes.extend(1000u32.to_le_bytes());
                bytes.extend(1000u32.to_le_bytes());
                bytes.extend(1u64.to_le_bytes());
                bytes.extend(0u64.to_le_bytes());
                bytes.extend(size.to_le_bytes());
                bytes.extend(4096u64.to_le_bytes());
                bytes.extend(size.div_ceil(512).to_le_bytes());
                for time in [1_600_000_000u64, 5, 1_600_000_001, 6, 1_600_000_002, 7, 0, 0, 0, 0] {
                    bytes.extend(time.to_le_bytes());
                }
                if self.spoil == Spoil::TruncatedAttributes {
                    bytes.truncate(40);
                }
                answer(&bytes)
            }
            kind::TLOPEN => {
                let path = self.object(fields.u32().map_err(bad)?)?;
                let mut bytes = qid(self, path);
                bytes.extend(0u32.to_le_bytes());
                answer(&bytes)
            }
            kind::TLCREATE => {
                let fid = fields.u32().map_err(bad)?;
                let directory = self.object(fid)?;
                let name = String::from_utf8(fields.string().map_err(bad)?.to_vec()).map_err(|_| 22u32)?;
                let _flags = fields.u32().map_err(bad)?;
                let mode = fields.u32().map_err(bad)?;
                let path = self.add(directory, &name, Object::File(Vec::new()), mode)?;
                self.fids.insert(fid, path);
                let mut bytes = qid(self, path);
                bytes.extend(0u32.to_le_bytes());
                answer(&bytes)
            }
            kind::TMKDIR => {
                let directory = self.object(fields.u32().map_err(bad)?)?;
                let name = String::from_utf8(fields.string().map_err(bad)?.to_vec()).map_err(|_| 22u32)?;
                let mode = fields.u32().map_err(bad)?;
                let path = self.add(directory, &name, Object::Directory(BTreeMap::new()), mode)?;
                answer(&qid(self, path))
            }
            kind::TREAD => {
                let path = self.object(fields.u32().map_err(bad)?)?;
                let offset = fields.u64().map_err(bad)? as usize;
                let count = fields.u32().map_err(bad)? as usize;
                let Some((Object::File(contents), _)) = self.objects.get(&path) else { return Err(21) };
                let data = contents.get(offset.min(contents.len())..).unwrap_or(&[]);
                let data = &data[..data.len().min(count)];
                let mut bytes = (data.len() as u32).to_le_bytes().to_vec();
                bytes.extend_from_slice(data);
                match self.spoil {
                    Spoil::WrongTag => reply(kind::TREAD + 1, tag.wrapping_add(1), &bytes),
                    Spoil::Short => vec![3, 0, 0],
                    Spoil::SizePastWritten => {
                        let mut message = answer(&bytes);
                        let size = message.len() as u32 + 100;
                        message[..4].copy_from_slice(&size.to_le_bytes());
                        message
                    }
                    Spoil::TooMuchData => {
                        let mut more = ((count + 1) as u32).to_le_bytes().to_vec();
                        more.extend(vec![7u8; count + 1]);
                        answer(&more)
                    }
                    Spoil::WrongType => reply(kind::TWRITE + 1, tag, &0u32.to_le_bytes()),
                    _ => answer(&bytes),
                }
            }
            kind::TWRITE => {
                let path = self.object(fields.u32().map_err(bad)?)?;
                let offset = fields.u64().map_err(bad)? as usize;
                let count = fields.u32().map_err(bad)? as usize;
                let data = fields.bytes(count).map_err(bad)?;
                let Some((Object::File(contents), _)) = self.objects.get_mut(&path) else { return Err(21) };
                if contents.len() < offset + count {
                    contents.resize(offset + count, 0);
                }
                contents[offset..offset + count].copy_from_slice(data);
                answer(&(count as u32).to_le_bytes())
            }
            kind::TREADDIR => {
                let path = self.object(fields.u32().map_err(bad)?)?;
                let offset = fields.u64().map_err(bad)? as usize;
                let Some((Object::Directory(entries), _)) = self.objects.get(&path) else { return Err(20) };
                let mut data = Vec::new();
                // Two entries per reply, so that listings take several.
                for (index, (name, child)) in entries.iter().enumerate().skip(offset).take(2) {
                    data.extend(qid(self, *child));
                    data.extend(((index + 1) as u64).to_le_bytes());
                    data.push(8);
                    data.extend(string(name.as_bytes()));
                }
                let mut bytes = (data.len() as u32).to_le_bytes().to_vec();
                bytes.extend(data);
                answer(&bytes)
            }
            kind::TREADLINK => {
                let path = self.object(fields.u32().map_err(bad)?)?;
                let Some((Object::Symlink(target), _)) = self.objects.get(&path) else { return Err(22) };
                answer(&string(target.as_bytes()))
            }
            kind::TUNLINKAT => {
                let directory = self.object(fields.u32().map_err(bad)?)?;
                let name = String::from_utf8(fields.string().map_err(bad)?.to_vec()).map_err(|_| 22u32)?;
                let Some((Object::Directory(entries), _)) = self.objects.get_mut(&directory) else {
                    return Err(20);
                };
                entries.remove(&name).ok_or(2u32)?;
                answer(&[])
            }
            kind::TRENAMEAT => {
                let from = self.object(fields.u32().map_err(bad)?)?;
                let name = String::from_utf8(fields.string().map_err(bad)?.to_vec()).map_err(|_| 22u32)?;
                let to = self.object(fields.u32().map_err(bad)?)?;
                let new_name =
                    String::from_utf8(fields.string().map_err(bad)?.to_vec()).map_err(|_| 22u32)?;
                let Some((Object::Directory(entries), _)) = self.objects.get_mut(&from) else {
                    return Err(20);
                };
                let moved = entries.remove(&name).ok_or(2u32)?;
                let Some((Object::Directory(entries), _)) = self.objects.get_mut(&to) else { return Err(20) };
                entries.insert(new_name, moved);
                answer(&[])
            }
            kind::TCLUNK => {
                let fid = fields.u32().map_err(bad)?;
                self.fids.remove(&fid).ok_or(9u32)?;
                answer(&[])
            }
            kind::TFSYNC | kind::TSETATTR => answer(&[]),
            kind::TSTATFS => {
                let mut bytes = 0x0102_1997u32.to_le_bytes().to_vec();
                bytes.extend(4096u32.to_le_bytes());
                for value in [1000u64, 500, 400, 100, 50, 0] {
                    bytes.extend(value.to_le_bytes());
                }
                bytes.extend(255u32.to_le_bytes());
                answer(&bytes)
            }
            _ => return Err(95),
        })
    }
}

impl MessageChannel for FakeShare {
    fn tag(&self) -> &str {
        "share"
    }

    fn exchange(&self, request: &[&[u8]], reply: &mut [&mut [u8]]) -> Result<usize, DeviceError> {
        let request: Vec<u8> = request.concat();
        let answer = self.server.lock().expect("no test panicked").answer(&request);
        // As a device does: what does not fit is cut off.
        let capacity: usize = reply.iter().map(|part| part.len()).sum();
        let answer = &answer[..answer.len().min(capacity)];
        let mut from = 0;
        for part in reply.iter_mut() {
            let count = part.len().min(answer.len() - from);
            part[..count].copy_from_slice(&answer[from..from + count]);
            from += count;
        }
        Ok(answer.len())
    }
}

fn share(spoil: Spoil) -> Arc<FakeShare> {
    Arc::new(FakeShare { server: Mutex::new(Server::new(spoil)) })
}

fn read_all(node: &dyn Node, caller: &Caller<'_>) -> Result<Vec<u8>, FsError> {
    let mut buffer = vec![0u8; 256];
    let count = node.read_at(caller, 0, &mut buffer)?;
    buffer.truncate(count);
    Ok(buffer)
}

#[test]
fn a_share_reads_lists_and_changes() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let channel = share(Spoil::None);
    let filesystem = mount(channel.clone(), &caller, "").expect("mounted");
    // The server offered less than asked for.
    assert_eq!(filesystem.shared.client.message_bytes(), 64 * 1024);
    let root = filesystem.root();
    let hello = root.lookup(&caller, "hello").expect("hello");
    assert_eq!(read_all(&*hello, &caller).expect("read"), b"hello, guest\n");
    let metadata = hello.metadata(&caller).expect("metadata");
    assert_eq!(metadata.file_type, FileType::Regular);
    assert_eq!(metadata.permissions, 0o644);
    assert_eq!(metadata.size_bytes, 13);
    assert_eq!(metadata.owner_user, 1000);
    assert_eq!(metadata.modify_time_ns, 1_600_000_001_000_000_006);
    let link = root.lookup(&caller, "link").expect("link");
    assert_eq!(link.read_link(&caller).expect("target").text(), "hello");
    assert_eq!(root.lookup(&caller, "missing").err(), Some(FsError::NotFound));
    // The same file twice is the same node.
    let again = root.lookup(&caller, "hello").expect("hello again");
    assert!(Arc::ptr_eq(&hello, &again));

    let directory = root.create(&caller, "made", NewNode::Directory, 0o750).expect("mkdir");
    let file = directory.create(&caller, "data", NewNode::File, 0o600).expect("create");
    assert_eq!(root.create(&caller, "made", NewNode::Directory, 0o750).err(), Some(FsError::Exists));
    // Larger than one message: split into several writes and reads.
    let big: Vec<u8> = (0..200_000u32).map(|index| (index % 251) as u8).collect();
    assert_eq!(file.write_at(&caller, 0, &big).expect("write"), big.len());
    let mut back = vec![0u8; big.len()];
    assert_eq!(file.read_at(&caller, 0, &mut back).expect("read back"), big.len());
    assert_eq!(back, big);
    assert_eq!(file.metadata(&caller).expect("size").size_bytes, big.len() as u64);

    // Listings take several replies.
    for name in ["a", "b", "c"] {
        directory.create(&caller, name, NewNode::File, 0o644).expect("create");
    }
    let mut names = Vec::new();
    let mut offset = 0;
    while let Some(entry) = directory.read_directory(&caller, offset).expect("list") {
        names.push(entry.name);
        offset = entry.next_offset;
    }
    assert_eq!(names, ["a", "b", "c", "data"]);

    directory.rename(&caller, "a", &*root, "moved", RenameMode::Replace).expect("rename");
    assert!(root.lookup(&caller, "moved").is_ok());
    assert_eq!(directory.lookup(&caller, "a").err(), Some(FsError::NotFound));
    assert_eq!(
        directory.rename(&caller, "b", &*root, "moved", RenameMode::NoReplace).err(),
        Some(FsError::Exists)
    );
    directory.remove(&caller, "b", false).expect("unlink");
    assert_eq!(directory.lookup(&caller, "b").err(), Some(FsError::NotFound));
    assert_eq!(filesystem.statistics().blocks, 1000);
    assert_eq!(filesystem.statistics().magic, 0x0102_1997);
    file.sync(&caller).expect("fsync");

    // Every fid let go is clunked by the next call.
    drop((file, directory, hello, again, link));
    root.lookup(&caller, "moved").expect("one more call");
    let fids = channel.server.lock().expect("no test panicked").fids.len();
    assert!(fids <= 3, "{fids} fids still open");
}

#[test]
fn a_read_only_share_refuses_changes() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let filesystem = mount(share(Spoil::None), &caller, "ro,trans=virtio").expect("mounted");
    assert!(filesystem.is_read_only());
    let root = filesystem.root();
    assert_eq!(root.create(&caller, "new", NewNode::File, 0o644).err(), Some(FsError::ReadOnly));
    assert_eq!(root.remove(&caller, "hello", false).err(), Some(FsError::ReadOnly));
    let hello = root.lookup(&caller, "hello").expect("hello");
    assert_eq!(hello.write_at(&caller, 0, b"x").err(), Some(FsError::ReadOnly));
    assert_eq!(read_all(&*hello, &caller).expect("read"), b"hello, guest\n");
}

#[test]
fn unknown_options_are_refused() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    assert!(mount(share(Spoil::None), &caller, "frobnicate").is_err());
    assert!(mount(share(Spoil::None), &caller, "msize=12").is_err());
    assert!(mount(share(Spoil::None), &caller, &alloc::format!("msize={MESSAGE_BYTES_DEFAULT}")).is_ok());
}

#[test]
fn hostile_replies_are_io_errors() {
    for spoil in [Spoil::WrongTag, Spoil::Short, Spoil::SizePastWritten, Spoil::TooMuchData, Spoil::WrongType]
    {
        let machine = FakeMachine::new();
        let caller = Caller::kernel(&machine);
        let filesystem = mount(share(spoil), &caller, "").expect("mounted");
        let hello = filesystem.root().lookup(&caller, "hello").expect("hello");
        assert_eq!(read_all(&*hello, &caller).err(), Some(FsError::Io), "{spoil:?}");
    }
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    assert!(mount(share(Spoil::TruncatedAttributes), &caller, "").is_err());
}

#[test]
fn many_threads_share_one_client() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let filesystem = mount(share(Spoil::None), &caller, "").expect("mounted");
    let root = filesystem.root();
    std::thread::scope(|scope| {
        for index in 0..8u8 {
            let root = root.clone();
            let machine = &machine;
            scope.spawn(move || {
                let caller = Caller::kernel(machine);
                let name = alloc::format!("t{index}");
                let file = root.create(&caller, &name, NewNode::File, 0o644).expect("create");
                let bytes = vec![index; 100_000];
                assert_eq!(file.write_at(&caller, 0, &bytes).expect("write"), bytes.len());
                let mut back = vec![0u8; bytes.len()];
                assert_eq!(file.read_at(&caller, 0, &mut back).expect("read"), bytes.len());
                assert_eq!(back, bytes);
            });
        }
    });
}

/// A share whose server answers properly until `spoiled`, then with the
/// bytes a test gives, whatever the request.
struct ArbitraryShare {
    inner: FakeShare,
    spoiled: Mutex<Option<Vec<u8>>>,
}

impl MessageChannel for ArbitraryShare {
    fn tag(&self) -> &str {
        "share"
    }

    fn exchange(&self, request: &[&[u8]], reply: &mut [&mut [u8]]) -> Result<usize, DeviceError> {
        let Some(bytes) = self.spoiled.lock().expect("no test panicked").clone() else {
            return self.inner.exchange(request, reply);
        };
        let mut from = 0;
        for part in reply.iter_mut() {
            let count = part.len().min(bytes.len() - from);
            part[..count].copy_from_slice(&bytes[from..from + count]);
            from += count;
        }
        Ok(from)
    }
}

proptest::proptest! {
    /// Whatever the server answers, the client returns a value: no panic,
    /// no endless loop.
    #[test]
    fn arbitrary_replies_never_panic(
        reply in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
        tag_matches in proptest::prelude::any::<bool>(),
        kind_byte in proptest::prelude::any::<u8>(),
    ) {
        let machine = FakeMachine::new();
        let caller = Caller::kernel(&machine);
        let channel = Arc::new(ArbitraryShare {
            inner: FakeShare { server: Mutex::new(Server::new(Spoil::None)) },
            spoiled: Mutex::new(None),
        });
        let filesystem = mount(channel.clone(), &caller, "").expect("mounted");
        let root = filesystem.root();
        let hello = root.lookup(&caller, "hello").expect("hello");
        let mut bytes = reply.clone();
        if bytes.len() >= 7 {
            // Often a plausible header: the size right, the tag the
            // client's next one or not, any type.
            let size = bytes.len() as u32;
            bytes[..4].copy_from_slice(&size.to_le_bytes());
            bytes[4] = kind_byte;
            if !tag_matches {
                bytes[5] ^= 0xff;
            }
        }
        *channel.spoiled.lock().expect("no test panicked") = Some(bytes);
        let mut buffer = vec![0u8; 64];
        let _ = hello.read_at(&caller, 0, &mut buffer);
        let _ = hello.metadata(&caller);
        let _ = root.read_directory(&caller, 0);
        let _ = root.lookup(&caller, "other");
        let _ = root.create(&caller, "new", NewNode::File, 0o644);
        let _ = filesystem.statistics();
    }
}
