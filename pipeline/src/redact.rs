//! The one redactor every text leaving the process goes through: log lines, the final error,
//! Lambda responses and dead letters.
//!
//! kass never formats a key itself ([`crate::secret::Secret`] prints as `***`), but it copies
//! what others say: a provider's error body that quotes the key it was sent, an HTTP client's
//! error naming a URL with `user:password@` in it. Those texts cannot be told apart from
//! harmless ones by their type, so they are cleaned where they leave instead: every secret
//! value loaded is [`register`]ed, and [`redact`] replaces any registered value with `***`
//! and any URL user info with `***` (`https://user:pw@host` becomes `https://***@host`).
//!
//! ```
//! use kass_pipeline::redact::{redact, register};
//!
//! register("sk-live-0123456789");
//! assert_eq!(
//!     redact("refused key sk-live-0123456789 at https://bob:pw@proxy:8080/v1"),
//!     "refused key *** at https://***@proxy:8080/v1"
//! );
//! ```

use std::borrow::Cow;
use std::io;
use std::sync::{PoisonError, RwLock};

/// What a secret or URL user info is replaced with.
pub const MASK: &str = "***";

/// Registered values shorter than this (in characters) are not redacted. Redaction replaces
/// the value wherever it occurs, so a short one (`test`, `admin`, `1234`) would mangle
/// ordinary words, ids and numbers in every log line and dead letter; and a key that short
/// is no real provider key anyway.
pub const MIN_SECRET_CHARS: usize = 8;

/// Every registered value, longest first (so a value containing another one is replaced whole).
static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Adds a secret value to the process-wide redactor, with the forms others echo it in: the
/// value after a `Bearer ` prefix (a variable holding a whole Authorization header, while the
/// provider quotes the token alone) and its JSON-escaped form (a JSON log line or body).
/// Surrounding whitespace is ignored; values shorter than [`MIN_SECRET_CHARS`] are not kept.
pub fn register(value: &str) {
    let value = value.trim();
    let mut forms = vec![value.to_string()];
    if let Some(token) = strip_prefix_ignore_case(value, "Bearer ") {
        forms.push(token.trim().to_string());
    }
    for form in forms.clone() {
        let json = serde_json::to_string(&form).expect("a string serialises");
        forms.push(json[1..json.len() - 1].to_string());
    }
    let mut secrets = SECRETS.write().unwrap_or_else(PoisonError::into_inner);
    for form in forms {
        if form.chars().count() >= MIN_SECRET_CHARS && !secrets.contains(&form) {
            secrets.push(form);
        }
    }
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// `text` with every registered secret and every URL's user info replaced by [`MASK`];
/// borrowed when there was nothing to replace (the usual case, so a log line costs no copy).
pub fn redact(text: &str) -> Cow<'_, str> {
    match mask_secrets(text) {
        Cow::Borrowed(text) => without_userinfo(text),
        Cow::Owned(masked) => Cow::Owned(without_userinfo(&masked).into_owned()),
    }
}

/// `text` with every registered secret replaced by [`MASK`], and nothing else changed.
pub fn mask_secrets(text: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(text);
    let secrets = SECRETS.read().unwrap_or_else(PoisonError::into_inner);
    for secret in secrets.iter() {
        if out.contains(secret.as_str()) {
            out = Cow::Owned(out.replace(secret.as_str(), MASK));
        }
    }
    out
}

/// Redacts every string inside a JSON value (a Lambda response) in place, as [`redact`];
/// keys and numbers are left as they are.
pub fn redact_json(value: &mut serde_json::Value) {
    map_strings(value, &redact);
}

/// Masks registered secrets in every string of an item kept for re-processing (a dead letter's
/// item), and nothing else: a URL with user info in a message is the message's content, and
/// changing it would store other text under the chunk's id when the letter is re-run.
pub fn mask_secrets_json(value: &mut serde_json::Value) {
    map_strings(value, &mask_secrets);
}

fn map_strings(value: &mut serde_json::Value, f: &dyn Fn(&str) -> Cow<'_, str>) {
    use serde_json::Value;
    match value {
        Value::String(s) => {
            if let Cow::Owned(cleaned) = f(s) {
                *s = cleaned;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| map_strings(v, f)),
        Value::Object(map) => map.values_mut().for_each(|v| map_strings(v, f)),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// `text` with the user info of every URL in it replaced by [`MASK`]: `scheme://user:pw@host`
/// and `scheme://user@host` both become `scheme://***@host`. Used on its own where a URL is
/// shown (the Chroma URL in messages), since registered secrets need no lookup there.
pub fn without_userinfo(text: &str) -> Cow<'_, str> {
    let mut out = String::new();
    let mut copied = 0;
    let mut from = 0;
    while let Some(found) = text[from..].find("://") {
        let scheme_end = from + found;
        let authority = scheme_end + 3;
        let end = text[authority..]
            .find(ends_authority)
            .map_or(text.len(), |i| authority + i);
        let has_scheme = text[..scheme_end]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
        if let Some(at) = text[authority..end].rfind('@').map(|i| authority + i) {
            if has_scheme && at > authority {
                out.push_str(&text[copied..authority]);
                out.push_str(MASK);
                copied = at;
            }
        }
        from = end.max(authority);
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

/// Where a URL's authority (`user:pw@host:port`) ends: its path, query or fragment, or a
/// character a URL cannot hold unescaped (space, quote, backslash, angle bracket...), which
/// also keeps redaction from ever reaching across a JSON string's closing quote.
fn ends_authority(c: char) -> bool {
    matches!(
        c,
        '/' | '?' | '#' | '"' | '\\' | '<' | '>' | '`' | '{' | '}' | '|' | '^'
    ) || c.is_whitespace()
        || c.is_control()
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// An [`io::Write`] that redacts what passes through it, for the log writer: tracing's
/// formatter writes each event, plain or JSON, as one whole line in one call, so a secret is
/// never split between two writes.
pub struct Redacting<W>(pub W);

impl<W: io::Write> io::Write for Redacting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.0.write_all(redact(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_values_are_masked_wherever_they_occur() {
        register("sk-unit-registered-0001");
        assert_eq!(
            redact("401: Incorrect API key provided: sk-unit-registered-0001."),
            "401: Incorrect API key provided: ***."
        );
        assert_eq!(
            redact("sk-unit-registered-0001sk-unit-registered-0001"),
            "******"
        );
        assert!(matches!(redact("nothing secret here"), Cow::Borrowed(_)));
    }

    #[test]
    fn a_bearer_value_also_masks_the_bare_token() {
        register("Bearer tok-unit-bearer-0002");
        assert_eq!(
            redact("token tok-unit-bearer-0002 refused"),
            "token *** refused"
        );
        assert_eq!(redact("header Bearer tok-unit-bearer-0002"), "header ***");
    }

    #[test]
    fn the_json_escaped_form_is_masked_in_json_text() {
        register("pw-unit\"quote\\0003");
        let line = serde_json::json!({"error": "bad key pw-unit\"quote\\0003"}).to_string();
        assert_eq!(redact(&line), r#"{"error":"bad key ***"}"#);
    }

    #[test]
    fn short_values_are_not_registered() {
        register("admin");
        register("   ");
        assert_eq!(
            redact("admin logged in as admin"),
            "admin logged in as admin"
        );
    }

    #[test]
    fn url_user_info_is_masked() {
        let cases = [
            (
                "http://user:s3cret@127.0.0.1:8000/api",
                "http://***@127.0.0.1:8000/api",
            ),
            ("https://alice@host", "https://***@host"),
            (
                "redis://:only-password@cache:6379",
                "redis://***@cache:6379",
            ),
            (
                "Chroma at http://u:p%40ss@h:1 and s3://k:v@bucket/key down",
                "Chroma at http://***@h:1 and s3://***@bucket/key down",
            ),
            (
                r#"{"url":"http://u:pw@h/x","mail":"a@b.c"}"#,
                r#"{"url":"http://***@h/x","mail":"a@b.c"}"#,
            ),
            ("(http://host/path?who=a@b)", "(http://host/path?who=a@b)"),
            (
                "mailto:a@b.c and http://host",
                "mailto:a@b.c and http://host",
            ),
            ("http://@host", "http://@host"),
            ("://user@host", "://user@host"),
            ("http://[::1]:80 user@host", "http://[::1]:80 user@host"),
        ];
        for (text, want) in cases {
            assert_eq!(without_userinfo(text), want, "{text}");
            assert_eq!(redact(text), want, "{text}");
        }
    }

    #[test]
    fn json_strings_are_redacted_in_place() {
        register("sk-unit-json-value-0004");
        let mut item = serde_json::json!({
            "text": "key sk-unit-json-value-0004",
            "nested": [{"url": "http://u:p@h"}, 3, null],
        });
        redact_json(&mut item);
        assert_eq!(
            item,
            serde_json::json!({"text": "key ***", "nested": [{"url": "http://***@h"}, 3, null]})
        );
    }

    #[test]
    fn dead_letters_are_redacted_when_made() {
        register("sk-unit-letter-0006");
        let letter = crate::dead_letter::DeadLetter::new(
            "embed",
            "slack",
            "c1",
            crate::ItemKind::Chunk,
            &serde_json::json!({"text": "sk-unit-letter-0006 at http://u:p@h"}),
            &crate::ItemError::new(
                crate::FailureKind::EmbedInputRefused,
                "you sent: Bearer sk-unit-letter-0006",
            ),
        );
        assert_eq!(letter.reason, "you sent: Bearer ***");
        // The item is content to re-run: only registered secrets are masked in it.
        assert_eq!(letter.item["text"], "*** at http://u:p@h");
    }

    #[test]
    fn the_writer_redacts_each_write() {
        use std::io::Write;
        register("sk-unit-writer-0005");
        let mut w = Redacting(Vec::new());
        w.write_all(b"level=WARN error=\"sk-unit-writer-0005\"\n")
            .unwrap();
        assert_eq!(
            String::from_utf8(w.0).unwrap(),
            "level=WARN error=\"***\"\n"
        );
    }
}
