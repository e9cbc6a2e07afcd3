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
