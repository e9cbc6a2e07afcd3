use super::*;
use crate::fake::FakeMachine;
use crate::fs::testing;

#[test]
fn threads_sharing_a_description_never_write_the_same_bytes() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let vfs = testing::standard(&machine);
    let file = vfs.open(&caller, &vfs.root(), "/tmp/log", flags::O_CREAT | flags::O_RDWR, 0o644).unwrap();
    std::thread::scope(|scope| {
        for writer in 0..4u8 {
            let (file, machine) = (&file, &machine);
            scope.spawn(move || {
                let caller = Caller::kernel(machine);
                for _ in 0..500 {
                    assert_eq!(file.write(&caller, &[b'a' + writer; 10]), Ok(10));
                }
            });
        }
    });
    assert_eq!(file.offset(), 20_000);
    let contents = vfs.read_file(&caller, "/tmp/log").unwrap();
    assert_eq!(contents.len(), 20_000);
    for record in contents.chunks(10) {
        assert!(record.iter().all(|&byte| byte == record[0]), "records interleaved: {record:?}");
    }
}

#[test]
fn access_modes_and_status_flags_are_enforced() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let vfs = testing::standard(&machine);
    let root = vfs.root();
    let file = vfs
        .open(&caller, &root, "/tmp/file", flags::O_CREAT | flags::O_WRONLY | flags::O_CLOEXEC, 0o600)
        .unwrap();
    assert_eq!(file.status_flags(), flags::O_WRONLY);
    let mut buffer = [0u8; 4];
    assert_eq!(file.read(&caller, &mut buffer), Err(FsError::BadDescriptor));
    file.set_status_flags(flags::O_APPEND | flags::O_RDWR | flags::O_NONBLOCK);
    assert_eq!(
        file.status_flags(),
        flags::O_WRONLY | flags::O_APPEND | flags::O_NONBLOCK,
        "the access mode stays"
    );
    assert_eq!(file.write(&caller, b"abc"), Ok(3));
    assert_eq!(file.write_at(&caller, 0, b"d"), Ok(1), "pwrite with O_APPEND appends");
    assert_eq!(file.seek(&caller, 0, whence::SEEK_END), Ok(4));
    assert_eq!(file.seek(&caller, 0, whence::SEEK_DATA), Ok(0));
    assert_eq!(file.seek(&caller, 1, whence::SEEK_HOLE), Ok(4));
    assert_eq!(file.seek(&caller, 4, whence::SEEK_DATA), Err(FsError::NoSuchPosition));
    let directory = vfs.open(&caller, &root, "/tmp", flags::O_RDONLY, 0).unwrap();
    assert_eq!(directory.seek(&caller, 0, whence::SEEK_END), Err(FsError::InvalidArgument));
    let path_only = vfs.open(&caller, &root, "/tmp/file", flags::O_PATH | flags::O_RDWR, 0).unwrap();
    assert!(!path_only.is_readable() && !path_only.is_writable());
    assert_eq!(path_only.seek(&caller, 0, whence::SEEK_SET), Err(FsError::BadDescriptor));
}

#[test]
fn pipes_count_their_changes_and_wake_their_waiters() {
    use crate::fake::FakeThread;
    use crate::vfs::Pipe;
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let (reader, writer) = Pipe::open();
    let reader = OpenFile::new(FileObject::Pipe(reader), flags::O_RDONLY);
    let writer = OpenFile::new(FileObject::Pipe(writer), flags::O_WRONLY);
    assert!(reader.is_pollable());
    assert_eq!(reader.poll(), 0);
    assert_eq!(writer.poll(), events::POLLOUT | events::POLLWRNORM);
    let waiter = Arc::new(FakeThread::default());
    let thread: Arc<dyn ThreadControl> = waiter.clone();
    reader.add_waiter(&thread);
    let before = reader.generation();
    assert_eq!(writer.write(&caller, b"x"), Ok(1));
    assert!(reader.generation() > before, "a write is a change");
    assert_eq!(waiter.wakes.load(Ordering::Relaxed), 1);
    assert_eq!(reader.poll(), events::POLLIN | events::POLLRDNORM);
    // The wake-up took the waiter off the list: the next change wakes
    // only threads that asked again.
    drop(writer);
    assert_eq!(waiter.wakes.load(Ordering::Relaxed), 1);
    assert_eq!(reader.poll() & events::POLLHUP, events::POLLHUP);
    reader.add_waiter(&thread);
    reader.remove_waiter(&thread);
    assert!(reader.pipe_end().is_some_and(|end| end.pipe().waiters().is_empty()));
}

#[test]
fn regular_files_and_directories_cannot_be_watched() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let vfs = testing::standard(&machine);
    let root = vfs.root();
    let file = vfs.open(&caller, &root, "/tmp/plain", flags::O_CREAT | flags::O_RDWR, 0o600).unwrap();
    let directory = vfs.open(&caller, &root, "/tmp", flags::O_RDONLY, 0).unwrap();
    let console = vfs.open(&caller, &root, "/dev/console", flags::O_RDWR, 0).unwrap();
    assert!(!file.is_pollable() && !directory.is_pollable());
    assert!(console.is_pollable());
    assert_eq!(file.generation(), 0, "nodes never change their readiness");
}
