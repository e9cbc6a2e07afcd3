//! What a NoCloud disk asks of the machine, from its `meta-data`
//! (`local-hostname`) and its `#cloud-config` `user-data`: `hostname`
//! (or `fqdn`), `environment` (a mapping of variables for the
//! application, rosv's own key), `write_files` (`path`, `content`,
//! `encoding` b64 or text, `permissions`) and `runcmd` (each a list of
//! words, or a line for `/bin/sh -c`), run before the application.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use crate::Error;
use crate::yaml::{self, Value};

/// A file to write before the application starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteFile {
    /// Its absolute path.
    pub path: String,
    /// Its contents.
    pub contents: Vec<u8>,
    /// Its permission bits.
    pub permissions: u32,
}

/// What the disk asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// The host name.
    pub hostname: Option<String>,
    /// Environment variables for the application.
    pub environment: Vec<(String, String)>,
    /// Files to write, in order.
    pub files: Vec<WriteFile>,
    /// Commands to run before the application's, in order.
    pub commands: Vec<Vec<String>>,
}

fn bad(file: &'static str, what: String) -> Error {
    Error::Settings { file, what }
}

impl Settings {
    /// Reads the two files' texts (either may be empty).
    pub fn parse(meta_data: &str, user_data: &str) -> Result<Self, Error> {
        let meta = yaml::parse(meta_data).map_err(|error| bad("meta-data", error.to_string()))?;
        let mut settings = Settings {
            hostname: meta.get("local-hostname").and_then(Value::as_text).map(str::to_string),
            ..Settings::default()
        };
        let first_line = user_data.lines().next().unwrap_or("").trim();
        if user_data.trim().is_empty() {
            return Ok(settings);
        }
        if first_line != "#cloud-config" {
            return Err(bad(
                "user-data",
                "only #cloud-config user-data is read; start it with that line".into(),
            ));
        }
        let user = yaml::parse(user_data).map_err(|error| bad("user-data", error.to_string()))?;
        if let Some(name) = user.get("hostname").or_else(|| user.get("fqdn")).and_then(Value::as_text) {
            settings.hostname = Some(name.to_string());
        }
        match user.get("environment") {
            None => {}
            Some(Value::Map(entries)) => {
                for (name, value) in entries {
                    let value = value
                        .as_text()
                        .ok_or_else(|| bad("user-data", format!("environment: {name} is not text")))?;
                    settings.environment.push((name.clone(), value.to_string()));
                }
            }
            Some(_) => return Err(bad("user-data", "environment is not a mapping of NAME: value".into())),
        }
        for entry in list(&user, "write_files")? {
            settings.files.push(write_file(entry)?);
        }
        for entry in list(&user, "runcmd")? {
            let command = match entry {
                Value::Scalar(line) => vec!["/bin/sh".to_string(), "-c".to_string(), line.clone()],
                Value::List(words) => words
                    .iter()
                    .map(|word| word.as_text().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| bad("user-data", "a runcmd entry holds more than words".into()))?,
                Value::Map(_) => return Err(bad("user-data", "a runcmd entry is a mapping".into())),
            };
            if !command.is_empty() {
                settings.commands.push(command);
            }
        }
        Ok(settings)
    }
}

/// The sequence under `key`, empty if absent.
fn list<'a>(document: &'a Value, key: &str) -> Result<&'a [Value], Error> {
    match document.get(key) {
        None => Ok(&[]),
        Some(Value::List(items)) => Ok(items),
        Some(Value::Scalar(text)) if text.is_empty() => Ok(&[]),
        Some(_) => Err(bad("user-data", format!("{key} is not a list"))),
    }
}

fn write_file(entry: &Value) -> Result<WriteFile, Error> {
    let text = |key: &str| entry.get(key).and_then(Value::as_text);
    let path = text("path").ok_or_else(|| bad("user-data", "a write_files entry has no path".into()))?;
    if !path.starts_with('/') {
        return Err(bad("user-data", format!("write_files: {path} is not an absolute path")));
    }
    let content = text("content").unwrap_or("");
    let contents = match text("encoding").unwrap_or("text") {
        "b64" | "base64" => {
            base64(content).ok_or_else(|| bad("user-data", format!("write_files: {path}: bad base64")))?
        }
        "text" | "" => content.as_bytes().to_vec(),
        other => {
            return Err(bad(
                "user-data",
                format!("write_files: {path}: encoding {other} is not read; use b64 or text"),
            ));
        }
    };
    let permissions = match text("permissions") {
        None => 0o644,
        Some(octal) => u32::from_str_radix(octal.trim_start_matches("0o"), 8)
            .ok()
            .filter(|bits| *bits <= 0o7777)
            .ok_or_else(|| {
                bad("user-data", format!("write_files: {path}: permissions {octal} are not octal"))
            })?,
    };
    Ok(WriteFile { path: path.to_string(), contents, permissions })
}

/// Decodes standard base64 (RFC 4648 §4), whitespace ignored.
fn base64(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut buffer = 0u32;
    let mut bits = 0;
    for byte in text.bytes().filter(|byte| !byte.is_ascii_whitespace()) {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        buffer = (buffer << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_data_overrides_meta_data_and_fills_the_rest() {
        let settings = Settings::parse(
            "instance-id: one\nlocal-hostname: from-meta\n",
            "#cloud-config\nhostname: appliance\nenvironment:\n  GREETING: hello\n\
             write_files:\n  - path: /tmp/a\n    content: aGk=\n    encoding: b64\n    permissions: '0600'\n\
             runcmd:\n  - [/bin/true, x]\n  - echo hi\n",
        )
        .unwrap();
        assert_eq!(settings.hostname.as_deref(), Some("appliance"));
        assert_eq!(settings.environment, [("GREETING".to_string(), "hello".to_string())]);
        assert_eq!(
            settings.files,
            [WriteFile { path: "/tmp/a".into(), contents: b"hi".to_vec(), permissions: 0o600 }]
        );
        assert_eq!(settings.commands[0], ["/bin/true", "x"]);
        assert_eq!(settings.commands[1], ["/bin/sh", "-c", "echo hi"]);
        let only_meta = Settings::parse("local-hostname: from-meta\n", "").unwrap();
        assert_eq!(only_meta.hostname.as_deref(), Some("from-meta"));
    }

    #[test]
    fn wrong_user_data_is_named() {
        let error = Settings::parse("", "#!/bin/sh\necho\n").unwrap_err();
        assert!(matches!(error, Error::Settings { file: "user-data", .. }));
        let error = Settings::parse("", "#cloud-config\nwrite_files:\n  - content: x\n").unwrap_err();
        assert!(format!("{error}").contains("no path"), "{error}");
        let error = Settings::parse("", "#cloud-config\nwrite_files:\n  - path: /a\n    permissions: '9'\n")
            .unwrap_err();
        assert!(format!("{error}").contains("not octal"), "{error}");
        assert_eq!(base64("aGVsbG8="), Some(b"hello".to_vec()));
        assert_eq!(base64("a*"), None);
    }
}
