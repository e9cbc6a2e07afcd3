//! Splitting a command line into tokens, and quoting one argument back.

use alloc::string::String;
use alloc::vec::Vec;

use crate::{Error, is_hypervisor_token};

/// One word of the command line after quote removal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The word, quotes and escapes removed.
    pub text: String,
    /// Whether any part of the word was quoted or escaped. Quoted words are
    /// never separators or hypervisor tokens.
    pub is_quoted: bool,
    /// How many leading bytes of `text` were neither quoted nor escaped. A
    /// word is an option only if its `--` is plain: `--env="A=a b"` is one,
    /// `"--env=A"` is an argument.
    pub plain_prefix_len: usize,
}

impl Token {
    /// Whether this is an unquoted `;` or `&` between commands.
    pub fn is_separator(&self) -> bool {
        !self.is_quoted && (self.text == ";" || self.text == "&")
    }

    /// Whether this word is a kernel option (starts with a plain `--`).
    pub fn is_option(&self) -> bool {
        self.plain_prefix_len >= 2 && self.text.starts_with("--")
    }

    fn mark_quoted(&mut self) {
        if !self.is_quoted {
            self.is_quoted = true;
            self.plain_prefix_len = self.text.len();
        }
    }
}

/// Splits `text` into tokens: blanks separate words; single quotes keep
/// everything literally; double quotes keep everything but `\"` and `\\`;
/// outside quotes a backslash keeps the next character; an unquoted `;` or
/// `&` is a token of its own.
pub fn tokenize(text: &str) -> Result<Vec<Token>, Error> {
    let mut tokens = Vec::new();
    let mut current: Option<Token> = None;
    let mut chars = text.chars();
    while let Some(character) = chars.next() {
        match character {
            ' ' | '\t' | '\n' | '\r' => {
                tokens.extend(current.take().map(finish));
            }
            ';' | '&' => {
                tokens.extend(current.take().map(finish));
                tokens.push(Token { text: String::from(character), is_quoted: false, plain_prefix_len: 1 });
            }
            '\'' => {
                let token = current.get_or_insert_with(empty_token);
                token.mark_quoted();
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(inner) => token.text.push(inner),
                        None => return Err(Error::UnterminatedQuote),
                    }
                }
            }
            '"' => {
                let token = current.get_or_insert_with(empty_token);
                token.mark_quoted();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(escaped @ ('"' | '\\')) => token.text.push(escaped),
                            Some(other) => {
                                token.text.push('\\');
                                token.text.push(other);
                            }
                            None => return Err(Error::UnterminatedQuote),
                        },
                        Some(inner) => token.text.push(inner),
                        None => return Err(Error::UnterminatedQuote),
                    }
                }
            }
            '\\' => {
                let escaped = chars.next().ok_or(Error::TrailingBackslash)?;
                let token = current.get_or_insert_with(empty_token);
                token.mark_quoted();
                token.text.push(escaped);
            }
            other => current.get_or_insert_with(empty_token).text.push(other),
        }
    }
    tokens.extend(current.map(finish));
    Ok(tokens)
}

fn empty_token() -> Token {
    Token { text: String::new(), is_quoted: false, plain_prefix_len: 0 }
}

/// Completes a token: a word never quoted is plain throughout.
fn finish(mut token: Token) -> Token {
    if !token.is_quoted {
        token.plain_prefix_len = token.text.len();
    }
    token
}

/// Writes the kernel option `--name=value`, quoting the value as needed.
pub fn option_with_value(name: &str, value: &str) -> String {
    let mut option = String::from("--");
    option.push_str(name);
    option.push('=');
    option.push_str(&quote(value));
    option
}

/// Quotes `argument` so that [`tokenize`] gives it back unchanged as one
/// quoted-or-plain argument that is never an option, separator, device or
/// hypervisor token.
pub fn quote(argument: &str) -> String {
    let is_plain = !argument.is_empty()
        && !argument.starts_with('-')
        && !is_hypervisor_token(argument)
        && argument
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || "_-./,:=+@%^".contains(character));
    if is_plain {
        return String::from(argument);
    }
    let mut quoted = String::with_capacity(argument.len() + 2);
    quoted.push('"');
    for character in argument.chars() {
        if character == '"' || character == '\\' {
            quoted.push('\\');
        }
        quoted.push(character);
    }
    quoted.push('"');
    quoted
}
