//! Discord message markup -> readable text, rendered in the source because only the source
//! knows the guild's roles (the chat directory the transform stage reads holds users and
//! channels alone).
//!
//! | markup                           | rendered                                   |
//! |----------------------------------|--------------------------------------------|
//! | `<@id>`, `<@!id>`                | `@name` (unknown id: `@id`)                |
//! | `<#id>`                          | `#name` (unknown id: `#id`)                |
//! | `<@&id>`                         | `@role` (unknown id: `@&id`)               |
//! | `<:name:id>`, `<a:name:id>`      | `:name:`                                   |
//! | `<t:unix>`, `<t:unix:style>`     | the instant in UTC, as the style asks (`R`, relative, as `F`) |
//! | `</name:id>` (a slash command)   | `/name`                                    |
//! | `<https://x>` (embed suppressed) | `https://x`                                |
//!
//! The result is written for the shared chat normalisation of the transform stage
//! (`kass_stages::markup::normalize`, Slack's escapes): `&`, `<` and `>` of the text come out
//! as `&amp;`, `&lt;` and `&gt;`, which that stage decodes back, so a Discord message never
//! reads as Slack markup it is not.

use std::collections::HashMap;

use chrono::DateTime;

/// The names ids in markup resolve to: the guild's members, channels and roles.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Names {
    pub users: HashMap<String, String>,
    pub channels: HashMap<String, String>,
    pub roles: HashMap<String, String>,
}

/// `text` with its markup rendered (see the module's table), escaped for the chat stage.
pub fn render(text: &str, names: &Names) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('<') {
        escape_into(&mut out, &rest[..open]);
        let after = &rest[open + 1..];
        match after.find('>').and_then(|close| {
            let inner = &after[..close];
            tag(inner, names).map(|rendered| (rendered, close))
        }) {
            Some((rendered, close)) => {
                escape_into(&mut out, &rendered);
                rest = &after[close + 1..];
            }
            None => {
                out.push_str("&lt;");
                rest = after;
            }
        }
    }
    escape_into(&mut out, rest);
    out
}

/// One `<...>` tag's text, or `None` when it is not Discord markup (kept literally).
fn tag(inner: &str, names: &Names) -> Option<String> {
    let named = |map: &HashMap<String, String>, id: &str| map.get(id).cloned();
    if let Some(id) = inner.strip_prefix("@&").filter(|id| is_id(id)) {
        return Some(
            named(&names.roles, id).map_or_else(|| format!("@&{id}"), |n| format!("@{n}")),
        );
    }
    if let Some(id) = inner
        .strip_prefix("@!")
        .or_else(|| inner.strip_prefix('@'))
        .filter(|id| is_id(id))
    {
        return Some(format!(
            "@{}",
            named(&names.users, id).unwrap_or_else(|| id.to_string())
        ));
    }
    if let Some(id) = inner.strip_prefix('#').filter(|id| is_id(id)) {
        return Some(format!(
            "#{}",
            named(&names.channels, id).unwrap_or_else(|| id.to_string())
        ));
    }
    if let Some(rest) = inner.strip_prefix("t:") {
        let (unix, style) = rest.split_once(':').unwrap_or((rest, "f"));
        return timestamp(unix.parse().ok()?, style);
    }
    if let Some(emoji) = inner.strip_prefix("a:").or_else(|| inner.strip_prefix(':')) {
        let (name, id) = emoji.split_once(':')?;
        return (is_id(id) && !name.is_empty()).then(|| format!(":{name}:"));
    }
    if let Some(command) = inner.strip_prefix('/') {
        let (name, id) = command.rsplit_once(':')?;
        return is_id(id).then(|| format!("/{name}"));
    }
    if inner.starts_with("http://") || inner.starts_with("https://") {
        return Some(inner.to_string());
    }
    None
}

/// An instant as Discord's timestamp styles show it, in UTC (the reader's time zone is not
/// known; a relative time would be wrong the day after it was stored).
fn timestamp(unix: i64, style: &str) -> Option<String> {
    let at = DateTime::from_timestamp(unix, 0)?;
    let format = match style {
        "t" => "%H:%M UTC",
        "T" => "%H:%M:%S UTC",
        "d" => "%Y-%m-%d",
        "D" => "%-d %B %Y",
        "F" | "R" => "%A, %-d %B %Y %H:%M UTC",
        _ => "%-d %B %Y %H:%M UTC",
    };
    Some(at.format(format).to_string())
}

fn is_id(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Names {
        let mut names = Names::default();
        names
            .users
            .insert("80351110224678912".into(), "nelly".into());
        names
            .channels
            .insert("103735883630395392".into(), "general".into());
        names
            .roles
            .insert("165511591545143296".into(), "Moderators".into());
        names
    }

    #[test]
    fn mentions_channels_and_roles_become_names() {
        let text = "<@80351110224678912> <@!80351110224678912> see <#103735883630395392>, ping <@&165511591545143296>";
        assert_eq!(
            render(text, &names()),
            "@nelly @nelly see #general, ping @Moderators"
        );
        assert_eq!(render("<@1> <#2> <@&3>", &names()), "@1 #2 @&amp;3");
    }

    #[test]
    fn emoji_timestamps_commands_and_links_read_plainly() {
        assert_eq!(
            render(
                "<:mmLol:216154654256398347> <a:b1nzy:392938283556143104>",
                &names()
            ),
            ":mmLol: :b1nzy:"
        );
        // The documented example instant: 1618953630 is 2021-04-20 21:20:30 UTC.
        assert_eq!(render("<t:1618953630:d>", &names()), "2021-04-20");
        assert_eq!(render("<t:1618953630:T>", &names()), "21:20:30 UTC");
        assert_eq!(
            render("<t:1618953630>", &names()),
            "20 April 2021 21:20 UTC"
        );
        assert_eq!(
            render("<t:1618953630:R>", &names()),
            "Tuesday, 20 April 2021 21:20 UTC"
        );
        assert_eq!(
            render("</airhorn:816437322781949972>", &names()),
            "/airhorn"
        );
        assert_eq!(
            render("<https://kass.dev/x>", &names()),
            "https://kass.dev/x"
        );
    }

    #[test]
    fn other_brackets_and_ampersands_are_escaped_for_the_chat_stage() {
        assert_eq!(
            render("a < b && <notmarkup> <!here> <@U1>", &names()),
            "a &lt; b &amp;&amp; &lt;notmarkup&gt; &lt;!here&gt; &lt;@U1&gt;"
        );
        assert_eq!(render("<t:x:d> <", &names()), "&lt;t:x:d&gt; &lt;");
    }
}
