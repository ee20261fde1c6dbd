//! The `jsonl` source over BEIR and Document lines.

mod common;

use kass_pipeline::{DocumentKind, MetaValue};
use kass_sources::jsonl::JsonlConfig;
use kass_sources::BuildSource;

const CORPUS: &str = r#"{"_id": "doc1", "title": "Aspirin", "text": "Aspirin reduces fever.", "year": 2019, "peer_reviewed": true}
{"id": "kb/intro", "kind": "markdown", "title": "Intro", "text": "Welcome", "metadata": {"team": "core"}}
{"_id": "doc2", "title": "broken", "text": "unterminated
{"id": "kb/other", "source": "wiki", "kind": "wiki", "text": "From elsewhere"}

{"_id": "doc3", "text": "No title."}
"#;

#[tokio::test]
async fn beir_and_document_lines_become_documents_and_a_malformed_line_is_dead_lettered() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("corpus.jsonl");
    std::fs::write(&file, CORPUS).unwrap();
    let run = common::run_source(JsonlConfig::new(&file).build().unwrap(), "jsonl").await;
    let docs = common::documents(&run.records);
    let ids: Vec<&str> = docs.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["doc1", "kb/intro", "kb/other", "doc3"]);

    let beir = docs[0];
    assert_eq!(beir.kind, DocumentKind::Text);
    assert_eq!(beir.source, "jsonl");
    assert_eq!(beir.title.as_deref(), Some("Aspirin"));
    assert_eq!(beir.text.as_deref(), Some("Aspirin reduces fever."));
    assert_eq!(beir.metadata.get("year"), Some(&MetaValue::Int(2019)));
    assert_eq!(
        beir.metadata.get("peer_reviewed"),
        Some(&MetaValue::Bool(true))
    );

    let document = docs[1];
    assert_eq!(document.kind, DocumentKind::Markdown);
    assert_eq!(
        document.source, "jsonl",
        "a missing source becomes the config name"
    );
    assert_eq!(
        document.metadata.get("team"),
        Some(&MetaValue::from("core"))
    );
    assert_eq!(docs[2].source, "wiki", "a line's own source is kept");
    assert_eq!(docs[3].title, None);

    assert_eq!(run.dead_letters.len(), 1, "{:?}", run.dead_letters);
    let letter = &run.dead_letters[0].1;
    let at = format!("{}:3", file.display());
    assert_eq!(letter.item_id, at);
    assert_eq!(letter.error_type, "malformed_json");
    assert!(
        letter.reason.starts_with(&format!("{at}: ")),
        "{}",
        letter.reason
    );
    assert!(
        letter.reason.contains("column"),
        "serde's position is kept: {}",
        letter.reason
    );
}

#[tokio::test]
async fn a_directory_reads_its_jsonl_files_in_name_order() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("b.jsonl"),
        "{\"_id\": \"b\", \"text\": \"B\"}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("a.jsonl"),
        "{\"_id\": \"a\", \"text\": \"A\"}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("notes.txt"),
        "{\"_id\": \"n\", \"text\": \"N\"}\n",
    )
    .unwrap();
    let mut config = JsonlConfig::new(dir.path());
    config.name = "scifact".into();
    let run = common::run_source(config.build().unwrap(), "jsonl").await;
    let docs = common::documents(&run.records);
    let ids: Vec<&str> = docs.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["a", "b"]);
    assert!(docs.iter().all(|d| d.source == "scifact"));
}

#[tokio::test]
async fn a_document_line_with_a_bad_kind_is_dead_lettered_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("docs.jsonl");
    std::fs::write(
        &file,
        "{\"id\": \"x\", \"kind\": \"poem\", \"text\": \"t\"}\n",
    )
    .unwrap();
    let run = common::run_source(JsonlConfig::new(&file).build().unwrap(), "jsonl").await;
    assert!(run.records.is_empty());
    let letter = &run.dead_letters[0].1;
    assert!(
        letter.reason.contains(":1: ") && letter.reason.contains("poem"),
        "{}",
        letter.reason
    );
}

#[test]
fn missing_path_is_a_config_error_naming_it() {
    let err = JsonlConfig::new("/no/such.jsonl").build().unwrap_err();
    assert!(err.to_string().contains("/no/such.jsonl"), "{err}");
}

#[tokio::test]
async fn an_overlong_line_is_dead_lettered_and_the_next_lines_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.jsonl");
    let huge = format!(
        "{{\"_id\": \"huge\", \"text\": \"{}\"}}",
        "x".repeat(17 * 1024 * 1024)
    );
    std::fs::write(
        &file,
        format!("{{\"_id\": \"a\", \"text\": \"first\"}}\n{huge}\n{{\"_id\": \"b\", \"text\": \"after\"}}\n"),
    )
    .unwrap();
    let run = common::run_source(JsonlConfig::new(&file).build().unwrap(), "jsonl").await;
    let ids: Vec<&str> = common::documents(&run.records)
        .iter()
        .map(|d| d.id.as_str())
        .collect();
    assert_eq!(ids, ["a", "b"]);
    assert_eq!(run.dead_letters.len(), 1);
    let letter = &run.dead_letters[0].1;
    assert_eq!(letter.error_type, "line_too_long");
    assert!(
        letter
            .reason
            .starts_with(&format!("{}:2: ", file.display())),
        "{}",
        letter.reason
    );
}
