//! JSON as Python writes it, made readable by serde_json. `json.dumps` escapes a string holding
//! half of a surrogate pair (a broken emoji cut by a slice) as a lone `\udXXX`, which is valid
//! JSON text but no Unicode string; serde_json refuses the whole document for it. One broken
//! character must not cost a batch, so lone surrogates become U+FFFD before parsing.

use std::borrow::Cow;

/// `json` with every lone surrogate escape replaced by `\uFFFD`; borrowed when there is none.
pub fn replace_lone_surrogates(json: &[u8]) -> Cow<'_, [u8]> {
    let may_hold_one = json
        .windows(3)
        .any(|w| w[0] == b'\\' && w[1] == b'u' && (w[2] | 0x20) == b'd');
    if !may_hold_one {
        return Cow::Borrowed(json);
    }
    let mut out = Vec::with_capacity(json.len());
    let mut i = 0;
    while i < json.len() {
        if json[i] != b'\\' || i + 1 >= json.len() {
            out.push(json[i]);
            i += 1;
            continue;
        }
        // In valid JSON a backslash only starts an escape; `\\` must be skipped whole so that
        // `\\ud83d` (a backslash, then text) is left alone.
        if json[i + 1] != b'u' {
            out.extend_from_slice(&json[i..i + 2]);
            i += 2;
            continue;
        }
        match unit_at(json, i) {
            Some(0xD800..=0xDBFF) if matches!(unit_at(json, i + 6), Some(0xDC00..=0xDFFF)) => {
                out.extend_from_slice(&json[i..i + 12]);
                i += 12;
            }
            Some(0xD800..=0xDFFF) => {
                out.extend_from_slice(br"\uFFFD");
                i += 6;
            }
            _ => {
                out.push(json[i]);
                i += 1;
            }
        }
    }
    Cow::Owned(out)
}

/// The UTF-16 code unit of a `\uXXXX` escape starting at `at`.
fn unit_at(json: &[u8], at: usize) -> Option<u16> {
    let escape = json.get(at..at + 6)?;
    if escape[0] != b'\\' || escape[1] != b'u' {
        return None;
    }
    u16::from_str_radix(std::str::from_utf8(&escape[2..]).ok()?, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(json: &str) -> String {
        String::from_utf8(replace_lone_surrogates(json.as_bytes()).into_owned()).unwrap()
    }

    #[test]
    fn pairs_are_kept_and_lone_halves_replaced() {
        assert_eq!(fixed(r#""\ud83d\ude00""#), r#""\ud83d\ude00""#);
        assert_eq!(fixed(r#""a\ud83d b""#), r#""a\uFFFD b""#);
        assert_eq!(fixed(r#""\ude00""#), r#""\uFFFD""#);
        assert_eq!(fixed(r#""\ud83d\ud83d\ude00""#), r#""\uFFFD\ud83d\ude00""#);
        assert_eq!(fixed(r#""\\ud83d""#), r#""\\ud83d""#);
        assert_eq!(fixed(r#""end\ud83d""#), r#""end\uFFFD""#);
        let parsed: String = serde_json::from_str(&fixed(r#""x\ud83d""#)).unwrap();
        assert_eq!(parsed, "x\u{fffd}");
    }

    #[test]
    fn text_without_surrogates_is_not_copied() {
        assert!(matches!(
            replace_lone_surrogates(br#"{"a": "\u00e9"}"#),
            Cow::Borrowed(_)
        ));
    }
}
