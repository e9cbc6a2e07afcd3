use super::*;
use crate::fake::FakeMachine;

const KEY: LockKey = (1, 7);
const FIRST: Owner = Owner::Process(1);
const SECOND: Owner = Owner::Description(0x1000);

fn lock(owner: Owner, kind: LockKind, start: u64, end: u64) -> RecordLock {
    RecordLock { owner, kind, start, end }
}

#[test]
fn shared_locks_coexist_and_exclusive_ones_conflict() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let table = LockTable::default();
    assert_eq!(table.set_record(&caller, KEY, lock(FIRST, LockKind::Shared, 0, 9), false, false), Ok(()));
    assert_eq!(table.set_record(&caller, KEY, lock(SECOND, LockKind::Shared, 5, 20), false, false), Ok(()));
    let wanted = lock(SECOND, LockKind::Exclusive, 8, 8);
    assert_eq!(table.conflict(KEY, &wanted), Some(lock(FIRST, LockKind::Shared, 0, 9)));
    assert_eq!(table.set_record(&caller, KEY, wanted, false, false), Err(FsError::WouldBlock));
    // Past the first owner's range, and on another file, nothing conflicts.
    assert_eq!(table.conflict(KEY, &lock(SECOND, LockKind::Exclusive, 10, 30)), None);
    assert_eq!(table.conflict((1, 8), &wanted), None);
}

#[test]
fn an_owner_splits_and_merges_its_own_locks() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let table = LockTable::default();
    table.set_record(&caller, KEY, lock(FIRST, LockKind::Exclusive, 0, u64::MAX), false, false).unwrap();
    // Unlocking the middle leaves two pieces.
    table.set_record(&caller, KEY, lock(FIRST, LockKind::Exclusive, 10, 19), true, false).unwrap();
    let probe = |start, end| table.conflict(KEY, &lock(SECOND, LockKind::Shared, start, end));
    assert_eq!(probe(10, 19), None);
    assert_eq!(probe(0, 10), Some(lock(FIRST, LockKind::Exclusive, 0, 9)));
    assert_eq!(probe(15, 25), Some(lock(FIRST, LockKind::Exclusive, 20, u64::MAX)));
    // Locking the gap again joins them into one.
    table.set_record(&caller, KEY, lock(FIRST, LockKind::Exclusive, 10, 19), false, false).unwrap();
    assert_eq!(probe(5, 5), Some(lock(FIRST, LockKind::Exclusive, 0, u64::MAX)));
    // A shared lock over part of an exclusive one changes that part only.
    table.set_record(&caller, KEY, lock(FIRST, LockKind::Shared, 0, 4), false, false).unwrap();
    assert_eq!(probe(0, 4), None);
    assert_eq!(probe(0, 5), Some(lock(FIRST, LockKind::Exclusive, 5, u64::MAX)));
}

#[test]
fn releases_end_an_owners_or_a_descriptions_locks() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let table = LockTable::default();
    table.set_record(&caller, KEY, lock(FIRST, LockKind::Exclusive, 0, 0), false, false).unwrap();
    table.set_record(&caller, KEY, lock(SECOND, LockKind::Exclusive, 1, 1), false, false).unwrap();
    table.release_owner(KEY, FIRST);
    assert_eq!(table.conflict(KEY, &lock(SECOND, LockKind::Exclusive, 0, 0)), None);
    assert!(table.conflict(KEY, &lock(FIRST, LockKind::Exclusive, 1, 1)).is_some());
    table.release_description(KEY, 0x1000);
    assert_eq!(table.conflict(KEY, &lock(FIRST, LockKind::Exclusive, 0, 9)), None);
    assert!(table.files.lock().is_empty(), "no entry is left for a file without locks");
}

#[test]
fn whole_file_locks_conflict_between_descriptions() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let table = LockTable::default();
    assert_eq!(table.set_whole(&caller, KEY, 1, Some(LockKind::Shared), false), Ok(()));
    assert_eq!(table.set_whole(&caller, KEY, 2, Some(LockKind::Shared), false), Ok(()));
    assert_eq!(table.set_whole(&caller, KEY, 2, Some(LockKind::Exclusive), false), Err(FsError::WouldBlock));
    // The failed conversion gave up description 2's shared lock.
    assert_eq!(table.set_whole(&caller, KEY, 1, Some(LockKind::Exclusive), false), Ok(()));
    assert_eq!(table.set_whole(&caller, KEY, 2, Some(LockKind::Shared), false), Err(FsError::WouldBlock));
    assert_eq!(table.set_whole(&caller, KEY, 1, None, false), Ok(()));
    assert_eq!(table.set_whole(&caller, KEY, 2, Some(LockKind::Exclusive), false), Ok(()));
    // Record locks are separate.
    assert_eq!(table.set_record(&caller, KEY, lock(FIRST, LockKind::Exclusive, 0, 9), false, false), Ok(()));
}

#[test]
fn the_conflict_reported_is_the_one_that_starts_first() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let table = LockTable::default();
    table.set_record(&caller, KEY, lock(FIRST, LockKind::Exclusive, 10, 14), false, false).unwrap();
    table.set_record(&caller, KEY, lock(FIRST, LockKind::Shared, 5, 9), false, false).unwrap();
    let whole = lock(SECOND, LockKind::Exclusive, 0, u64::MAX);
    assert_eq!(table.conflict(KEY, &whole), Some(lock(FIRST, LockKind::Shared, 5, 9)));
    assert_eq!(
        table.conflict(KEY, &lock(SECOND, LockKind::Exclusive, 10, u64::MAX)),
        Some(lock(FIRST, LockKind::Exclusive, 10, 14))
    );
}

#[test]
fn waiting_in_a_cycle_fails_with_edeadlk() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let table = LockTable::default();
    let other = Owner::Process(2);
    table.set_record(&caller, KEY, lock(FIRST, LockKind::Exclusive, 0, 0), false, false).unwrap();
    table.set_record(&caller, KEY, lock(other, LockKind::Exclusive, 1, 1), false, false).unwrap();
    // Process 2 waits for byte 0, which process 1 holds.
    table.blocked.lock().insert(2, (KEY, lock(other, LockKind::Exclusive, 0, 0)));
    let wanted = lock(FIRST, LockKind::Exclusive, 1, 1);
    assert_eq!(
        table.set_record(&caller, KEY, wanted, false, true),
        Err(FsError::Errno(crate::errno::Errno::EDEADLK))
    );
    assert!(table.blocked.lock().get(&1).is_none());
    // Without waiting, it is the usual EAGAIN.
    assert_eq!(table.set_record(&caller, KEY, wanted, false, false), Err(FsError::WouldBlock));
}
