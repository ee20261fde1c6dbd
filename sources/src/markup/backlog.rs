//! Backlog notation -> Markdown-like plain text, so a wiki page, a document or an issue of a
//! project using Backlog's own notation reads (and is cut at headings) like a Markdown one.
//!
//! Backlog lets each project choose its text formatting rule: `markdown` or `backlog`
//! (Backlog's original notation). What this renders, line by line:
//!
//! | notation                     | rendered                 |
//! |------------------------------|--------------------------|
//! | `* Title`, `** Sub`          | `# Title`, `## Sub`      |
//! | `+ item` (numbered list)     | `1. item`                |
//! | `{code}` ... `{/code}`       | a fenced block, kept as is |
//! | `{quote}` ... `{/quote}`     | `> ` before each line    |
//! | `''bold''`, `'''italic'''`, `%%struck%%` | the text alone |
//! | `&color(red){ text }`        | the text alone           |
//! | `[[label>url]]`, `[[label:url]]`, `[[Page]]` | `label (url)`, `Page` |
//! | `&br;`                       | a line break             |
//!
//! Lists with `-` and tables with `|` are Markdown already and stay.

/// Whether a project's `textFormattingRule` names Backlog's own notation.
pub fn is_backlog_notation(rule: &str) -> bool {
    rule.eq_ignore_ascii_case("backlog")
}

/// `text` in Backlog notation, rendered (see the module's table).
pub fn render(text: &str) -> String {
    let mut out = Vec::new();
    let mut in_code = false;
    let mut in_quote = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if in_code {
            if trimmed == "{/code}" {
                out.push("```".to_string());
                in_code = false;
            } else {
                out.push(line.to_string());
            }
            continue;
        }
        match trimmed {
            t if t.starts_with("{code") && t.ends_with('}') => {
                in_code = true;
                out.push("```".to_string());
                continue;
            }
            "{quote}" => {
                in_quote = true;
                continue;
            }
            "{/quote}" => {
                in_quote = false;
                continue;
            }
            _ => {}
        }
        let rendered = inline(&block(line));
        out.push(if in_quote {
            format!("> {rendered}")
        } else {
            rendered
        });
    }
    if in_code {
        out.push("```".to_string());
    }
    out.join("\n")
}

/// A line's block markup: headings and numbered lists.
fn block(line: &str) -> String {
    let stars = line.chars().take_while(|c| *c == '*').count();
    if (1..=6).contains(&stars) && line[stars..].starts_with(' ') {
        return format!("{} {}", "#".repeat(stars), line[stars..].trim());
    }
    let pluses = line.chars().take_while(|c| *c == '+').count();
    if pluses >= 1 && line[pluses..].starts_with(' ') {
        return format!("{}1. {}", "   ".repeat(pluses - 1), line[pluses..].trim());
    }
    line.to_string()
}

/// A line's inline markup: emphasis, colour, links, line breaks.
fn inline(line: &str) -> String {
    let mut text = line
        .replace("&br;", "\n")
        .replace("'''", "")
        .replace("''", "")
        .replace("%%", "");
    text = colors(&text);
    links(&text)
}

/// `&color(red){ text }` and `&color(red, blue){ text }` -> `text`.
fn colors(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("&color(") {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        let Some(open) = after.find("){") else {
            out.push_str(after);
            return out;
        };
        let Some(close) = after[open + 2..].find('}') else {
            out.push_str(after);
            return out;
        };
        out.push_str(after[open + 2..open + 2 + close].trim());
        rest = &after[open + 2 + close + 1..];
    }
    out.push_str(rest);
    out
}

/// `[[label>url]]` / `[[label:url]]` -> `label (url)`; `[[Page]]` -> `Page`.
fn links(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("[[") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let Some(close) = after.find("]]") else {
            out.push_str(&rest[at..]);
            return out;
        };
        let inner = &after[..close];
        let split = inner
            .find('>')
            .or_else(|| inner.find(":http").or_else(|| inner.find(":/")));
        match split {
            Some(i) => out.push_str(&format!("{} ({})", &inner[..i], &inner[i + 1..])),
            None => out.push_str(inner),
        }
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headings_code_quotes_and_links_read_as_markdown() {
        let text = "* Setup\n** Steps\n+ install\n+ run\n{code}\n* not a heading\n{/code}\n{quote}\nsaid so\n{/quote}\n''bold'' &color(red){ hot } see [[Docs>https://example.com/d]] and [[Home]]";
        assert_eq!(
            render(text),
            "# Setup\n## Steps\n1. install\n1. run\n```\n* not a heading\n```\n> said so\nbold hot see Docs (https://example.com/d) and Home"
        );
    }

    #[test]
    fn an_unclosed_code_block_is_closed_and_plain_text_stays() {
        assert_eq!(render("{code}\nx"), "```\nx\n```");
        assert_eq!(render("- a list\n|a|b|"), "- a list\n|a|b|");
        assert!(is_backlog_notation("backlog") && !is_backlog_notation("markdown"));
    }
}
