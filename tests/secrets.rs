//! Secrets through the binary: what a provider or a URL says about a key or a password never
//! reaches stdout, stderr (plain or JSON logs) or a file in the store, and a key that cannot be
//! sent fails at once, naming its variable.

mod support;

#[path = "../stages/tests/support/fake_provider.rs"]
mod fake_provider;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use fake_provider::{Api, FakeOptions, FakeProvider};
use support::{
    copy_dir, files_under, free_port, kass, repo_root, write_example_config, ChromaServer,
};

const LOG_FORMATS: [&str; 2] = ["text", "json"];

/// A kass.toml over the shipped example data in `dir`, with `extra` (sections) appended.
fn write_config(dir: &Path, extra: &str) -> PathBuf {
    let slack = dir.join("slack");
    copy_dir(&repo_root().join("examples/data/slack-export"), &slack);
    let config = write_example_config(dir, &slack);
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(extra);
    std::fs::write(&config, text).unwrap();
    config
}

/// `[embed]` with the OpenAI-shaped `server`, its key in `KASS_E2E_KEY`.
fn provider_section(server: &FakeProvider) -> String {
    format!(
        "\n[embed]\nbatch_size = 4\n\n[embed.provider]\nkind = \"openai\"\nbase_url = \"{}\"\nmodel = \"text-embedding-3-small\"\ndimensions = 8\napi_key_env = \"KASS_E2E_KEY\"\n",
        server.base_url()
    )
}

/// `[chroma]` at `url`, retried briefly.
fn chroma_section(url: &str, collection: &str) -> String {
    format!(
        "\n[chroma]\nurl = \"{url}\"\ncollection = \"{collection}\"\nmax_wait_ms = 50\n\n[chroma.retry]\nmax_attempts = 2\ninitial_backoff_ms = 50\n"
    )
}

/// `kass --log-format FORMAT ARGS...` with `key` in `KASS_E2E_KEY` and debug logs.
async fn kass_with(format: &str, key: &str, args: &[&str], config: &Path) -> Output {
    let mut cmd = kass();
    cmd.env("KASS_E2E_KEY", key)
        .env("RUST_LOG", "debug")
        .args(["--log-format", format])
        .args(args)
        .arg("--config")
        .arg(config);
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

/// Fails naming where `secret` was found: stdout, stderr, or a file under `store`.
fn assert_nowhere(secret: &str, out: &Output, store: &Path) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stdout.contains(secret), "{secret:?} on stdout:\n{stdout}");
    assert!(!stderr.contains(secret), "{secret:?} on stderr:\n{stderr}");
    for rel in files_under(store) {
        let text = String::from_utf8_lossy(&std::fs::read(store.join(&rel)).unwrap()).into_owned();
        assert!(!text.contains(secret), "{secret:?} in {rel}:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn provider_errors_echoing_the_key_reach_no_output_and_no_dead_letter() {
    const KEY: &str = "sk-echoed-by-the-provider-7f3a9c";
    const WRONG: &str = "sk-wrong-and-secret-too-41b2d8";
    let mut options = FakeOptions::new(Api::OpenAi);
    options.api_key = Some(KEY.into());
    options.echo_key = true;
    // A chunk of the example data is refused (400), quoting the key: a dead letter.
    options.poison_marker = Some("retention policy".into());
    let server = FakeProvider::start(options).await;
    let root = tempfile::tempdir().unwrap();
    let chroma = ChromaServer::start(&root.path().join("chroma"));
    for format in LOG_FORMATS {
        let dir = root.path().join(format);
        let config = write_config(
            &dir,
            &(provider_section(&server)
                + &chroma_section(&chroma.url(), &format!("echo-{format}"))),
        );
        let store = dir.join("store");

        // The wrong key: a 401 quoting it stops the run.
        let refused = kass_with(format, WRONG, &["run"], &config).await;
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert_eq!(refused.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("401") && stderr.contains("you sent: Bearer ***"),
            "{stderr}"
        );
        assert_nowhere(WRONG, &refused, &store);

        // The right key: the poisoned chunk is refused with a 400 quoting it, dead-lettered.
        let done = kass_with(format, KEY, &["run"], &config).await;
        let stderr = String::from_utf8_lossy(&done.stderr);
        assert!(done.status.success(), "{stderr}");
        assert!(stderr.contains("you sent: Bearer ***"), "{stderr}");
        let letters: Vec<String> = files_under(&store)
            .into_iter()
            .filter(|k| k.starts_with("_dead_letter/embed/"))
            .collect();
        assert!(
            !letters.is_empty(),
            "no dead letter: {:?}",
            files_under(&store)
        );
        let letter = std::fs::read_to_string(store.join(&letters[0])).unwrap();
        assert!(letter.contains("you sent: Bearer ***"), "{letter}");
        assert_nowhere(KEY, &done, &store);
    }
    assert!(server.count(401) >= 2 && server.count(400) >= 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chroma_url_with_a_password_never_prints_it() {
    const PASSWORD: &str = "s3cretpass-e5d1";
    let root = tempfile::tempdir().unwrap();
    let chroma = ChromaServer::start(&root.path().join("chroma"));
    let down = free_port();
    // A live server (the collection is missing: an error naming the URL) and one that is down
    // (retries logged, then an error naming the URL).
    for (port, what) in [
        (chroma.port, "no collection"),
        (down, "unavailable after 2"),
    ] {
        for format in LOG_FORMATS {
            let dir = root.path().join(format!("{port}-{format}"));
            let url = format!("http://kass:{PASSWORD}@127.0.0.1:{port}");
            let config = write_config(&dir, &chroma_section(&url, "never-written"));
            let out = kass_with(format, "", &["stats"], &config).await;
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{stderr}");
            assert!(stderr.contains(what), "{stderr}");
            assert!(
                stderr.contains(&format!("http://***@127.0.0.1:{port}/api/v2")),
                "{stderr}"
            );
            assert_nowhere(PASSWORD, &out, &dir.join("store"));
            assert_nowhere("kass:", &out, &dir.join("store"));
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_api_key_with_a_newline_fails_at_once_naming_the_variable() {
    let server = FakeProvider::start(FakeOptions::new(Api::OpenAi)).await;
    let dir = tempfile::tempdir().unwrap();
    // Chroma is never reached: the key is checked before anything else starts.
    let down = format!("http://127.0.0.1:{}", free_port());
    let config = write_config(
        dir.path(),
        &(provider_section(&server) + &chroma_section(&down, "never-written")),
    );
    for format in LOG_FORMATS {
        let started = Instant::now();
        let out = kass_with(
            format,
            "sk-first-line-9d1e\nsecond-line-c27b",
            &["run"],
            &config,
        )
        .await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("the API key in KASS_E2E_KEY contains a newline"),
            "{stderr}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "not at once: {:?}",
            started.elapsed()
        );
        assert_nowhere("sk-first-line-9d1e", &out, &dir.path().join("store"));
        assert_nowhere("second-line-c27b", &out, &dir.path().join("store"));
    }
    assert!(server.log().is_empty(), "{:?}", server.log());
}
