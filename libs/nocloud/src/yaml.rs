//! The subset of YAML that cloud-config files use: block mappings and
//! sequences by indentation, `- key: value` items, plain, single- and
//! double-quoted scalars, `[a, b]` flow sequences of scalars, and `|`,
//! `|-` and `>` block scalars. Anchors, tags and flow mappings are not
//! read.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// A YAML node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A scalar, as text.
    Scalar(String),
    /// A sequence.
    List(Vec<Value>),
    /// A mapping, in the file's order.
    Map(Vec<(String, Value)>),
}

impl Value {
    /// The value of `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(entries) => entries.iter().find(|(name, _)| name == key).map(|(_, value)| value),
            _ => None,
        }
    }

    /// The text of a scalar.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Scalar(text) => Some(text),
            _ => None,
        }
    }
}

/// Why a document cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    /// The line, from 1.
    pub line: usize,
    /// What is wrong.
    pub what: &'static str,
}

impl core::fmt::Display for YamlError {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(formatter, "line {}: {}", self.line, self.what)
    }
}

/// One line: its indentation and its text after it.
#[derive(Debug, Clone)]
struct Line {
    number: usize,
    indent: usize,
    text: String,
}

/// Parses a document; an empty one is an empty mapping.
pub fn parse(text: &str) -> Result<Value, YamlError> {
    let raw: Vec<&str> = text.lines().collect();
    let mut parser = Parser { raw: &raw, lines: Vec::new(), position: 0 };
    for (index, line) in raw.iter().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed == "---" {
            continue;
        }
        if line.starts_with('\t') {
            return Err(YamlError { line: index + 1, what: "tabs cannot indent YAML" });
        }
        parser.lines.push(Line {
            number: index + 1,
            indent: line.len() - trimmed.len(),
            text: trimmed.to_string(),
        });
    }
    match parser.lines.first().map(|line| line.indent) {
        None => Ok(Value::Map(Vec::new())),
        Some(indent) => {
            let value = parser.block(indent)?;
            match parser.lines.get(parser.position) {
                Some(line) => {
                    Err(YamlError { line: line.number, what: "this line's indentation fits no block" })
                }
                None => Ok(value),
            }
        }
    }
}

struct Parser<'a> {
    raw: &'a [&'a str],
    lines: Vec<Line>,
    position: usize,
}

impl Parser<'_> {
    /// The block whose lines are indented by `indent`.
    fn block(&mut self, indent: usize) -> Result<Value, YamlError> {
        let Some(first) = self.lines.get(self.position) else {
            return Ok(Value::Scalar(String::new()));
        };
        if first.text == "-" || first.text.starts_with("- ") { self.list(indent) } else { self.map(indent) }
    }

    fn list(&mut self, indent: usize) -> Result<Value, YamlError> {
        let mut items = Vec::new();
        while let Some(line) = self.lines.get(self.position).cloned() {
            if line.indent != indent || !(line.text == "-" || line.text.starts_with("- ")) {
                break;
            }
            let rest = line.text[1..].trim_start();
            if rest.is_empty() {
                self.position += 1;
                items.push(self.nested(indent, line.number)?);
            } else if starts_block(rest) {
                // `- key: value` or `- - x`: the item is a block indented
                // to where its text starts.
                let inner = indent + (line.text.len() - rest.len());
                self.lines[self.position] =
                    Line { number: line.number, indent: inner, text: rest.to_string() };
                items.push(self.block(inner)?);
            } else {
                self.position += 1;
                items.push(self.scalar_or_block_scalar(rest, indent, line.number)?);
            }
        }
        Ok(Value::List(items))
    }

    fn map(&mut self, indent: usize) -> Result<Value, YamlError> {
        let mut entries = Vec::new();
        while let Some(line) = self.lines.get(self.position).cloned() {
            if line.indent != indent || line.text.starts_with("- ") || line.text == "-" {
                break;
            }
            let (key, rest) = split_entry(&line.text)
                .ok_or(YamlError { line: line.number, what: "expected `key: value`" })?;
            self.position += 1;
            let value = if rest.is_empty() {
                // A nested block, or a sequence at the key's own indent.
                match self.lines.get(self.position) {
                    Some(next)
                        if next.indent == indent && (next.text == "-" || next.text.starts_with("- ")) =>
                    {
                        self.list(indent)?
                    }
                    _ => self.nested(indent, line.number)?,
                }
            } else {
                self.scalar_or_block_scalar(rest, indent, line.number)?
            };
            entries.push((key, value));
        }
        Ok(Value::Map(entries))
    }

    /// The block below a line indented by `indent`, or an empty scalar.
    fn nested(&mut self, indent: usize, _number: usize) -> Result<Value, YamlError> {
        match self.lines.get(self.position) {
            Some(next) if next.indent > indent => {
                let inner = next.indent;
                self.block(inner)
            }
            _ => Ok(Value::Scalar(String::new())),
        }
    }

    /// A scalar on the line, or a block scalar (`|`, `|-`, `>`) on the
    /// raw lines after line `number` indented past `indent`.
    fn scalar_or_block_scalar(
        &mut self,
        text: &str,
        indent: usize,
        number: usize,
    ) -> Result<Value, YamlError> {
        let style = text.split(" #").next().unwrap_or("").trim();
        if !matches!(style, "|" | "|-" | "|+" | ">" | ">-") {
            return scalar(text, number);
        }
        // The block's lines are the raw ones (blank lines included) until
        // one indented no deeper than the key.
        let mut body: Vec<&str> = Vec::new();
        let mut index = number;
        while let Some(raw) = self.raw.get(index) {
            let trimmed = raw.trim_start();
            if !trimmed.is_empty() && raw.len() - trimmed.len() <= indent {
                break;
            }
            body.push(raw);
            index += 1;
        }
        while body.last().is_some_and(|line| line.trim().is_empty()) {
            body.pop();
        }
        // Skip the parsed lines that belonged to the block.
        while self.lines.get(self.position).is_some_and(|line| line.number <= index) {
            self.position += 1;
        }
        let block_indent = body
            .iter()
            .filter(|line| !line.trim().is_empty())
            .map(|line| line.len() - line.trim_start().len())
            .min()
            .unwrap_or(0);
        let lines: Vec<&str> = body.iter().map(|line| line.get(block_indent..).unwrap_or("")).collect();
        let mut text = if style.starts_with('>') { lines.join(" ") } else { lines.join("\n") };
        if !style.ends_with('-') && !lines.is_empty() {
            text.push('\n');
        }
        Ok(Value::Scalar(text))
    }
}

/// Whether an item's text starts a block: a mapping entry or a sequence.
fn starts_block(text: &str) -> bool {
    text == "-"
        || text.starts_with("- ")
        || (!text.starts_with(['"', '\'', '[']) && split_entry(text).is_some())
}

/// `key: rest` (the key plain or quoted).
fn split_entry(text: &str) -> Option<(String, &str)> {
    if let Some(quote) = text.chars().next().filter(|character| *character == '"' || *character == '\'') {
        let end = text[1..].find(quote)? + 1;
        let rest = text[end + 1..].strip_prefix(':')?;
        if !(rest.is_empty() || rest.starts_with(' ')) {
            return None;
        }
        return Some((text[1..end].to_string(), rest.trim()));
    }
    let position = text.find(": ").or_else(|| text.ends_with(':').then(|| text.len() - 1))?;
    let key = text[..position].trim();
    if key.is_empty() {
        return None;
    }
    Some((key.to_string(), text[position + 1..].trim()))
}

/// A scalar or flow sequence of scalars.
fn scalar(text: &str, number: usize) -> Result<Value, YamlError> {
    let text = text.trim();
    if let Some(inner) = text.strip_prefix('[') {
        let inner =
            inner.trim_end().strip_suffix(']').ok_or(YamlError { line: number, what: "an unclosed [" })?;
        let mut items = Vec::new();
        for part in split_flow(inner) {
            let part = part.trim();
            if !part.is_empty() {
                items.push(Value::Scalar(quoted_or_plain(part, number)?));
            }
        }
        return Ok(Value::List(items));
    }
    Ok(Value::Scalar(quoted_or_plain(text, number)?))
}

/// Splits a flow sequence's text at commas outside quotes.
fn split_flow(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut quote = None;
    let mut start = 0;
    for (index, character) in text.char_indices() {
        match (quote, character) {
            (None, '"' | '\'') => quote = Some(character),
            (Some(open), _) if character == open => quote = None,
            (None, ',') => {
                parts.push(&text[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// A quoted scalar's text, or a plain one's without a trailing comment.
fn quoted_or_plain(text: &str, number: usize) -> Result<String, YamlError> {
    let unclosed = YamlError { line: number, what: "an unclosed quote" };
    if let Some(inner) = text.strip_prefix('\'') {
        let end = closing_single(inner).ok_or(unclosed)?;
        return Ok(inner[..end].replace("''", "'"));
    }
    if let Some(inner) = text.strip_prefix('"') {
        let mut out = String::new();
        let mut characters = inner.chars();
        while let Some(character) = characters.next() {
            match character {
                '"' => return Ok(out),
                '\\' => match characters.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some('0') => out.push('\0'),
                    Some(other) => out.push(other),
                    None => return Err(unclosed),
                },
                other => out.push(other),
            }
        }
        return Err(unclosed);
    }
    Ok(text.split(" #").next().unwrap_or("").trim().to_string())
}

/// Where a single-quoted scalar ends (`''` stands for one quote).
fn closing_single(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'\'' {
            if bytes.get(index + 1) == Some(&b'\'') {
                index += 2;
                continue;
            }
            return Some(index);
        }
        index += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn text(value: &str) -> Value {
        Value::Scalar(value.to_string())
    }

    #[test]
    fn a_cloud_config_parses() {
        let document = "#cloud-config\n\
                        hostname: appliance # the name\n\
                        environment:\n  GREETING: \"hello\\tworld\"\n  'QUOTED': 'it''s'\n\
                        write_files:\n\
                        - path: /tmp/a\n  content: |\n    line one\n\n    line two\n  permissions: '0600'\n\
                        - path: /tmp/b\n  content: >-\n    folded\n    text\n\
                        runcmd:\n  - [ /bin/echo, \"a, b\", c ]\n  - echo plain\n  -\n    - nested\n";
        let value = parse(document).unwrap();
        assert_eq!(value.get("hostname"), Some(&text("appliance")));
        let environment = value.get("environment").unwrap();
        assert_eq!(environment.get("GREETING"), Some(&text("hello\tworld")));
        assert_eq!(environment.get("QUOTED"), Some(&text("it's")));
        let Some(Value::List(files)) = value.get("write_files") else { panic!("{value:?}") };
        assert_eq!(files[0].get("content"), Some(&text("line one\n\nline two\n")));
        assert_eq!(files[0].get("permissions"), Some(&text("0600")));
        assert_eq!(files[1].get("content"), Some(&text("folded text")));
        assert_eq!(
            value.get("runcmd"),
            Some(&Value::List(vec![
                Value::List(vec![text("/bin/echo"), text("a, b"), text("c")]),
                text("echo plain"),
                Value::List(vec![text("nested")]),
            ]))
        );
    }

    #[test]
    fn bad_documents_are_errors() {
        assert_eq!(parse("a: 1\n  b: 2\n").unwrap_err().line, 2);
        assert_eq!(parse("a: 'open\n").unwrap_err().what, "an unclosed quote");
        assert_eq!(parse("\ta: 1\n").unwrap_err().what, "tabs cannot indent YAML");
        assert_eq!(parse("just text\n").unwrap_err().what, "expected `key: value`");
        assert_eq!(parse("").unwrap(), Value::Map(Vec::new()));
    }
}
