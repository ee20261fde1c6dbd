//! The token count's shortcut for BERT WordPiece ([`TokenCounter::count`]) against the
//! tokenizer itself ([`TokenCounter::count_with_tokenizer`]): equal on generated text that mixes
//! everything the shortcut must hand over (accents, CJK, emoji, control characters, Unicode
//! spaces, added tokens such as `[CLS]`, words past the 100-character limit, unknown pieces),
//! and on real text: this repository's README and Slack fixture, and the shared real Slack
//! export (through the project's shared-data guard: a loud `SKIPPED` in a user's clone, a
//! failure in CI, which sets `KASS_REQUIRE_SHARED_DATA=1`).

use std::path::Path;

#[path = "../../tests/support/test_data.rs"]
mod test_data;

use kass_pipeline::tokenizer::{default_tokenizer_path, TokenCounter};
use proptest::prelude::*;

/// The counter, loaded once: parsing the tokenizer's file for each of 2,000 generated cases
/// took minutes.
fn counter() -> &'static TokenCounter {
    static COUNTER: std::sync::OnceLock<TokenCounter> = std::sync::OnceLock::new();
    COUNTER.get_or_init(|| {
        let path = default_tokenizer_path();
        TokenCounter::from_file(&path).unwrap_or_else(|e| {
            panic!(
                "needs the model's tokenizer at {}: {e} (scripts/fetch-model.sh)",
                path.display()
            )
        })
    })
}

const PIECES: &[&str] = &[
    "the", "The", "UNAFFABLE", "runnings", "x86_64", "gnu++11", "-Wl,-O2",
    "https://r-project.org/a?b=c&d", "don't", "e.g.", "...", "[CLS]", "[MASK", "SEP]", "[",
    "café", "naïve", "Ünïcödé", "日本語", "テスト", "한국어", "😀", "👍🏽", "\u{00a0}", "\u{2003}",
    "\u{200b}", "\u{000b}", "\u{000c}", "\u{0000}", "\u{fffd}", "\u{0301}", "a\u{0301}", "\t",
    "\n", "\r\n", " ", "  ", "12345", "3.14", "#rstats", "@heather", ":pray:", "<@U123|x>",
    "`code`", "```", "zzqxjv", "\u{7f}", "~", "^_^", "C++", "Ω", "ß", "İ",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "qwertyuiopasdfghjklzxcvbnmqwertyuiopasdfghjklzxcvbnmqwertyuiopasdfghjklzxcvbnmqwertyuiopasdfghjklzxcvbnmqwertyuiopasdfghjklzxcvbnmqwertyuiopasdfghjklzxcvbnm",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]
    #[test]
    fn shortcut_equals_the_tokenizer_on_generated_text(
        picks in prop::collection::vec((0..PIECES.len(), prop::bool::ANY), 0..40)
    ) {
        let counter = counter();
        let mut text = String::new();
        for (i, glue) in picks {
            text.push_str(PIECES[i]);
            if glue {
                text.push(' ');
            }
        }
        prop_assert_eq!(counter.count(&text), counter.count_with_tokenizer(&text), "text {:?}", text);
    }
}

/// The `text` of every message in the Slack day files under `dir`.
fn texts_under(dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            texts_under(&path, out);
        } else if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&path).unwrap();
            if let Ok(serde_json::Value::Array(items)) = serde_json::from_str(&text) {
                out.extend(
                    items
                        .iter()
                        .filter_map(|m| m.get("text")?.as_str().map(str::to_string)),
                );
            }
        }
    }
}

/// Every text must count the same both ways.
fn assert_counts_agree(texts: &[String]) {
    let counter = counter();
    let mut tokens = 0;
    for text in texts {
        assert_eq!(
            counter.count(text),
            counter.count_with_tokenizer(text),
            "count differs for {text:?}"
        );
        tokens += counter.count(text);
    }
    eprintln!(
        "{} texts, {tokens} tokens: the shortcut agreed on all",
        texts.len()
    );
}

#[test]
fn shortcut_equals_the_tokenizer_on_the_projects_own_text() {
    let mut texts: Vec<String> =
        std::fs::read_to_string(test_data::workspace_root().join("README.md"))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
    texts_under(&test_data::fixture("slack-export"), &mut texts);
    assert!(texts.len() > 500, "only {} texts", texts.len());
    assert_counts_agree(&texts);
}

#[test]
fn shortcut_equals_the_tokenizer_on_the_real_slack_export() {
    let Some(export) = test_data::shared_data("slack-export-sample") else {
        return;
    };
    let mut texts = Vec::new();
    texts_under(&export, &mut texts);
    assert!(texts.len() > 1_000, "only {} texts", texts.len());
    assert_counts_agree(&texts);
}
