//! Prose: markdown, wiki pages, issues, merge requests, comments and plain text.
//!
//! The text is parsed into headings, paragraphs (blank-line separated) and fenced code blocks.
//! A heading starts a section. Whole sections are packed up to the budget; a section over it is
//! split into its blocks, packed the same way; a paragraph over it is cut by text-splitter; a
//! fenced block over it is cut at line boundaries, every piece wrapped in the block's own
//! opening and closing fence lines, so no chunk holds half a fence.
//!
//! An issue's, merge request's, wiki page's or markdown file's title heads every chunk, and the
//! budget for the rest shrinks by its tokens. The document's messages are its comments, each
//! `Author (YYYY-MM-DD): text`, after the body: whole comments are packed together, a comment
//! over the budget is split alone, each piece with the same `Author (date):` prefix.

use kass_pipeline::{Document, DocumentKind, Message};

use super::{base_metadata, metadata_path, pack, Draft, Sizer};

/// One markdown block. Rendered blocks are joined by a blank line.
#[derive(Debug, Clone, PartialEq)]
enum Block {
    Heading {
        level: usize,
        title: String,
        line: String,
    },
    Paragraph(String),
    Fence {
        open: String,
        body: Vec<String>,
        close: String,
    },
}

impl Block {
    fn render(&self) -> String {
        match self {
            Block::Heading { line, .. } => line.clone(),
            Block::Paragraph(text) => text.clone(),
            Block::Fence { open, body, close } => {
                let mut text = String::with_capacity(
                    open.len() + close.len() + body.iter().map(|l| l.len() + 1).sum::<usize>() + 1,
                );
                text.push_str(open);
                for line in body {
                    text.push('\n');
                    text.push_str(line);
                }
                text.push('\n');
                text.push_str(close);
                text
            }
        }
    }
}

/// Blocks of `text`; headings are recognised only if `headings` (plain text has none).
fn parse(text: &str, headings: bool) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut paragraph: Vec<&str> = Vec::new();
    let mut fence: Option<(u8, usize, String, Vec<String>)> = None;
    let flush = |paragraph: &mut Vec<&str>, blocks: &mut Vec<Block>| {
        if !paragraph.is_empty() {
            blocks.push(Block::Paragraph(paragraph.join("\n")));
            paragraph.clear();
        }
    };
    for line in text.lines() {
        if let Some((ch, len, open, body)) = &mut fence {
            if is_fence_close(line, *ch, *len) {
                blocks.push(Block::Fence {
                    open: std::mem::take(open),
                    body: std::mem::take(body),
                    close: line.trim().to_string(),
                });
                fence = None;
            } else {
                body.push(line.to_string());
            }
            continue;
        }
        if let Some((ch, len)) = fence_open(line) {
            flush(&mut paragraph, &mut blocks);
            fence = Some((ch, len, line.trim().to_string(), Vec::new()));
        } else if line.trim().is_empty() {
            flush(&mut paragraph, &mut blocks);
        } else if let Some((level, title)) = headings.then(|| heading(line)).flatten() {
            flush(&mut paragraph, &mut blocks);
            blocks.push(Block::Heading {
                level,
                title,
                line: line.trim().to_string(),
            });
        } else {
            paragraph.push(line);
        }
    }
    flush(&mut paragraph, &mut blocks);
    if let Some((ch, len, open, body)) = fence {
        // An unclosed fence runs to the end of the text; close it so the chunk stays balanced.
        blocks.push(Block::Fence {
            open,
            body,
            close: String::from_utf8(vec![ch; len]).unwrap_or_default(),
        });
    }
    blocks
}

/// Up to three spaces of indentation, as CommonMark allows before fences and headings.
fn unindent(line: &str) -> Option<&str> {
    let rest = line.trim_start_matches(' ');
    (line.len() - rest.len() <= 3).then_some(rest)
}

/// The fence character and length if `line` opens a fenced code block.
fn fence_open(line: &str) -> Option<(u8, usize)> {
    let rest = unindent(line)?;
    let ch = *rest.as_bytes().first()?;
    if ch != b'`' && ch != b'~' {
        return None;
    }
    let len = rest.bytes().take_while(|&b| b == ch).count();
    let info = &rest[len..];
    (len >= 3 && !(ch == b'`' && info.contains('`'))).then_some((ch, len))
}

fn is_fence_close(line: &str, ch: u8, len: usize) -> bool {
    let Some(rest) = unindent(line) else {
        return false;
    };
    let run = rest.bytes().take_while(|&b| b == ch).count();
    run >= len && rest[run..].trim().is_empty()
}

/// The level and text of an ATX heading.
fn heading(line: &str) -> Option<(usize, String)> {
    let rest = unindent(line)?;
    let level = rest.bytes().take_while(|&b| b == b'#').count();
    let after = &rest[level..];
    if !(1..=6).contains(&level) || !(after.is_empty() || after.starts_with([' ', '\t'])) {
        return None;
    }
    let title = after.trim().trim_end_matches('#').trim_end();
    Some((level, title.to_string()))
}

/// A heading and the blocks up to the next heading.
struct Section {
    /// `Install > Linux`; empty before the first heading.
    path: String,
    blocks: Vec<Block>,
    tokens: Vec<usize>,
}

fn sections(blocks: Vec<Block>, sizer: &Sizer) -> Vec<Section> {
    let mut sections: Vec<Section> = Vec::new();
    let mut trail: Vec<(usize, String)> = Vec::new();
    for block in blocks {
        if let Block::Heading { level, title, .. } = &block {
            while trail.last().is_some_and(|(l, _)| l >= level) {
                trail.pop();
            }
            trail.push((*level, title.clone()));
            let path = trail
                .iter()
                .map(|(_, t)| t.as_str())
                .collect::<Vec<_>>()
                .join(" > ");
            sections.push(Section {
                path,
                blocks: Vec::new(),
                tokens: Vec::new(),
            });
        } else if sections.is_empty() {
            sections.push(Section {
                path: String::new(),
                blocks: Vec::new(),
                tokens: Vec::new(),
            });
        }
        let section = sections.last_mut().expect("a section was just ensured");
        section.tokens.push(sizer.count(&block.render()));
        section.blocks.push(block);
    }
    sections
}

fn join_blocks<'a>(blocks: impl IntoIterator<Item = &'a Block>) -> String {
    blocks
        .into_iter()
        .map(Block::render)
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// Packs blocks into texts of at most `budget` tokens, cutting only blocks that alone exceed it.
fn pack_blocks(blocks: &[Block], tokens: &[usize], budget: usize, sizer: &Sizer) -> Vec<String> {
    let mut out = Vec::new();
    for range in pack(tokens, budget) {
        if range.len() > 1 || tokens[range.start] <= budget {
            out.push(join_blocks(&blocks[range]));
            continue;
        }
        match &blocks[range.start] {
            Block::Heading { line: text, .. } | Block::Paragraph(text) => {
                out.extend(sizer.split(text, budget));
            }
            Block::Fence { open, body, close } => {
                out.extend(split_fence(open, body, close, budget, sizer));
            }
        }
    }
    out
}

/// Pieces of a fenced block at line boundaries, each wrapped in the block's fence lines.
///
/// When the fence lines themselves take half the budget or more, wrapping every piece in them
/// would repeat them in a flood of chunks with almost nothing else (Slack's ```` ```code ````
/// puts a whole first line of code on the opening line: one 650-character line once made 562
/// chunks of a 4 KB message). The block is then split as plain text instead.
fn split_fence(
    open: &str,
    body: &[String],
    close: &str,
    budget: usize,
    sizer: &Sizer,
) -> Vec<String> {
    let fence_tokens = sizer.count(open) + sizer.count(close);
    if fence_tokens * 2 >= budget {
        let mut text = open.to_string();
        for line in body {
            text.push('\n');
            text.push_str(line);
        }
        text.push('\n');
        text.push_str(close);
        return sizer.split(&text, budget);
    }
    let capacity = budget - fence_tokens;
    let lines: Vec<&str> = body.iter().map(String::as_str).collect();
    let tokens = sizer.count_lines(&lines);
    let wrap = |inner: &str| format!("{open}\n{inner}\n{close}");
    let mut out = Vec::new();
    for range in pack(&tokens, capacity) {
        if range.len() > 1 || tokens[range.start] <= capacity {
            out.push(wrap(&lines[range].join("\n")));
        } else {
            for piece in sizer.split(lines[range.start], capacity) {
                out.push(wrap(&piece));
            }
        }
    }
    out
}

/// The title carried at the top of every chunk, if this kind of document carries one. A
/// `text` document's title is embedded with its text, as BEIR's convention (`title + " " +
/// text`) has it: WordPiece splits on whitespace, so the blank line between them makes the same
/// tokens as the space.
fn carried_title(doc: &Document) -> Option<String> {
    match doc.kind {
        DocumentKind::Issue
        | DocumentKind::MergeRequest
        | DocumentKind::Wiki
        | DocumentKind::Text => doc.title.clone(),
        DocumentKind::Markdown => doc.title.clone().or_else(|| {
            let path = metadata_path(doc)?;
            path.rsplit(['/', '\\']).next().map(str::to_string)
        }),
        _ => None,
    }
    .filter(|t| !t.trim().is_empty())
}

pub(crate) fn chunk(doc: &Document, sizer: &Sizer) -> Vec<Draft> {
    let budget = sizer.budget();
    let title = carried_title(doc).map(|t| sizer.truncate(t.trim(), budget / 4));
    let body_budget = budget
        .saturating_sub(title.as_deref().map_or(0, |t| sizer.count(t)))
        .max(1);

    let mut base = base_metadata(doc);
    if let Some(title) = &title {
        base.entry("title".into())
            .or_insert_with(|| title.as_str().into());
    }
    let title_tokens = title.as_deref().map_or(0, |t| sizer.count(t));
    let mut drafts = Vec::new();
    // `body_tokens`: the body's tokens when summed from its blocks.
    let mut push = |body: String, heading: &str, body_tokens: Option<usize>| {
        let mut metadata = base.clone();
        if !heading.is_empty() {
            metadata.insert("heading".into(), heading.into());
        }
        let text = match &title {
            Some(title) => format!("{title}\n\n{body}"),
            None => body,
        };
        let tokens = body_tokens.map(|b| b + title_tokens);
        drafts.push(Draft {
            text,
            metadata,
            tokens,
        });
    };

    let headings = doc.kind != DocumentKind::Text;
    let blocks = parse(doc.text.as_deref().unwrap_or_default(), headings);
    let sections = sections(blocks, sizer);
    let sizes: Vec<usize> = sections.iter().map(|s| s.tokens.iter().sum()).collect();
    for range in pack(&sizes, body_budget) {
        let first = &sections[range.start];
        if range.len() > 1 || sizes[range.start] <= body_budget {
            let tokens = sizes[range.clone()].iter().sum();
            let body = join_blocks(sections[range].iter().flat_map(|s| &s.blocks));
            push(body, &first.path, Some(tokens));
        } else {
            for body in pack_blocks(&first.blocks, &first.tokens, body_budget, sizer) {
                push(body, &first.path, None);
            }
        }
    }

    for body in comments(&doc.messages, body_budget, sizer) {
        push(body, "", None);
    }
    drafts
}

/// The comments rendered and packed: whole comments together, a long one alone in pieces.
fn comments(messages: &[Message], budget: usize, sizer: &Sizer) -> Vec<String> {
    struct Comment {
        prefix: String,
        prefix_tokens: usize,
        blocks: Vec<Block>,
        tokens: Vec<usize>,
    }
    let comments: Vec<Comment> = messages
        .iter()
        .filter(|m| !m.text.trim().is_empty())
        .map(|m| {
            let prefix = format!("{} ({}):", m.author, m.ts.format("%Y-%m-%d"));
            let blocks = parse(&m.text, false);
            Comment {
                prefix_tokens: sizer.count(&prefix),
                prefix,
                tokens: blocks.iter().map(|b| sizer.count(&b.render())).collect(),
                blocks,
            }
        })
        .collect();
    let render = |prefix: &str, body: &str| {
        if fence_open(body.lines().next().unwrap_or_default()).is_some() {
            format!("{prefix}\n{body}")
        } else {
            format!("{prefix} {body}")
        }
    };

    let sizes: Vec<usize> = comments
        .iter()
        .map(|c| c.prefix_tokens + c.tokens.iter().sum::<usize>())
        .collect();
    let mut out = Vec::new();
    for range in pack(&sizes, budget) {
        if range.len() > 1 || sizes[range.start] <= budget {
            let texts: Vec<String> = comments[range]
                .iter()
                .map(|c| render(&c.prefix, &join_blocks(&c.blocks)))
                .collect();
            out.push(texts.join("\n\n"));
        } else {
            let c = &comments[range.start];
            let capacity = budget.saturating_sub(c.prefix_tokens).max(1);
            for body in pack_blocks(&c.blocks, &c.tokens, capacity, sizer) {
                out.push(render(&c.prefix, &body));
            }
        }
    }
    out
}

/// Splits a text that turned out over the budget after all (a tokenizer whose counts do not add
/// up across whitespace), with ever smaller capacities and without cutting fences open.
pub(crate) fn resplit(text: &str, sizer: &Sizer) -> Vec<String> {
    resplit_within(text, sizer, sizer.budget() * 3 / 4, 0)
}

fn resplit_within(text: &str, sizer: &Sizer, capacity: usize, depth: usize) -> Vec<String> {
    let blocks = parse(text, false);
    let tokens: Vec<usize> = blocks.iter().map(|b| sizer.count(&b.render())).collect();
    let mut out = Vec::new();
    for piece in pack_blocks(&blocks, &tokens, capacity.max(1), sizer) {
        if depth >= 3 || sizer.count(&piece) <= sizer.budget() {
            out.push(piece);
        } else {
            out.extend(resplit_within(&piece, sizer, capacity * 3 / 4, depth + 1));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parser_finds_headings_paragraphs_and_fences_but_no_headings_inside_fences() {
        let text = "# Title\nintro line\nmore\n\n```rust\n# not a heading\n\nfn x() {}\n```\n## Sub ##\n~~~\nunclosed";
        let blocks = parse(text, true);
        assert_eq!(
            blocks,
            vec![
                Block::Heading {
                    level: 1,
                    title: "Title".into(),
                    line: "# Title".into()
                },
                Block::Paragraph("intro line\nmore".into()),
                Block::Fence {
                    open: "```rust".into(),
                    body: vec!["# not a heading".into(), "".into(), "fn x() {}".into()],
                    close: "```".into()
                },
                Block::Heading {
                    level: 2,
                    title: "Sub".into(),
                    line: "## Sub ##".into()
                },
                Block::Fence {
                    open: "~~~".into(),
                    body: vec!["unclosed".into()],
                    close: "~~~".into()
                },
            ]
        );
    }

    #[test]
    fn fences_need_three_marks_and_at_most_three_spaces() {
        assert_eq!(fence_open("``not"), None);
        assert_eq!(fence_open("    ```"), None);
        assert_eq!(fence_open("   ````py"), Some((b'`', 4)));
        assert!(!is_fence_close("```", b'`', 4));
        assert!(is_fence_close("~~~~ ", b'~', 3));
        assert_eq!(heading("#hashtag"), None);
        assert_eq!(heading("####### seven"), None);
    }
}
