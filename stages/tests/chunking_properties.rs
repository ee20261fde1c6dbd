//! Properties every chunking strategy keeps, on generated documents and the real tokenizer:
//! the token bound, balanced fences, full coverage in order, and deterministic ids.

use std::collections::HashMap;
use std::sync::OnceLock;

use chrono::{Duration, TimeZone, Utc};
use kass_pipeline::tokenizer::{default_tokenizer_path, TokenCounter};
use kass_pipeline::{Chunk, Document, DocumentKind, Message};
use kass_stages::chunk_router::ChunkRouter;
use kass_stages::chunking::ChunkingConfig;
use proptest::prelude::*;

fn counter() -> &'static TokenCounter {
    static COUNTER: OnceLock<TokenCounter> = OnceLock::new();
    COUNTER.get_or_init(|| {
        let path = default_tokenizer_path();
        TokenCounter::from_file(&path).unwrap_or_else(|e| {
            panic!(
                "the chunking tests need the model's tokenizer at {}: {e}. Run scripts/fetch-model.sh first.",
                path.display()
            )
        })
    })
}

fn chunk(doc: &Document, config: ChunkingConfig) -> Vec<Chunk> {
    ChunkRouter::new(config, counter().clone())
        .chunk(doc)
        .expect("chunking never fails on a valid config")
}

fn config(max_tokens: usize) -> ChunkingConfig {
    ChunkingConfig {
        max_tokens,
        ..ChunkingConfig::default()
    }
}

/// Words the BERT vocabulary has whole, one token each, so swapping one for another keeps
/// every count.
const VOCAB: &[&str] = &[
    "the", "cat", "house", "water", "tree", "build", "server", "error", "fix", "code", "test",
    "run", "data", "user", "file", "open", "close", "read", "write", "time", "day", "team", "plan",
    "issue", "review", "log", "query", "green", "red", "blue",
];

const ODD: &[&str] = &[
    "!",
    "?",
    "(x)",
    "[1]",
    "{y}",
    "a.b",
    "c,d",
    "e-f",
    "\"q\"",
    "'s",
    "#tag",
    "50%",
    "$9",
    "&",
    "*",
    "+",
    "<p>",
    "=",
    "@me",
    "|",
    "ümlaut",
    "日本語",
    "naïve",
    "😀",
    "x_y",
    "http://a.io/b",
];

const AUTHORS: &[&str] = &["Ann", "Bob", "Cy", "Dee", "Eve"];

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(VOCAB).prop_map(str::to_string),
        3 => "[a-z0-9]{1,14}",
        1 => prop::sample::select(ODD).prop_map(str::to_string),
    ]
}

fn words(n: std::ops::Range<usize>) -> impl Strategy<Value = String> {
    prop::collection::vec(word(), n).prop_map(|w| w.join(" "))
}

/// Short text mostly, sometimes a line or text far over any budget.
fn long_or_short(short: usize, long: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        8 => words(1..short),
        1 => words(long / 2..long),
    ]
}

fn markdown() -> impl Strategy<Value = String> {
    let heading = (1usize..=6, words(1..6)).prop_map(|(l, t)| format!("{} {t}", "#".repeat(l)));
    let paragraph = prop::collection::vec(long_or_short(25, 600), 1..4).prop_map(|l| l.join("\n"));
    let fence = (
        prop::sample::select(&["```", "~~~", "````"][..]),
        prop::sample::select(&["", "rust", "python", "sh"][..]),
        prop_oneof![
            4 => prop::collection::vec(long_or_short(12, 400), 1..20),
            1 => prop::collection::vec(words(0..12), 100..400),
        ],
        any::<bool>(),
    )
        .prop_map(|(mark, info, lines, closed)| {
            let close = if closed { mark } else { "" };
            format!("{mark}{info}\n{}\n{close}", lines.join("\n"))
        });
    prop::collection::vec(prop_oneof![2 => heading, 4 => paragraph, 2 => fence], 1..16)
        .prop_map(|blocks| blocks.join("\n\n"))
}

fn messages() -> impl Strategy<Value = Vec<Message>> {
    let message = (
        prop::sample::select(AUTHORS),
        prop_oneof![6 => 0i64..5, 2 => 5i64..40, 1 => 25i64..90],
        prop::collection::vec(long_or_short(30, 700), 1..3),
    );
    prop::collection::vec(message, 1..60).prop_map(|messages| {
        let mut ts = Utc.with_ymd_and_hms(2024, 5, 1, 8, 0, 0).unwrap();
        messages
            .into_iter()
            .enumerate()
            .map(|(i, (author, gap, lines))| {
                ts += Duration::minutes(gap);
                Message {
                    id: format!("m{i}"),
                    author: author.to_string(),
                    ts,
                    text: lines.join("\n"),
                    thread_id: None,
                    edited: false,
                }
            })
            .collect()
    })
}

fn rust_file() -> impl Strategy<Value = String> {
    let line = long_or_short(14, 400).prop_map(|w| format!("    let x = {w};"));
    let function = (
        "[a-z]{1,10}",
        prop::collection::vec(prop_oneof![8 => line, 1 => Just(String::new())], 0..60),
    )
        .prop_map(|(name, body)| format!("fn {name}() {{\n{}\n}}", body.join("\n")));
    let item = prop_oneof![
        4 => function,
        1 => words(1..10).prop_map(|w| format!("// {w}")),
        1 => "[a-z]{1,8}".prop_map(|m| format!("use {m};")),
        1 => words(1..8).prop_map(|w| format!("struct S {{ f: u8 }} // {w}")),
    ];
    prop::collection::vec((item, any::<bool>()), 1..30).prop_map(|items| {
        items
            .into_iter()
            .map(|(item, blank)| if blank { format!("{item}\n") } else { item })
            .collect::<Vec<_>>()
            .join("\n")
    })
}

fn chat_doc(kind: DocumentKind, messages: Vec<Message>) -> Document {
    let mut doc = Document::text("chat", "C1/2024-05-01", kind, "");
    doc.text = None;
    doc.messages = messages;
    doc
}

fn is_fence_line(line: &str) -> bool {
    let line = line.trim_start();
    line.starts_with("```") || line.starts_with("~~~")
}

/// Checks the two properties every chunk of every strategy has.
fn assert_bounded_and_balanced(chunks: &[Chunk], max_tokens: usize) -> Result<(), TestCaseError> {
    for (i, chunk) in chunks.iter().enumerate() {
        prop_assert_eq!(chunk.ordinal, i);
        prop_assert!(!chunk.text.is_empty() && chunk.text.trim() == chunk.text);
        let tokens = counter().count(&chunk.text) + counter().special_tokens();
        prop_assert!(
            tokens <= max_tokens,
            "chunk {} has {} tokens > {}:\n{}",
            i,
            tokens,
            max_tokens,
            chunk.text
        );
        prop_assert!(
            !leaves_fence_open(&chunk.text),
            "chunk {} leaves a fence open:\n{}",
            i,
            chunk.text
        );
    }
    Ok(())
}

/// Whitespace-separated words, leaving out fence lines, in order.
fn body_words(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !is_fence_line(l))
        .flat_map(str::split_whitespace)
        .map(str::to_string)
        .collect()
}

fn char_counts(words: &[String]) -> HashMap<char, usize> {
    let mut counts = HashMap::new();
    for c in words.iter().flat_map(|w| w.chars()) {
        *counts.entry(c).or_default() += 1;
    }
    counts
}

/// The chunks' words, with what a strategy adds (author prefixes, titles) already removed, must
/// hold exactly the input's non-whitespace characters in the input's order: nothing lost,
/// repeated or reordered. (Characters, not words: text-splitter may cut `c,d` between `c` and
/// `,d`.)
fn assert_covers_in_order(input: Vec<String>, output: Vec<String>) -> Result<(), TestCaseError> {
    prop_assert_eq!(char_counts(&input), char_counts(&output));
    prop_assert_eq!(input.concat(), output.concat());
    Ok(())
}

/// Whether a fenced block is left open at the end of `text`, by CommonMark's rules: a fence
/// closes only with its own character, at least as many times.
fn leaves_fence_open(text: &str) -> bool {
    let mut open: Option<(char, usize)> = None;
    for line in text.lines() {
        let line = line.trim_start();
        let Some(mark) = line.chars().next().filter(|c| *c == '`' || *c == '~') else {
            continue;
        };
        let run = line.chars().take_while(|c| *c == mark).count();
        if run < 3 {
            continue;
        }
        match open {
            None => open = Some((mark, run)),
            Some((m, n)) if m == mark && run >= n && line[run..].trim().is_empty() => open = None,
            Some(_) => {}
        }
    }
    open.is_some()
}

fn chat_output_words(chunks: &[Chunk]) -> Vec<String> {
    let prefixes: Vec<String> = AUTHORS.iter().map(|a| format!("{a}:")).collect();
    chunks
        .iter()
        .flat_map(|c| body_words(&c.text))
        .filter(|w| !prefixes.contains(w))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn markdown_chunks_are_bounded_balanced_and_complete(
        text in markdown(),
        max_tokens in prop::sample::select(&[64usize, 256][..]),
    ) {
        let doc = Document::text("docs", "guide.md", DocumentKind::Markdown, text.clone());
        let chunks = chunk(&doc, config(max_tokens));
        assert_bounded_and_balanced(&chunks, max_tokens)?;
        let output = chunks.iter().flat_map(|c| body_words(&c.text)).collect();
        assert_covers_in_order(body_words(&text), output)?;
    }

    #[test]
    fn issue_chunks_carry_the_title_and_keep_every_comment(
        text in markdown(),
        comments in messages(),
        title in words(1..30),
        max_tokens in prop::sample::select(&[64usize, 256][..]),
    ) {
        let mut doc = Document::text("gitlab", "g/p#1", DocumentKind::Issue, text.clone());
        doc.title = Some(title.clone());
        doc.messages = comments.clone();
        let chunks = chunk(&doc, config(max_tokens));
        assert_bounded_and_balanced(&chunks, max_tokens)?;

        let mut output = Vec::new();
        let mut head: Option<&str> = None;
        for c in &chunks {
            let (first, body) = c.text.split_once("\n\n").unwrap_or((&c.text, ""));
            prop_assert!(head.is_none_or(|h| h == first), "title differs: {:?}", first);
            head = Some(first);
            output.extend(body_words(body));
        }
        // The title is carried whole unless it had to be shortened.
        let head = head.unwrap_or_default();
        prop_assert!(head == title || head.ends_with('…'), "{:?}", head);

        let date_prefixes: Vec<String> = comments
            .iter()
            .map(|m| format!("({}):", m.ts.format("%Y-%m-%d")))
            .collect();
        let mut stripped = Vec::new();
        for w in output {
            if date_prefixes.contains(&w) && stripped.last().is_some_and(|a: &String| AUTHORS.contains(&a.as_str())) {
                stripped.pop();
            } else {
                stripped.push(w);
            }
        }
        let mut input = body_words(&text);
        for m in &comments {
            input.extend(body_words(&m.text));
        }
        assert_covers_in_order(input, stripped)?;
    }

    #[test]
    fn chat_chunks_are_bounded_and_keep_every_message_in_order(
        messages in messages(),
        max_tokens in prop::sample::select(&[64usize, 256][..]),
        chat_join_sparse in any::<bool>(),
        chat_gap_minutes in prop::sample::select(&[30i64, 24 * 60][..]),
    ) {
        let doc = chat_doc(DocumentKind::ChatConversation, messages.clone());
        let chunks = chunk(&doc, ChunkingConfig { chat_join_sparse, chat_gap_minutes, ..config(max_tokens) });
        assert_bounded_and_balanced(&chunks, max_tokens)?;
        let input = messages.iter().flat_map(|m| body_words(&m.text)).collect();
        assert_covers_in_order(input, chat_output_words(&chunks))?;
        let counted: i64 = chunks.iter().map(|c| c.metadata["message_count"].as_i64().unwrap()).sum();
        prop_assert!(counted >= messages.len() as i64);
    }

    #[test]
    fn thread_and_overlap_chunks_are_bounded_and_lose_nothing(
        messages in messages(),
        max_tokens in prop::sample::select(&[64usize, 256][..]),
        overlap in 0usize..3,
    ) {
        let doc = chat_doc(DocumentKind::Thread, messages.clone());
        let config = ChunkingConfig {
            max_tokens,
            chat_max_messages: 6,
            chat_overlap_messages: overlap,
            ..ChunkingConfig::default()
        };
        let chunks = chunk(&doc, config);
        assert_bounded_and_balanced(&chunks, max_tokens)?;
        // The parent's context and the overlap only add: every input character is still there.
        let input = char_counts(&messages.iter().flat_map(|m| body_words(&m.text)).collect::<Vec<_>>());
        let output = char_counts(&chat_output_words(&chunks));
        for (c, n) in input {
            prop_assert!(output.get(&c).copied().unwrap_or(0) >= n, "lost {:?}", c);
        }
    }

    #[test]
    fn code_chunks_are_bounded_complete_and_their_lines_exact(
        text in rust_file(),
        max_tokens in prop::sample::select(&[64usize, 256][..]),
    ) {
        let doc = Document::text("repo", "src/gen.rs", DocumentKind::CodeFile, text.clone());
        let chunks = chunk(&doc, config(max_tokens));
        assert_bounded_and_balanced(&chunks, max_tokens)?;
        let output = chunks.iter().flat_map(|c| body_words(&c.text)).collect();
        assert_covers_in_order(body_words(&text), output)?;

        let lines: Vec<&str> = text.lines().collect();
        let mut previous_end = 0;
        for c in &chunks {
            let start = c.metadata["start_line"].as_i64().unwrap() as usize;
            let end = c.metadata["end_line"].as_i64().unwrap() as usize;
            prop_assert!(start >= previous_end.max(1) && start <= end && end <= lines.len());
            let span = lines[start - 1..end].join("\n");
            if start == end && span.trim() != c.text {
                // A piece of a line longer than the budget.
                prop_assert!(span.contains(&c.text), "{:?} not in line {}", c.text, start);
            } else {
                prop_assert_eq!(span.trim(), c.text.as_str());
            }
            previous_end = end;
        }
    }

    #[test]
    fn chunk_ids_are_deterministic_and_change_only_where_a_message_changed(
        messages in messages(),
        max_tokens in prop::sample::select(&[64usize, 256][..]),
        pick in any::<prop::sample::Index>(),
        replacement in prop::sample::select(VOCAB),
    ) {
        // Short messages only, so windows partition them and `message_count` locates each one.
        let mut messages: Vec<Message> = messages;
        for m in &mut messages {
            m.text = m.text.split_whitespace().take(6).collect::<Vec<_>>().join(" ");
        }
        let doc = chat_doc(DocumentKind::ChatConversation, messages.clone());
        let before = chunk(&doc, config(max_tokens));
        let again = chunk(&doc, config(max_tokens));
        prop_assert_eq!(&before, &again);
        let counted: i64 = before.iter().map(|c| c.metadata["message_count"].as_i64().unwrap()).sum();
        prop_assert_eq!(counted as usize, messages.len(), "a message was split after all");

        // Replace one word of one message by another one-token word: no window boundary moves.
        let k = pick.index(messages.len());
        let first = messages[k].text.split_whitespace().next().unwrap().to_string();
        prop_assume!(counter().count(&first) == 1 && first != replacement);
        messages[k].text = messages[k].text.replacen(&first, replacement, 1);
        let after = chunk(&chat_doc(DocumentKind::ChatConversation, messages), config(max_tokens));
        prop_assert_eq!(before.len(), after.len());

        let mut first_message = 0;
        for (b, a) in before.iter().zip(&after) {
            let count = b.metadata["message_count"].as_i64().unwrap() as usize;
            let holds_k = (first_message..first_message + count).contains(&k);
            prop_assert_eq!(b.id != a.id, holds_k, "window {} (messages {}..{})", b.ordinal, first_message, first_message + count);
            first_message += count;
        }
    }
}

#[test]
fn the_replacement_vocabulary_is_one_token_per_word() {
    for word in VOCAB {
        assert_eq!(counter().count(word), 1, "{word}");
    }
}
