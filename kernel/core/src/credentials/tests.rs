use super::*;

#[test]
fn root_setuid_changes_every_id_and_drops_capabilities() {
    let mut credentials = Credentials::root();
    credentials.set_user(1000).expect("root may take any user id");
    assert_eq!(
        (
            credentials.real_user,
            credentials.effective_user,
            credentials.saved_user,
            credentials.filesystem_user
        ),
        (1000, 1000, 1000, 1000)
    );
    assert_eq!(credentials.capabilities.effective, 0);
    assert_eq!(credentials.capabilities.permitted, 0);
    assert_eq!(credentials.set_user(0), Err(CredentialsError::NotPermitted));
}

#[test]
fn a_user_switches_between_its_real_and_saved_ids() {
    let mut credentials = Credentials::root();
    credentials.set_user_ids(1000, 2000, 3000).expect("root may set any ids");
    credentials.set_user(3000).expect("the saved id is allowed");
    assert_eq!(
        (credentials.real_user, credentials.effective_user, credentials.saved_user),
        (1000, 3000, 3000)
    );
    assert_eq!(credentials.set_user(2000), Err(CredentialsError::NotPermitted));
    assert_eq!(credentials.set_user(UNCHANGED), Err(CredentialsError::InvalidArgument));
}

#[test]
fn keeping_capabilities_keeps_the_permitted_set_only() {
    let mut credentials = Credentials::root();
    credentials.keeps_capabilities = true;
    credentials.set_user_ids(1000, 1000, 1000).expect("root may set any ids");
    assert_eq!(credentials.capabilities.permitted, ALL_CAPABILITIES);
    assert_eq!(credentials.capabilities.effective, 0);
}

#[test]
fn an_effective_root_regains_its_capabilities() {
    let mut credentials = Credentials::root();
    credentials.set_real_effective_user(UNCHANGED, 1000).expect("root may set its effective id");
    assert_eq!(credentials.saved_user, 1000, "an effective id other than the real one is saved");
    assert!(!credentials.has_capability(capability::DAC_OVERRIDE));
    credentials.set_user_ids(UNCHANGED, 0, UNCHANGED).expect("the real id is 0");
    assert!(credentials.has_capability(capability::DAC_OVERRIDE));
}

#[test]
fn setreuid_saves_only_when_linux_does() {
    let mut credentials = Credentials::of(1000, 1000);
    credentials.saved_user = 2000;
    credentials.set_real_effective_user(UNCHANGED, 1000).expect("own real id");
    assert_eq!(credentials.saved_user, 2000);
    credentials.set_real_effective_user(UNCHANGED, 2000).expect("own saved id");
    assert_eq!(credentials.saved_user, 2000);
    assert_eq!(credentials.set_real_effective_user(3000, UNCHANGED), Err(CredentialsError::NotPermitted));
}

#[test]
fn the_filesystem_user_drops_filesystem_capabilities() {
    let mut credentials = Credentials::root();
    assert_eq!(credentials.set_filesystem_user(1000), 0);
    assert!(!credentials.has_capability(capability::DAC_OVERRIDE));
    assert!(credentials.has_capability(capability::SETUID));
    assert_eq!(credentials.set_filesystem_user(0), 1000);
    assert!(credentials.has_capability(capability::DAC_OVERRIDE));
    let mut user = Credentials::of(1000, 1000);
    assert_eq!(user.set_filesystem_user(0), 1000);
    assert_eq!(user.filesystem_user, 1000, "a user cannot take another id");
}

#[test]
fn groups_need_the_capability_and_are_sorted() {
    let mut credentials = Credentials::root();
    credentials.set_groups(alloc::vec![30, 10, 20]).expect("root may set groups");
    assert_eq!(credentials.groups, [10, 20, 30]);
    assert!(credentials.is_in_group(20));
    credentials.set_group_ids(5, 5, 5).expect("root may set group ids");
    credentials.set_user(7).expect("root may set user ids");
    assert_eq!(credentials.set_groups(alloc::vec![1]), Err(CredentialsError::NotPermitted));
    assert_eq!(credentials.set_group(6), Err(CredentialsError::NotPermitted));
    credentials.set_group(5).expect("own group");
}

#[test]
fn capset_only_narrows() {
    let mut credentials = Credentials::root();
    let without_chown = ALL_CAPABILITIES & !1;
    credentials.set_capabilities(0, without_chown, 0).expect("narrowing is allowed");
    assert!(!credentials.has_capability(capability::CHOWN));
    assert_eq!(credentials.set_capabilities(0, ALL_CAPABILITIES, 0), Err(CredentialsError::NotPermitted));
    assert_eq!(credentials.set_capabilities(1, without_chown, 0), Err(CredentialsError::NotPermitted));
}
