//! The chunk router's strategies on small, hand-written documents, with the real tokenizer.

use chrono::{DateTime, Duration, TimeZone, Utc};
use kass_pipeline::tokenizer::{default_tokenizer_path, TokenCounter};
use kass_pipeline::{Chunk, Document, DocumentKind, Message, MetaValue};
use kass_stages::chunk_router::ChunkRouter;
use kass_stages::chunking::ChunkingConfig;

fn counter() -> TokenCounter {
    let path = default_tokenizer_path();
    TokenCounter::from_file(&path).unwrap_or_else(|e| {
        panic!(
            "the chunking tests need the model's tokenizer at {}: {e}. Run scripts/fetch-model.sh first.",
            path.display()
        )
    })
}

fn router(config: ChunkingConfig) -> ChunkRouter {
    ChunkRouter::new(config, counter())
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 1, 9, 0, 0).unwrap()
}

fn message(author: &str, minutes: i64, text: &str) -> Message {
    Message {
        id: format!("m{minutes}"),
        author: author.into(),
        ts: t0() + Duration::minutes(minutes),
        text: text.into(),
        thread_id: None,
        edited: false,
    }
}

fn chat(kind: DocumentKind, messages: Vec<Message>) -> Document {
    let mut doc = Document::text("slack", "C1/2024-03-01", kind, "");
    doc.text = None;
    doc.messages = messages;
    doc
}

fn meta<'a>(chunk: &'a Chunk, key: &str) -> &'a MetaValue {
    chunk.metadata.get(key).unwrap_or_else(|| {
        panic!(
            "chunk {} has no `{key}`: {:?}",
            chunk.ordinal, chunk.metadata
        )
    })
}

fn fence_lines(text: &str) -> usize {
    text.lines()
        .filter(|l| {
            let l = l.trim_start();
            l.starts_with("```") || l.starts_with("~~~")
        })
        .count()
}

#[test]
fn chat_window_splits_on_a_31_minute_gap_but_not_on_30() {
    let doc = chat(
        DocumentKind::ChatConversation,
        vec![
            message("Ann", 0, "is the deploy done?"),
            message("Bob", 30, "yes, since a minute"),
            message("Ann", 61, "the dashboard is red again"),
            message("Bob", 62, "looking"),
        ],
    );
    let thirty = ChunkingConfig {
        chat_gap_minutes: 30,
        ..ChunkingConfig::default()
    };
    let chunks = router(thirty).chunk(&doc).unwrap();
    let texts: Vec<&str> = chunks.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(
        texts,
        vec![
            "Ann: is the deploy done?\nBob: yes, since a minute",
            "Ann: the dashboard is red again\nBob: looking",
        ]
    );
    assert_eq!(
        meta(&chunks[0], "start_time").as_str(),
        Some("2024-03-01T09:00:00Z")
    );
    assert_eq!(
        meta(&chunks[0], "end_time").as_str(),
        Some("2024-03-01T09:30:00Z")
    );
    // Epoch seconds beside the RFC 3339 times, for range filters.
    assert_eq!(meta(&chunks[0], "start_ts").as_i64(), Some(1_709_283_600));
    assert_eq!(
        meta(&chunks[0], "end_ts").as_i64(),
        Some(1_709_283_600 + 30 * 60)
    );
    assert_eq!(meta(&chunks[1], "message_count").as_i64(), Some(2));
    // A list, so that Chroma's `$contains` finds one author.
    assert_eq!(
        meta(&chunks[1], "authors"),
        &MetaValue::List(vec!["Ann".into(), "Bob".into()])
    );
    assert_eq!(meta(&chunks[1], "kind").as_str(), Some("chat_conversation"));
    assert_eq!(
        chunks.iter().map(|c| c.ordinal).collect::<Vec<_>>(),
        vec![0, 1]
    );
}

#[test]
fn join_sparse_puts_runs_of_isolated_messages_in_one_window_and_leaves_conversations_alone() {
    let doc = chat(
        DocumentKind::ChatConversation,
        vec![
            message("Ann", 0, "standup notes are in the wiki"),
            message("Bob", 90, "the VPN certificate expires friday"),
            message("Cem", 200, "lunch order closes at noon"),
            message("Ann", 300, "is the deploy done?"),
            message("Bob", 302, "yes"),
            message("Cem", 400, "release notes drafted"),
        ],
    );
    let thirty = ChunkingConfig {
        chat_gap_minutes: 30,
        ..ChunkingConfig::default()
    };
    let texts = |config: ChunkingConfig| -> Vec<String> {
        let chunks = router(config).chunk(&doc).unwrap();
        chunks.into_iter().map(|c| c.text).collect()
    };
    assert_eq!(
        texts(thirty.clone()).len(),
        5,
        "one chunk per isolated message without joining"
    );
    assert_eq!(
        texts(ChunkingConfig::default()).len(),
        1,
        "the default gap, a day, never splits a day"
    );
    let joined = texts(ChunkingConfig {
        chat_join_sparse: true,
        ..thirty.clone()
    });
    assert_eq!(
        joined,
        vec![
            "Ann: standup notes are in the wiki\nBob: the VPN certificate expires friday\n\
             Cem: lunch order closes at noon",
            "Ann: is the deploy done?\nBob: yes",
            // Isolated, but after a conversation: nothing sparse to join it to.
            "Cem: release notes drafted",
        ]
    );
    // The budget and the message cap still close a run of isolated messages.
    let capped = texts(ChunkingConfig {
        chat_join_sparse: true,
        chat_max_messages: 2,
        ..thirty
    });
    assert_eq!(
        capped[0],
        "Ann: standup notes are in the wiki\nBob: the VPN certificate expires friday"
    );
    assert_eq!(capped[1], "Cem: lunch order closes at noon");
}

#[test]
fn chat_metadata_copies_the_documents_channel_and_thread() {
    let mut doc = chat(
        DocumentKind::Thread,
        vec![message("Ann", 0, "hello"), message("Bob", 1, "hi")],
    );
    doc.metadata.insert("channel".into(), "ops".into());
    doc.metadata
        .insert("thread_ts".into(), "1709283600.000100".into());
    doc.title = Some("hello".into());
    doc.url = Some("https://example.slack.com/archives/C1/p1".into());
    let chunks = router(ChunkingConfig::default()).chunk(&doc).unwrap();
    assert_eq!(chunks.len(), 1);
    for (key, value) in [
        ("channel", "ops"),
        ("thread_ts", "1709283600.000100"),
        ("title", "hello"),
        ("url", "https://example.slack.com/archives/C1/p1"),
        ("kind", "thread"),
        ("source", "slack"),
    ] {
        assert_eq!(meta(&chunks[0], key).as_str(), Some(value), "{key}");
    }
}

#[test]
fn thread_parent_is_repeated_at_the_top_of_later_windows() {
    let mut messages = vec![message(
        "Ann",
        0,
        "Why does the nightly build fail on arm64?",
    )];
    for i in 1..=7 {
        messages.push(message("Bob", i, &format!("reply number {i}")));
    }
    let doc = chat(DocumentKind::Thread, messages);
    let config = ChunkingConfig {
        chat_max_messages: 3,
        ..ChunkingConfig::default()
    };
    let chunks = router(config).chunk(&doc).unwrap();
    assert_eq!(chunks.len(), 3);
    let parent = "Ann: Why does the nightly build fail on arm64?";
    assert_eq!(
        chunks[0].text,
        format!("{parent}\nBob: reply number 1\nBob: reply number 2")
    );
    assert_eq!(
        chunks[1].text,
        format!("{parent}\nBob: reply number 3\nBob: reply number 4\nBob: reply number 5")
    );
    assert_eq!(
        chunks[2].text,
        format!("{parent}\nBob: reply number 6\nBob: reply number 7")
    );
    // The parent is context, not one of the window's messages.
    assert_eq!(meta(&chunks[1], "message_count").as_i64(), Some(3));
    assert_eq!(
        meta(&chunks[1], "authors"),
        &MetaValue::List(vec!["Bob".into()])
    );
}

#[test]
fn a_long_thread_parent_is_shortened_when_repeated() {
    let long = "the parent explains the whole incident in detail ".repeat(40);
    let doc = chat(
        DocumentKind::Thread,
        vec![
            message("Ann", 0, &long),
            message("Bob", 1, "first reply"),
            message("Bob", 2, "second reply"),
        ],
    );
    let config = ChunkingConfig {
        max_tokens: 128,
        chat_max_messages: 2,
        ..ChunkingConfig::default()
    };
    let counter = counter();
    let chunks = ChunkRouter::new(config, counter.clone())
        .chunk(&doc)
        .unwrap();
    let last = chunks.last().unwrap();
    let (context, rest) = last.text.split_once('\n').unwrap();
    assert!(context.starts_with("Ann: the parent explains"), "{context}");
    assert!(context.ends_with('…'), "{context}");
    assert!(counter.count(context) <= (128 - 2) / 4, "{context}");
    assert_eq!(rest, "Bob: second reply");
    // The parent's own windows carry all of it, in pieces, without the shortened copy.
    assert!(!chunks[0].text.contains('…'));
}

#[test]
fn overlap_repeats_the_last_messages_of_the_previous_window() {
    let messages = (0..5)
        .map(|i| message("Ann", i, &format!("point {i}")))
        .collect();
    let config = ChunkingConfig {
        chat_max_messages: 3,
        chat_overlap_messages: 1,
        ..ChunkingConfig::default()
    };
    let chunks = router(config)
        .chunk(&chat(DocumentKind::ChatConversation, messages))
        .unwrap();
    let texts: Vec<&str> = chunks.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(
        texts,
        vec![
            "Ann: point 0\nAnn: point 1\nAnn: point 2",
            "Ann: point 2\nAnn: point 3\nAnn: point 4",
        ]
    );
}

#[test]
fn a_message_over_the_budget_is_split_into_prefixed_pieces() {
    let long = (0..400)
        .map(|i| format!("word{i}"))
        .collect::<Vec<_>>()
        .join(" ");
    let doc = chat(
        DocumentKind::ChatConversation,
        vec![message("Ann", 0, &long), message("Bob", 1, "ok")],
    );
    let counter = counter();
    let config = ChunkingConfig {
        max_tokens: 64,
        ..ChunkingConfig::default()
    };
    let chunks = ChunkRouter::new(config, counter.clone())
        .chunk(&doc)
        .unwrap();
    assert!(chunks.len() > 5);
    for chunk in &chunks {
        assert!(counter.count(&chunk.text) + counter.special_tokens() <= 64);
        assert!(chunk.text.starts_with("Ann: "), "{}", chunk.text);
    }
    assert!(chunks.last().unwrap().text.ends_with("\nBob: ok"));
}

const RUST_FILE: &str =
    "/// Adds two numbers, the long way round, to make this function worth its own chunk.
fn add(a: u32, b: u32) -> u32 {
    let sum = a + b;
    sum
}

/// Multiplies two numbers, also the long way round, again to fill a chunk of its own.
fn multiply(a: u32, b: u32) -> u32 {
    let product = a * b;
    product
}
fn describe(x: u32) -> String {
    // A brace in a string must not confuse the block finder: \"}\"
    format!(\"{x} is {}\", if x % 2 == 0 { \"even\" } else { \"odd\" })
}
";

#[test]
fn code_chunks_report_exact_line_numbers() {
    let mut doc = Document::text("repo", "src/math.rs", DocumentKind::CodeFile, RUST_FILE);
    doc.metadata.insert("path".into(), "src/math.rs".into());
    let config = ChunkingConfig {
        max_tokens: 66,
        ..ChunkingConfig::default()
    };
    let counter = counter();
    let chunks = ChunkRouter::new(config, counter.clone())
        .chunk(&doc)
        .unwrap();
    let spans: Vec<(i64, i64)> = chunks
        .iter()
        .map(|c| {
            (
                meta(c, "start_line").as_i64().unwrap(),
                meta(c, "end_line").as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(spans, vec![(1, 5), (7, 11), (12, 15)], "{chunks:#?}");
    let lines: Vec<&str> = RUST_FILE.lines().collect();
    for (chunk, (start, end)) in chunks.iter().zip(&spans) {
        let expected = lines[*start as usize - 1..*end as usize].join("\n");
        assert_eq!(chunk.text, expected);
        assert!(counter.count(&chunk.text) + counter.special_tokens() <= 66);
        assert_eq!(meta(chunk, "language").as_str(), Some("rust"));
        assert_eq!(meta(chunk, "path").as_str(), Some("src/math.rs"));
        assert_eq!(meta(chunk, "kind").as_str(), Some("code_file"));
    }
}

#[test]
fn small_code_files_pack_into_one_chunk() {
    let doc = Document::text("repo", "src/math.rs", DocumentKind::CodeFile, RUST_FILE);
    let chunks = router(ChunkingConfig::default()).chunk(&doc).unwrap();
    assert_eq!(chunks.len(), 1);
    assert_eq!(chunks[0].text, RUST_FILE.trim());
    assert_eq!(meta(&chunks[0], "start_line").as_i64(), Some(1));
    assert_eq!(meta(&chunks[0], "end_line").as_i64(), Some(15));
    // Without a `path` entry the id names the file.
    assert_eq!(meta(&chunks[0], "path").as_str(), Some("src/math.rs"));
}

#[test]
fn a_two_thousand_line_fence_yields_balanced_fenced_pieces() {
    let body: Vec<String> = (0..2000)
        .map(|i| format!("    let value_{i} = compute({i}) + offset;"))
        .collect();
    let text = format!(
        "# Generated\n\nThe table below is long.\n\n```rust\n{}\n```\n\nAfter the fence.",
        body.join("\n")
    );
    let mut doc = Document::text("wiki", "generated.md", DocumentKind::Markdown, text);
    doc.title = Some("generated.md".into());
    let counter = counter();
    let chunks = ChunkRouter::new(ChunkingConfig::default(), counter.clone())
        .chunk(&doc)
        .unwrap();
    assert!(chunks.len() > 20, "{} chunks", chunks.len());

    let mut seen = Vec::new();
    for chunk in &chunks {
        assert!(counter.count(&chunk.text) + counter.special_tokens() <= 256);
        assert!(chunk.text.starts_with("generated.md\n\n"), "{}", chunk.text);
        assert_eq!(fence_lines(&chunk.text) % 2, 0, "{}", chunk.text);
        let lines: Vec<&str> = chunk.text.lines().collect();
        if let Some(open) = lines.iter().position(|l| *l == "```rust") {
            assert_eq!(lines.last(), Some(&"```"), "{}", chunk.text);
            seen.extend(
                lines[open + 1..lines.len() - 1]
                    .iter()
                    .map(|l| l.to_string()),
            );
        }
        assert_eq!(meta(chunk, "heading").as_str(), Some("Generated"));
    }
    assert_eq!(seen, body, "fence lines lost, repeated or reordered");
    assert!(chunks.last().unwrap().text.ends_with("After the fence."));
}

#[test]
fn headings_give_the_chunks_their_heading_path() {
    let para = |word: &str| vec![word; 150].join(" ");
    let text = format!(
        "# Install\n\n{}\n\n## Linux\n\n{}\n\n### Arch\n\n{}\n\n## macOS\n\n{}",
        para("house"),
        para("water"),
        para("arch"),
        para("tree")
    );
    let doc = Document::text("docs", "install.md", DocumentKind::Markdown, text);
    let chunks = router(ChunkingConfig::default()).chunk(&doc).unwrap();
    let headings: Vec<&str> = chunks
        .iter()
        .map(|c| meta(c, "heading").as_str().unwrap())
        .collect();
    assert_eq!(
        headings,
        vec![
            "Install",
            "Install > Linux",
            "Install > Linux > Arch",
            "Install > macOS"
        ]
    );
    assert!(chunks[1].text.starts_with("## Linux\n\nwater water"));
}

#[test]
fn issue_title_heads_every_chunk_and_comments_are_prefixed() {
    let mut doc = Document::text(
        "gitlab",
        "group/project#42",
        DocumentKind::Issue,
        "The exporter crashes on empty channels.\n\n".repeat(40),
    );
    doc.title = Some("Exporter crashes".into());
    doc.url = Some("https://gitlab.example.com/group/project/-/issues/42".into());
    doc.messages = vec![
        message("Ann", 0, "I can reproduce it."),
        message("Bob", 60 * 24, "```\nstack trace\n```"),
    ];
    let chunks = router(ChunkingConfig::default()).chunk(&doc).unwrap();
    assert!(chunks.len() >= 3);
    for chunk in &chunks {
        assert!(
            chunk.text.starts_with("Exporter crashes\n\n"),
            "{}",
            chunk.text
        );
        assert_eq!(meta(chunk, "title").as_str(), Some("Exporter crashes"));
        assert_eq!(meta(chunk, "kind").as_str(), Some("issue"));
    }
    assert_eq!(
        chunks.last().unwrap().text,
        "Exporter crashes\n\nAnn (2024-03-01): I can reproduce it.\n\nBob (2024-03-02):\n```\nstack trace\n```"
    );
}

#[test]
fn empty_documents_give_no_chunks() {
    let router = router(ChunkingConfig::default());
    let doc = Document::text("files", "empty.md", DocumentKind::Markdown, "  \n\n ");
    assert!(router.chunk(&doc).unwrap().is_empty());
    let doc = chat(DocumentKind::ChatConversation, vec![message("Ann", 0, " ")]);
    assert!(router.chunk(&doc).unwrap().is_empty());
}

#[test]
fn a_budget_too_small_for_text_is_an_item_error() {
    let config = ChunkingConfig {
        max_tokens: 8,
        ..ChunkingConfig::default()
    };
    assert!(config.validate(2).is_err());
    let doc = Document::text("files", "a.txt", DocumentKind::Text, "hello");
    let err = router(config).chunk(&doc).unwrap_err();
    assert_eq!(err.error_type, "chunk_budget");
}

#[test]
fn config_rejects_unknown_fields_and_fills_defaults() {
    let config: ChunkingConfig = serde_json::from_str(r#"{"max_tokens": 128}"#).unwrap();
    assert_eq!(
        config,
        ChunkingConfig {
            max_tokens: 128,
            ..ChunkingConfig::default()
        }
    );
    assert!(serde_json::from_str::<ChunkingConfig>(r#"{"max_token": 128}"#).is_err());
    assert!(ChunkingConfig::default().validate(2).is_ok());
}

#[test]
fn a_text_documents_title_is_embedded_with_its_text_in_every_chunk() {
    // A BEIR record: the convention embeds `title + " " + text`.
    let mut doc = Document::text(
        "scifact",
        "4983",
        DocumentKind::Text,
        "Alterations of the architecture of cerebral white matter in the developing human brain.",
    );
    doc.title = Some("Microstructural development of human newborn cerebral white matter".into());
    let chunks = router(ChunkingConfig::default()).chunk(&doc).unwrap();
    assert_eq!(chunks.len(), 1);
    assert!(
        chunks[0].text.starts_with(
            "Microstructural development of human newborn cerebral white matter\n\nAlterations"
        ),
        "{}",
        chunks[0].text
    );
    // Without a title nothing is added.
    doc.title = None;
    let plain = router(ChunkingConfig::default()).chunk(&doc).unwrap();
    assert!(plain[0].text.starts_with("Alterations"));
}

/// Slack's ```` ```code ```` puts the first line of code on the fence's opening line. With a
/// long first line, wrapping every piece in the fence lines used to leave room for one token
/// per chunk: a 4 KB message made 562 chunks, each the same opening line. Now the block is
/// split as text: a few chunks, within the budget, no text lost.
#[test]
fn a_fence_whose_opening_line_fills_the_budget_is_split_as_text_not_flooded() {
    let first = (0..60)
        .map(|i| format!("-Wl,-rpath,/usr/local/envs/qiime2-2020.11/lib{i}"))
        .collect::<Vec<_>>()
        .join(" ");
    let body: Vec<String> = (0..12)
        .map(|i| format!("/usr/local/envs/bin/ld: cannot find -lpng{i} in the search path"))
        .collect();
    let text = format!(
        "It fails to link:\n```{first}\n{}```\nAny idea?",
        body.join("\n")
    );
    let doc = Document::text("eval", "t92", DocumentKind::Text, text.clone());
    let counter = counter();
    assert!(
        counter.count(&format!("```{first}")) > 250,
        "the opening line must fill the budget"
    );
    let chunks = ChunkRouter::new(ChunkingConfig::default(), counter.clone())
        .chunk(&doc)
        .unwrap();
    let total = counter.count(&text);
    assert!(
        chunks.len() <= total / 100 + 2,
        "{} chunks for {total} tokens",
        chunks.len()
    );
    for chunk in &chunks {
        assert!(counter.count(&chunk.text) + counter.special_tokens() <= 256);
    }
    let joined: String = chunks
        .iter()
        .map(|c| c.text.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    for line in &body {
        assert!(joined.contains(line.as_str()), "lost: {line}");
    }
    assert!(joined.contains("-lpng11 in the search path"));
}
