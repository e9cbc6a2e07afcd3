//! The variables every first process finds in its environment, as a
//! container runtime gives them: a program started by rosv sees what it
//! would see started by `docker run` from an image that sets none.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// The search path when the image and the command line set none (the
/// one container runtimes use).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Makes `environment` (`NAME=value` entries, from the image, then the
/// command line) what the program gets: a variable set twice keeps the
/// later value, in the place of the first, so that `rosv run -e` overrides
/// the image as `docker run -e` does; then the variables it lacks are
/// added (see [`complete`]).
pub fn prepare(entries: Vec<Vec<u8>>, uid: u32, passwd: impl FnOnce() -> Option<Vec<u8>>) -> Vec<Vec<u8>> {
    let mut environment: Vec<Vec<u8>> = Vec::with_capacity(entries.len() + 2);
    for entry in entries {
        let name = name_of(&entry);
        match environment.iter_mut().find(|earlier| name.is_some() && name_of(earlier) == name) {
            Some(earlier) => *earlier = entry,
            None => environment.push(entry),
        }
    }
    complete(&mut environment, uid, passwd);
    environment
}

/// The name of a `NAME=value` entry (none for an entry without `=`).
fn name_of(entry: &[u8]) -> Option<&[u8]> {
    entry.iter().position(|&byte| byte == b'=').map(|end| &entry[..end])
}

/// Adds to `environment` (`NAME=value` entries) the variables it lacks:
/// `PATH`, and `HOME` as the password file gives it for `uid` (`/` when
/// the file is missing or does not list the user). `passwd` reads
/// /etc/passwd, only when `HOME` is missing.
pub fn complete(environment: &mut Vec<Vec<u8>>, uid: u32, passwd: impl FnOnce() -> Option<Vec<u8>>) {
    if !has(environment, b"PATH") {
        environment.push(format!("PATH={DEFAULT_PATH}").into_bytes());
    }
    if !has(environment, b"HOME") {
        let home = passwd().and_then(|text| home_of(&text, uid)).unwrap_or_else(|| String::from("/"));
        environment.push(format!("HOME={home}").into_bytes());
    }
}

/// Whether an entry of `environment` names `name`.
fn has(environment: &[Vec<u8>], name: &[u8]) -> bool {
    environment
        .iter()
        .any(|entry| entry.len() > name.len() && entry.starts_with(name) && entry[name.len()] == b'=')
}

/// The home directory of `uid` in password-file `text`
/// (`name:password:uid:gid:gecos:home:shell` lines); the first line
/// with that uid wins, as getpwuid(3) reads it.
fn home_of(text: &[u8], uid: u32) -> Option<String> {
    text.split(|&byte| byte == b'\n').find_map(|line| {
        let fields: Vec<&[u8]> = line.split(|&byte| byte == b':').collect();
        let [_, _, user, _, _, home, ..] = fields.as_slice() else { return None };
        let user: u32 = core::str::from_utf8(user).ok()?.parse().ok()?;
        let home = core::str::from_utf8(home).ok()?;
        (user == uid && home.starts_with('/')).then(|| String::from(home))
    })
}

#[cfg(test)]
mod tests {
    use alloc::vec;

    use super::*;

    fn entries(environment: &[Vec<u8>]) -> Vec<&str> {
        environment.iter().map(|entry| core::str::from_utf8(entry).unwrap()).collect()
    }

    #[test]
    fn an_empty_environment_gets_a_search_path_and_a_home() {
        let mut environment = Vec::new();
        complete(&mut environment, 0, || None);
        assert_eq!(entries(&environment), [&*format!("PATH={DEFAULT_PATH}"), "HOME=/"]);
    }

    #[test]
    fn variables_already_set_are_kept() {
        let mut environment = vec![b"PATH=/opt/bin".to_vec(), b"HOME=/srv".to_vec(), b"PATHS=x".to_vec()];
        complete(&mut environment, 0, || Some(b"root:x:0:0:root:/root:/bin/sh\n".to_vec()));
        assert_eq!(entries(&environment), ["PATH=/opt/bin", "HOME=/srv", "PATHS=x"]);
    }

    #[test]
    fn a_later_value_replaces_an_earlier_one_in_its_place() {
        let given = vec![b"A=1".to_vec(), b"B=2".to_vec(), b"odd".to_vec(), b"A=3".to_vec(), b"odd".to_vec()];
        let environment = prepare(given, 0, || None);
        assert_eq!(entries(&environment)[..4], ["A=3", "B=2", "odd", "odd"]);
        assert_eq!(environment.len(), 6);
    }

    #[test]
    fn home_comes_from_the_password_file() {
        let passwd = b"root:x:0:0:root:/root:/bin/sh\nbroken line\npostgres:x:105:110::/var/lib/postgresql:/bin/bash\n";
        let mut environment = vec![b"PATHS=x".to_vec(), b"HOMEDIR=y".to_vec()];
        complete(&mut environment, 105, || Some(passwd.to_vec()));
        assert_eq!(entries(&environment)[3], "HOME=/var/lib/postgresql");
        let mut environment = Vec::new();
        complete(&mut environment, 0, || Some(passwd.to_vec()));
        assert_eq!(entries(&environment)[1], "HOME=/root");
        let mut environment = Vec::new();
        complete(&mut environment, 1000, || Some(passwd.to_vec()));
        assert_eq!(entries(&environment)[1], "HOME=/");
    }
}
