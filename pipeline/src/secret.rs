//! API keys and tokens. A [`Secret`] prints as `***` in Debug and Display, is not
//! `Serialize`, and is only readable through [`Secret::expose`], so a key cannot reach a log
//! line, an error message, a dead letter or a batch file by accident. Creating one registers
//! its value with the [`crate::redact`]or, so a service quoting the key back is masked too.

use std::fmt;

use crate::redact;

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

/// A secret that cannot be sent: it holds a character an HTTP header cannot carry. Caught
/// when the secret is loaded, because the HTTP client would only fail when building each
/// request, which reads like a network error and is retried to no end. Names the variable,
/// never the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var} contains {found}, which an HTTP header cannot carry")]
pub struct InvalidSecret {
    pub var: String,
    pub found: &'static str,
}

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        let value = value.into();
        redact::register(&value);
        Self(value)
    }

    /// Reads the secret from an environment variable, trimmed; `Ok(None)` when unset or empty.
    /// The value is registered for redaction even when it is refused.
    pub fn from_env(var: &str) -> Result<Option<Self>, InvalidSecret> {
        let invalid = |found| InvalidSecret {
            var: var.to_string(),
            found,
        };
        let value = match std::env::var(var) {
            Ok(value) => value,
            Err(std::env::VarError::NotPresent) => return Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(invalid("bytes that are not UTF-8"))
            }
        };
        let value = value.trim();
        if value.is_empty() {
            return Ok(None);
        }
        redact::register(value);
        if let Some(found) = unsendable(value) {
            return Err(invalid(found));
        }
        Ok(Some(Self::new(value)))
    }

    /// The value, for the one place that needs it (an Authorization header).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// What in `value` an HTTP header value refuses: control characters other than tab.
fn unsendable(value: &str) -> Option<&'static str> {
    value
        .chars()
        .find(|&c| c.is_control() && c != '\t')
        .map(|c| match c {
            '\n' | '\r' => "a newline",
            _ => "a control character",
        })
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_its_value() {
        let s = Secret::new("sk-very-secret");
        assert!(!format!("{s:?}").contains("very"));
        assert!(!format!("{s}").contains("very"));
        assert_eq!(s.expose(), "sk-very-secret");
    }

    #[test]
    fn a_created_secret_is_redacted_from_text() {
        let _s = Secret::new("sk-secret-registers-0001");
        assert_eq!(
            redact::redact("the provider said: bad key sk-secret-registers-0001"),
            "the provider said: bad key ***"
        );
    }

    #[test]
    fn a_value_with_a_newline_is_refused_naming_the_variable_only() {
        let var = "KASS_UNIT_SECRET_WITH_NEWLINE";
        // SAFETY: this test alone uses the variable; nothing reads it concurrently.
        unsafe { std::env::set_var(var, "  sk-first-line-0002\nsecond-line\n") };
        let error = Secret::from_env(var).expect_err("a newline cannot be sent");
        assert_eq!(
            error.to_string(),
            "KASS_UNIT_SECRET_WITH_NEWLINE contains a newline, which an HTTP header cannot carry"
        );
        assert_eq!(
            redact::redact("echo: sk-first-line-0002\nsecond-line"),
            "echo: ***"
        );
    }

    #[test]
    fn surrounding_whitespace_is_trimmed_and_unset_is_none() {
        let var = "KASS_UNIT_SECRET_TRAILING_NEWLINE";
        // SAFETY: this test alone uses the variable; nothing reads it concurrently.
        unsafe { std::env::set_var(var, "sk-trailing-0003\n") };
        let secret = Secret::from_env(var).unwrap().expect("set");
        assert_eq!(secret.expose(), "sk-trailing-0003");
        assert_eq!(Secret::from_env("KASS_UNIT_SECRET_NEVER_SET"), Ok(None));
    }
}
