//! Chat markup -> plain text, shared by every chat platform's messages.
//!
//! Chat platforms store messages with angle-bracket markup (Slack's "mrkdwn" escapes): mentions by
//! id, channel references, links with labels, and `&lt; &gt; &amp;` for literal brackets. Embedded
//! as-is, `<@U01DY0U758E>` means nothing to a reader or a retriever; rendered, it is `@kara`.
//!
//! ```
//! use kass_pipeline::model::ChatDirectory;
//! use kass_stages::markup::normalize;
//!
//! let mut directory = ChatDirectory::default();
//! directory.users.insert("U1".into(), "kara".into());
//! assert_eq!(
//!     normalize("<@U1> see <https://r-project.org|the site> &amp; <#C9|general>", &directory),
//!     "@kara see the site (https://r-project.org) & #general"
//! );
//! ```
//!
//! Entities are decoded only after the markup is parsed, so escaped text (`&lt;@U1&gt;`) stays text
//! and never becomes a mention or a link. A `<` without a matching `>` is kept literally.

use kass_pipeline::model::ChatDirectory;

/// Renders `text`'s markup as plain text, resolving user and channel ids through `directory`.
///
/// | markup | rendered |
/// |---|---|
/// | `<@U123>`, `<@U123\|name>` | `@display name` (unknown id: the label, else `@U123`) |
/// | `<#C123\|general>`, `<#C123>` | `#general` (unknown id: the label, else `#C123`) |
/// | `<!here>`, `<!channel>`, `<!everyone>` | `@here`, `@channel`, `@everyone` |
/// | `<!subteam^S1\|@team>` | `@team` |
/// | `<!date^1392734382^{date}\|Feb 18>` | `Feb 18` |
/// | `<https://x\|label>` | `label (https://x)` |
/// | `<https://x>` | `https://x` |
/// | `<mailto:a@b.c\|a@b.c>` | `a@b.c` |
pub fn normalize(text: &str, directory: &ChatDirectory) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('<') {
        push_decoded(&mut out, &rest[..open]);
        let after = &rest[open + 1..];
        match markup_end(after) {
            Some(close) => {
                render_markup(&mut out, &after[..close], directory);
                rest = &after[close + 1..];
            }
            None => {
                out.push('<');
                rest = after;
            }
        }
    }
    push_decoded(&mut out, rest);
    out
}

/// Where the markup starting after a `<` ends, if it is markup at all: a `>` reached before any
/// other `<` or line break, with something in between.
fn markup_end(after: &str) -> Option<usize> {
    let close = after.find(['>', '<', '\n'])?;
    (after.as_bytes()[close] == b'>' && close > 0).then_some(close)
}

fn render_markup(out: &mut String, inner: &str, directory: &ChatDirectory) {
    let (target, label) = match inner.split_once('|') {
        Some((target, label)) => (target.trim(), Some(label.trim()).filter(|l| !l.is_empty())),
        None => (inner.trim(), None),
    };
    if let Some(id) = target.strip_prefix('@') {
        match directory.users.get(id) {
            Some(name) => {
                out.push('@');
                out.push_str(name);
            }
            None => push_prefixed(out, '@', label.unwrap_or(id)),
        }
    } else if let Some(id) = target.strip_prefix('#') {
        match directory.channels.get(id) {
            Some(name) => {
                out.push('#');
                out.push_str(name);
            }
            None => push_prefixed(out, '#', label.unwrap_or(id)),
        }
    } else if let Some(command) = target.strip_prefix('!') {
        let (command, argument) = command.split_once('^').unwrap_or((command, ""));
        match command {
            "date" => push_decoded(out, label.unwrap_or(argument)),
            "subteam" => push_prefixed(out, '@', label.unwrap_or(argument)),
            command => push_prefixed(out, '@', label.unwrap_or(command)),
        }
    } else if let Some(address) = target.strip_prefix("mailto:") {
        match label {
            Some(label) if label != address => {
                push_decoded(out, label);
                out.push_str(" (");
                push_decoded(out, address);
                out.push(')');
            }
            _ => push_decoded(out, address),
        }
    } else {
        match label {
            Some(label) if !same_link(label, target) => {
                push_decoded(out, label);
                out.push_str(" (");
                push_decoded(out, target);
                out.push(')');
            }
            _ => push_decoded(out, target),
        }
    }
}

/// A label that only repeats the URL (with or without its scheme) adds nothing.
fn same_link(label: &str, url: &str) -> bool {
    let bare = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .unwrap_or(url);
    label == url || label == bare
}

/// Pushes `sigil` then `name`, unless `name` already starts with it (`<!subteam^S1|@team>`).
fn push_prefixed(out: &mut String, sigil: char, name: &str) {
    if !name.starts_with(sigil) {
        out.push(sigil);
    }
    push_decoded(out, name);
}

/// Decodes the three entities Slack escapes: `&lt;`, `&gt;`, `&amp;`. One pass, so `&amp;lt;`
/// becomes `&lt;`, as written.
fn push_decoded(out: &mut String, text: &str) {
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let tail = &rest[amp..];
        let (decoded, len) = if tail.starts_with("&lt;") {
            ('<', 4)
        } else if tail.starts_with("&gt;") {
            ('>', 4)
        } else if tail.starts_with("&amp;") {
            ('&', 5)
        } else {
            ('&', 1)
        };
        out.push(decoded);
        rest = &tail[len..];
    }
    out.push_str(rest);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn directory() -> ChatDirectory {
        let mut d = ChatDirectory::default();
        d.users.insert("U123".into(), "Kara Woo".into());
        d.channels.insert("C123".into(), "general".into());
        d
    }

    fn n(text: &str) -> String {
        normalize(text, &directory())
    }

    #[test]
    fn user_mention_resolves_to_display_name() {
        assert_eq!(n("hi <@U123>!"), "hi @Kara Woo!");
        assert_eq!(n("hi <@U123|kara>"), "hi @Kara Woo");
    }

    #[test]
    fn unknown_user_keeps_label_else_id() {
        assert_eq!(n("<@U999>"), "@U999");
        assert_eq!(n("<@U999|bob>"), "@bob");
    }

    #[test]
    fn channel_reference_renders_channel_name() {
        assert_eq!(n("see <#C123|general>"), "see #general");
        assert_eq!(n("see <#C123>"), "see #general");
        assert_eq!(n("see <#C999|random>"), "see #random");
        assert_eq!(n("see <#C999>"), "see #C999");
    }

    #[test]
    fn special_mentions_render_with_at() {
        assert_eq!(
            n("<!here> <!channel> <!everyone>"),
            "@here @channel @everyone"
        );
        assert_eq!(n("<!here|here>"), "@here");
    }

    #[test]
    fn subteam_renders_its_handle() {
        assert_eq!(n("ping <!subteam^S1|@core>"), "ping @core");
        assert_eq!(n("ping <!subteam^S1>"), "ping @S1");
    }

    #[test]
    fn date_renders_its_fallback() {
        assert_eq!(
            n("due <!date^1392734382^{date_short}|Feb 18, 2014>"),
            "due Feb 18, 2014"
        );
    }

    #[test]
    fn labelled_link_renders_label_then_url() {
        assert_eq!(
            n("<https://r-project.org|R site>"),
            "R site (https://r-project.org)"
        );
    }

    #[test]
    fn bare_link_and_label_repeating_url_render_url_once() {
        assert_eq!(n("<https://x.org/a>"), "https://x.org/a");
        assert_eq!(n("<https://x.org|https://x.org>"), "https://x.org");
        assert_eq!(n("<http://Matrix.org|Matrix.org>"), "http://Matrix.org");
    }

    #[test]
    fn link_label_padded_with_spaces_is_trimmed() {
        assert_eq!(
            n("<https://github.com/a/b.md | b.md>"),
            "b.md (https://github.com/a/b.md)"
        );
    }

    #[test]
    fn mailto_renders_address() {
        assert_eq!(n("<mailto:a@b.c|a@b.c>"), "a@b.c");
        assert_eq!(n("<mailto:a@b.c>"), "a@b.c");
        assert_eq!(n("<mailto:a@b.c|Ann>"), "Ann (a@b.c)");
    }

    #[test]
    fn entities_decode_after_parsing_so_escaped_text_is_never_markup() {
        assert_eq!(n("a &lt; b &amp;&amp; c &gt; d"), "a < b && c > d");
        assert_eq!(n("&lt;@U123&gt;"), "<@U123>");
        assert_eq!(n("&amp;lt;"), "&lt;");
        assert_eq!(n("<https://x.org/?a=1&amp;b=2>"), "https://x.org/?a=1&b=2");
    }

    #[test]
    fn unbalanced_angle_brackets_stay_literal() {
        assert_eq!(n("a < b"), "a < b");
        assert_eq!(n("a <"), "a <");
        assert_eq!(n("x <> y"), "x <> y");
        assert_eq!(n("a < b <@U123>"), "a < b @Kara Woo");
        assert_eq!(n("<first\nline>"), "<first\nline>");
        assert_eq!(n("tail &"), "tail &");
    }

    #[test]
    fn multibyte_text_around_markup_survives() {
        assert_eq!(n("héllo <@U123> ✓ &lt;"), "héllo @Kara Woo ✓ <");
    }
}
