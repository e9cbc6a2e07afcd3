use super::*;
use crate::credentials::Credentials;

fn file(permissions: u32, user: u32, group: u32) -> Metadata {
    let mut metadata = Metadata::new(5, FileType::Regular, permissions);
    metadata.owner_user = user;
    metadata.owner_group = group;
    metadata
}

#[test]
fn the_owner_group_and_others_get_their_bits() {
    let user = Credentials::of(1000, 100);
    assert_eq!(check(&user, &file(0o600, 1000, 0), READ | WRITE), Ok(()));
    assert_eq!(check(&user, &file(0o060, 1000, 100), READ), Err(FsError::AccessDenied), "owner bits win");
    assert_eq!(check(&user, &file(0o040, 0, 100), READ), Ok(()));
    assert_eq!(check(&user, &file(0o004, 0, 0), READ), Ok(()));
    assert_eq!(check(&user, &file(0o004, 0, 0), WRITE), Err(FsError::AccessDenied));
    let mut member = Credentials::of(1000, 100);
    member.groups = alloc::vec![7];
    assert_eq!(check(&member, &file(0o070, 0, 7), WRITE), Ok(()));
}

#[test]
fn root_overrides_except_execution_of_unexecutable_files() {
    let root = Credentials::root();
    assert_eq!(check(&root, &file(0o000, 1000, 1000), READ | WRITE), Ok(()));
    assert_eq!(check(&root, &file(0o644, 1000, 1000), EXECUTE), Err(FsError::AccessDenied));
    assert_eq!(check(&root, &file(0o001, 1000, 1000), EXECUTE), Ok(()));
    let directory = Metadata::new(6, FileType::Directory, 0o000);
    assert_eq!(check(&root, &directory, EXECUTE | WRITE), Ok(()));
}

#[test]
fn the_sticky_bit_protects_other_users_files() {
    let mut directory = Metadata::new(6, FileType::Directory, 0o1777);
    directory.owner_user = 0;
    let user = Credentials::of(1000, 100);
    assert_eq!(check_sticky(&user, &directory, &file(0o644, 1000, 100)), Ok(()));
    assert_eq!(check_sticky(&user, &directory, &file(0o666, 2000, 100)), Err(FsError::NotPermitted));
    assert_eq!(check_sticky(&Credentials::root(), &directory, &file(0o644, 2000, 100)), Ok(()));
}

#[test]
fn writes_clear_set_id_bits_without_fsetid() {
    let user = Credentials::of(1000, 100);
    assert_eq!(after_write(&user, &file(0o6755, 1000, 100)), Some(0o0755));
    assert_eq!(after_write(&user, &file(0o2644, 1000, 100)), None, "no group execute: mandatory locking bit");
    assert_eq!(after_write(&Credentials::root(), &file(0o6755, 1000, 100)), None);
}
