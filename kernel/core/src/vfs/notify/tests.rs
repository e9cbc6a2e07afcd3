use super::*;
use crate::fake::FakeMachine;

/// Reads every queued event as (watch, mask, cookie, name).
fn drain(instance: &Inotify, caller: &Caller<'_>) -> Vec<(i32, u32, u32, String)> {
    let mut buffer = [0u8; 4096];
    let Ok(length) = instance.read(caller, &mut buffer, true) else {
        return Vec::new();
    };
    let mut events = Vec::new();
    let mut at = 0;
    while at < length {
        let word =
            |offset: usize| u32::from_le_bytes(buffer[at + offset..at + offset + 4].try_into().unwrap());
        let name_length = word(12) as usize;
        let name = &buffer[at + 16..at + 16 + name_length];
        let name = String::from_utf8(name.iter().copied().take_while(|&byte| byte != 0).collect()).unwrap();
        events.push((word(0) as i32, word(4), word(8), name));
        at += 16 + name_length;
    }
    events
}

#[test]
fn watches_see_the_events_they_ask_for() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let instance = Inotify::new();
    let directory = (90, 1);
    let watch = instance.add_watch(directory, mask::CREATE | mask::DELETE).unwrap();
    notify(directory, mask::CREATE, Some("new"), 0);
    notify(directory, mask::MODIFY, Some("new"), 0);
    notify((90, 2), mask::CREATE, Some("elsewhere"), 0);
    notify(directory, mask::DELETE | mask::ISDIR, Some("old"), 0);
    assert_eq!(
        drain(&instance, &caller),
        [(watch, mask::CREATE, 0, "new".into()), (watch, mask::DELETE | mask::ISDIR, 0, "old".into())]
    );
    // Adding again replaces the mask, or adds to it with IN_MASK_ADD.
    assert_eq!(instance.add_watch(directory, mask::MODIFY), Ok(watch));
    assert_eq!(instance.add_watch(directory, mask::CREATE | mask::MASK_ADD), Ok(watch));
    assert_eq!(instance.add_watch(directory, mask::CREATE | mask::MASK_CREATE), Err(FsError::Exists));
    notify(directory, mask::MODIFY, Some("a"), 0);
    notify(directory, mask::DELETE, Some("a"), 0);
    notify(directory, mask::CREATE, Some("a"), 0);
    let masks: Vec<u32> = drain(&instance, &caller).iter().map(|event| event.1).collect();
    assert_eq!(masks, [mask::MODIFY, mask::CREATE]);
    assert_eq!(instance.remove_watch(watch), Ok(()));
    assert_eq!(drain(&instance, &caller), [(watch, mask::IGNORED, 0, String::new())]);
    assert_eq!(instance.remove_watch(watch), Err(FsError::InvalidArgument));
}

#[test]
fn one_shot_watches_end_after_one_event_and_records_need_room() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let instance = Inotify::new();
    let file = (91, 5);
    let watch = instance.add_watch(file, mask::MODIFY | mask::ONESHOT).unwrap();
    notify(file, mask::MODIFY, None, 0);
    notify(file, mask::MODIFY, None, 7);
    let mut small = [0u8; 8];
    assert_eq!(instance.read(&caller, &mut small, true), Err(FsError::InvalidArgument));
    assert_eq!(
        drain(&instance, &caller),
        [(watch, mask::MODIFY, 0, String::new()), (watch, mask::IGNORED, 0, String::new())]
    );
    assert_eq!(instance.read(&caller, &mut small, true), Err(FsError::WouldBlock));
}

#[test]
fn a_deleted_file_ends_its_watches() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let instance = Inotify::new();
    let file = (92, 9);
    let watch = instance.add_watch(file, mask::DELETE_SELF).unwrap();
    forget(file);
    assert_eq!(
        drain(&instance, &caller),
        [(watch, mask::DELETE_SELF, 0, String::new()), (watch, mask::IGNORED, 0, String::new())]
    );
    drop(instance);
    assert!(REGISTRY.lock().get(&file).is_none());
}
