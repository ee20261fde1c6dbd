//! Chat: conversation windows of consecutive messages.
//!
//! A window closes when the next message comes after a silence longer than
//! `chat_gap_minutes`, would make it hold more than `chat_max_messages` messages, or would not
//! fit the token budget. With `chat_join_sparse`, a silence between two isolated messages (each
//! a silence away from both neighbours) does not close the window: a quiet channel's lone
//! messages share windows instead of making a chunk each. Each message is one `Author: text` line. In a thread, every window after
//! the first starts with the parent message (shortened to a quarter of the budget if long), so
//! each window can be understood alone. A message longer than the budget is split into pieces,
//! each `Author: piece`.
//!
//! Each window's metadata says who spoke and when in the shapes a vector store filters on:
//! `authors` is a list of names (Chroma's `$contains` matches one of them), `start_ts` and
//! `end_ts` are epoch seconds (`$gte`/`$lt`) beside the readable RFC 3339 `start_time` and
//! `end_time`.

use std::collections::HashSet;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use kass_pipeline::{Document, DocumentKind, Message, MetaValue};

use super::{base_metadata, ChunkingConfig, Draft, Sizer};

/// One line of a window: a whole message, or a piece of one too long for any window.
struct Line {
    message: usize,
    text: String,
    tokens: usize,
    /// The message was split; a piece is never repeated as overlap.
    partial: bool,
}

pub(crate) fn chunk(doc: &Document, config: &ChunkingConfig, sizer: &Sizer) -> Vec<Draft> {
    let messages: Vec<&Message> = doc
        .messages
        .iter()
        .filter(|m| !m.text.trim().is_empty())
        .collect();
    if messages.is_empty() {
        return Vec::new();
    }
    let budget = sizer.budget();

    let context = (doc.kind == DocumentKind::Thread).then(|| {
        let parent = messages[0];
        let prefix = format!("{}:", parent.author);
        let share = (budget / 4).saturating_sub(sizer.count(&prefix));
        let line = format!("{prefix} {}", sizer.truncate(parent.text.trim(), share));
        let tokens = sizer.count(&line);
        (line, tokens)
    });
    let context_tokens = context.as_ref().map_or(0, |(_, tokens)| *tokens);
    let line_budget = budget.saturating_sub(context_tokens).max(1);

    let lines = render_lines(&messages, line_budget, sizer);
    let windows = windows(&lines, &messages, config, budget, context_tokens);

    windows
        .into_iter()
        .enumerate()
        .map(|(i, window)| {
            let mut text = String::new();
            let mut tokens = 0;
            if let Some((line, line_tokens)) = &context {
                if i > 0 && lines[window[0]].message != 0 {
                    text.push_str(line);
                    text.push('\n');
                    tokens += line_tokens;
                }
            }
            for (n, &l) in window.iter().enumerate() {
                if n > 0 {
                    text.push('\n');
                }
                text.push_str(&lines[l].text);
                tokens += lines[l].tokens;
            }
            let metadata =
                window_metadata(doc, &messages, window.iter().map(|&l| lines[l].message));
            Draft {
                text,
                metadata,
                tokens: Some(tokens),
            }
        })
        .collect()
}

fn render_lines(messages: &[&Message], line_budget: usize, sizer: &Sizer) -> Vec<Line> {
    let mut lines = Vec::with_capacity(messages.len());
    for (i, message) in messages.iter().enumerate() {
        let text = format!("{}: {}", message.author, message.text.trim());
        let tokens = sizer.count(&text);
        if tokens <= line_budget {
            lines.push(Line {
                message: i,
                text,
                tokens,
                partial: false,
            });
            continue;
        }
        let prefix = format!("{}:", message.author);
        let capacity = line_budget.saturating_sub(sizer.count(&prefix));
        for piece in sizer.split(message.text.trim(), capacity) {
            let text = format!("{prefix} {piece}");
            lines.push(Line {
                message: i,
                tokens: sizer.count(&text),
                text,
                partial: true,
            });
        }
    }
    lines
}

/// Groups line indices into windows.
fn windows(
    lines: &[Line],
    messages: &[&Message],
    config: &ChunkingConfig,
    budget: usize,
    context_tokens: usize,
) -> Vec<Vec<usize>> {
    let gap = Duration::minutes(config.chat_gap_minutes);
    let max_messages = config.chat_max_messages.max(1);
    let overlap = config.chat_overlap_messages.min(max_messages - 1);
    let isolated = if config.chat_join_sparse {
        isolated_messages(messages, gap)
    } else {
        vec![false; messages.len()]
    };
    // A silence closes the window, unless it only separates isolated messages being joined.
    let joins_sparse = |current: &[usize], next: &Line| {
        !next.partial
            && isolated[next.message]
            && current
                .iter()
                .all(|&c| !lines[c].partial && isolated[lines[c].message])
    };

    let mut windows: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut tokens = 0;
    let mut message_count = 0;
    for (l, line) in lines.iter().enumerate() {
        let Some(&last) = current.last() else {
            current.push(l);
            tokens = line.tokens;
            message_count = 1;
            continue;
        };
        let new_message = lines[last].message != line.message;
        let silence = new_message
            && messages[line.message].ts - messages[lines[last].message].ts > gap
            && !joins_sparse(&current, line);
        let context = if windows.is_empty() {
            0
        } else {
            context_tokens
        };
        let fits = context + tokens + line.tokens <= budget
            && message_count + usize::from(new_message) <= max_messages;
        if !silence && fits {
            current.push(l);
            tokens += line.tokens;
            message_count += usize::from(new_message);
            continue;
        }

        let carried = if silence {
            Vec::new()
        } else {
            overlap_lines(
                lines,
                &current,
                overlap,
                line,
                budget.saturating_sub(context_tokens),
                max_messages,
            )
        };
        windows.push(std::mem::replace(&mut current, carried));
        current.push(l);
        tokens = current.iter().map(|&c| lines[c].tokens).sum();
        message_count = current.len();
    }
    if !current.is_empty() {
        windows.push(current);
    }
    windows
}

/// Messages with a silence longer than `gap` before and after them (or the document's edge).
fn isolated_messages(messages: &[&Message], gap: Duration) -> Vec<bool> {
    let far = |a: usize, b: usize| messages[b].ts - messages[a].ts > gap;
    (0..messages.len())
        .map(|i| (i == 0 || far(i - 1, i)) && (i + 1 == messages.len() || far(i, i + 1)))
        .collect()
}

/// The last whole messages of a closed window to repeat before `next`, at most `overlap` of
/// them and only as many as fit with `next`.
fn overlap_lines(
    lines: &[Line],
    closed: &[usize],
    overlap: usize,
    next: &Line,
    budget: usize,
    max_messages: usize,
) -> Vec<usize> {
    let mut carried = Vec::new();
    let mut tokens = next.tokens;
    for &l in closed.iter().rev() {
        let line = &lines[l];
        if carried.len() == overlap
            || carried.len() + 2 > max_messages
            || line.partial
            || line.message == next.message
            || tokens + line.tokens > budget
        {
            break;
        }
        tokens += line.tokens;
        carried.push(l);
    }
    carried.reverse();
    carried
}

fn window_metadata(
    doc: &Document,
    messages: &[&Message],
    window: impl Iterator<Item = usize>,
) -> kass_pipeline::Metadata {
    let mut in_window: Vec<usize> = window.collect();
    in_window.dedup();
    let first = messages[in_window[0]];
    let last = messages[in_window[in_window.len() - 1]];
    let mut seen = HashSet::new();
    let authors: Vec<String> = in_window
        .iter()
        .map(|&m| messages[m].author.as_str())
        .filter(|author| seen.insert(*author))
        .map(str::to_string)
        .collect();

    let mut metadata = base_metadata(doc);
    metadata.insert("start_time".into(), rfc3339(first.ts).into());
    metadata.insert("start_ts".into(), first.ts.timestamp().into());
    metadata.insert("end_time".into(), rfc3339(last.ts).into());
    metadata.insert("end_ts".into(), last.ts.timestamp().into());
    metadata.insert("message_count".into(), in_window.len().into());
    metadata.insert("authors".into(), MetaValue::List(authors));
    metadata
}

fn rfc3339(ts: DateTime<Utc>) -> String {
    ts.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}
