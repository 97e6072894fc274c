//! The rule for a new portal password: at least [`MIN_CHARS`] characters, at most
//! [`MAX_CHARS`], and not one of the 30,000 most common passwords shipped with the server
//! (`common-passwords.txt`, zxcvbn's list, MIT licence; see docs/ARCHITECTURE.md). No
//! composition rules: length and not-known-to-attackers are what resist guessing (NIST SP
//! 800-63B, 5.1.1.2).

use std::collections::HashSet;
use std::sync::OnceLock;

/// The shortest password accepted.
pub const MIN_CHARS: usize = 12;
/// The longest: a pass phrase fits, and Argon2 is never fed megabytes.
pub const MAX_CHARS: usize = 256;

/// One common password a line, lower case, most common first.
const COMMON: &str = include_str!("common-passwords.txt");

/// Why a new password was refused. The messages are for the person choosing it.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Fewer than [`MIN_CHARS`] characters.
    #[error(
        "Choose a password of at least {MIN_CHARS} characters; a few unrelated words are easy to remember."
    )]
    TooShort,
    /// More than [`MAX_CHARS`] characters.
    #[error("Choose a password of at most {MAX_CHARS} characters.")]
    TooLong,
    /// On the list of common and breached passwords.
    #[error(
        "This password is too common: attackers try it first. Choose another, such as a few unrelated words."
    )]
    TooCommon,
}

impl Refused {
    /// The stable code the API sends with the message.
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            Refused::TooShort => "password_too_short",
            Refused::TooLong => "password_too_long",
            Refused::TooCommon => "password_too_common",
        }
    }
}

fn common() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| COMMON.lines().filter(|l| !l.is_empty()).collect())
}

/// Checks a new password against the rule.
///
/// # Errors
/// [`Refused`], saying what to change.
pub fn check(password: &str) -> Result<(), Refused> {
    let n = password.chars().count();
    if n < MIN_CHARS {
        return Err(Refused::TooShort);
    }
    if n > MAX_CHARS {
        return Err(Refused::TooLong);
    }
    if common().contains(password.trim().to_lowercase().as_str()) {
        return Err(Refused::TooCommon);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_and_the_common_list_decide() {
        assert_eq!(check("short"), Err(Refused::TooShort));
        assert_eq!(check(&"x".repeat(MAX_CHARS + 1)), Err(Refused::TooLong));
        // On the shipped list, in any case.
        assert_eq!(check("1qaz2wsx3edc"), Err(Refused::TooCommon));
        assert_eq!(check("Q1W2E3R4T5Y6"), Err(Refused::TooCommon));
        assert!(common().len() >= 30_000 - 10);
        let long_common = COMMON
            .lines()
            .find(|l| l.chars().count() >= MIN_CHARS)
            .unwrap();
        assert_eq!(check(&long_common.to_uppercase()), Err(Refused::TooCommon));
        assert_eq!(check("correct horse battery staple"), Ok(()));
        // No composition rules: a long lower-case phrase is fine.
        assert_eq!(check("tulips grow in the window box"), Ok(()));
    }
}
