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
    /// always arguments: never options, separators or hypervisor tokens.
    pub is_quoted: bool,
}

impl Token {
    /// Whether this is an unquoted `;` or `&` between commands.
    pub fn is_separator(&self) -> bool {
        !self.is_quoted && (self.text == ";" || self.text == "&")
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
                tokens.extend(current.take());
            }
            ';' | '&' => {
                tokens.extend(current.take());
                tokens.push(Token { text: String::from(character), is_quoted: false });
            }
            '\'' => {
                let token = current.get_or_insert_with(empty_token);
                token.is_quoted = true;
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
                token.is_quoted = true;
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
                token.is_quoted = true;
                token.text.push(escaped);
            }
            other => current.get_or_insert_with(empty_token).text.push(other),
        }
    }
    tokens.extend(current);
    Ok(tokens)
}

fn empty_token() -> Token {
    Token { text: String::new(), is_quoted: false }
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
