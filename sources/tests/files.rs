//! The `files` source over a small directory tree.

mod common;

use std::fs;

use kass_pipeline::{DocumentKind, MetaValue};
use kass_sources::files::FilesConfig;
use kass_sources::BuildSource;

fn tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::create_dir_all(root.join("src")).unwrap();
    fs::create_dir_all(root.join("target/debug")).unwrap();
    fs::create_dir_all(root.join("vendor")).unwrap();
    fs::write(root.join(".gitignore"), "target/\n*.log\n").unwrap();
    fs::write(root.join("README.md"), "# Hello\n").unwrap();
    fs::write(root.join("notes.txt"), "plain notes").unwrap();
    fs::write(root.join("Cargo.toml"), "[package]\n").unwrap();
    fs::write(root.join("src/main.rs"), "fn main() {}\n").unwrap();
    fs::write(root.join("src/analysis.R"), "x <- 1\n").unwrap();
    fs::write(root.join("target/debug/out.txt"), "build output").unwrap();
    fs::write(root.join("debug.log"), "log line").unwrap();
    fs::write(root.join("vendor/lib.rs"), "pub fn f() {}").unwrap();
    fs::write(root.join(".hidden.md"), "secret").unwrap();
    fs::write(root.join("logo.png"), [0x89, b'P', b'N', b'G', 0, 0, 0, 13]).unwrap();
    fs::write(root.join("latin1.txt"), [b'c', b'a', b'f', 0xe9]).unwrap();
    dir
}

fn ids(run: &common::Run) -> Vec<String> {
    common::documents(&run.records)
        .iter()
        .map(|d| d.id.clone())
        .collect()
}

#[tokio::test]
async fn gitignore_hidden_files_and_exclude_globs_are_respected() {
    let dir = tree();
    let mut config = FilesConfig::new(dir.path());
    config.exclude = vec!["vendor/".into()];
    let run = common::run_source(config.build().unwrap(), "files").await;
    assert_eq!(
        ids(&run),
        [
            "Cargo.toml",
            "README.md",
            "notes.txt",
            "src/analysis.R",
            "src/main.rs"
        ]
    );
    assert!(run.dead_letters.is_empty());
}

#[tokio::test]
async fn binary_and_non_utf8_files_are_skipped_not_dead_lettered() {
    let dir = tree();
    let run = common::run_source(FilesConfig::new(dir.path()).build().unwrap(), "files").await;
    let ids = ids(&run);
    assert!(
        !ids.iter().any(|id| id == "logo.png" || id == "latin1.txt"),
        "{ids:?}"
    );
    assert!(ids.iter().any(|id| id == "vendor/lib.rs"), "{ids:?}");
    assert!(run.dead_letters.is_empty());
}

#[tokio::test]
async fn kind_language_title_and_metadata_follow_the_file() {
    let dir = tree();
    let run = common::run_source(FilesConfig::new(dir.path()).build().unwrap(), "files").await;
    let docs = common::documents(&run.records);
    let by_id = |id: &str| *docs.iter().find(|d| d.id == id).unwrap();

    let readme = by_id("README.md");
    assert_eq!(readme.kind, DocumentKind::Markdown);
    assert_eq!(readme.source, "files");
    assert_eq!(readme.title.as_deref(), Some("README.md"));
    assert_eq!(readme.text.as_deref(), Some("# Hello\n"));
    assert_eq!(readme.metadata.get("size_bytes"), Some(&MetaValue::Int(8)));
    assert!(readme.updated_at.is_some());
    assert!(!readme.metadata.contains_key("language"));

    let main = by_id("src/main.rs");
    assert_eq!(main.kind, DocumentKind::CodeFile);
    assert_eq!(main.title.as_deref(), Some("main.rs"));
    assert_eq!(
        main.metadata.get("language"),
        Some(&MetaValue::from("rust"))
    );
    let path = main
        .metadata
        .get("path")
        .and_then(MetaValue::as_str)
        .unwrap();
    assert!(path.ends_with("main.rs"), "{path}");

    assert_eq!(by_id("src/analysis.R").kind, DocumentKind::CodeFile);
    assert_eq!(by_id("notes.txt").kind, DocumentKind::Text);
    assert_eq!(by_id("Cargo.toml").kind, DocumentKind::Text);
}

#[tokio::test]
async fn include_extensions_limits_what_is_read() {
    let dir = tree();
    let mut config = FilesConfig::new(dir.path());
    config.include_extensions = vec![".MD".into(), "r".into()];
    let run = common::run_source(config.build().unwrap(), "files").await;
    assert_eq!(ids(&run), ["README.md", "src/analysis.R"]);
}

#[tokio::test]
async fn file_over_max_size_is_dead_lettered_with_its_path_and_size() {
    let dir = tree();
    fs::write(dir.path().join("big.md"), "x".repeat(100)).unwrap();
    let mut config = FilesConfig::new(dir.path());
    config.max_file_bytes = 50;
    let run = common::run_source(config.build().unwrap(), "files").await;
    assert!(!ids(&run).contains(&"big.md".to_string()));
    assert_eq!(run.dead_letters.len(), 1, "{:?}", run.dead_letters);
    let letter = &run.dead_letters[0].1;
    assert_eq!(letter.item_id, "big.md");
    assert_eq!(letter.error_type, "too_large");
    assert!(
        letter.reason.contains("big.md") && letter.reason.contains("100 bytes"),
        "{}",
        letter.reason
    );
}

#[test]
fn missing_directory_and_bad_glob_are_config_errors() {
    let err = FilesConfig::new("/no/such/dir").build().unwrap_err();
    assert!(err.to_string().contains("/no/such/dir"), "{err}");
    let dir = tree();
    let mut config = FilesConfig::new(dir.path());
    config.exclude = vec!["a[".into()];
    let err = config.build().unwrap_err();
    assert!(err.to_string().contains("a["), "{err}");
}

#[test]
fn unknown_config_fields_are_rejected() {
    let err = toml::from_str::<FilesConfig>("path = \".\"\nexlude = []").unwrap_err();
    assert!(err.to_string().contains("exlude"), "{err}");
}
