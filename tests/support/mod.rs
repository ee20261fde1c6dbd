//! Shared set-up for the end-to-end tests: real servers on loopback, started by the test.
#![allow(dead_code)]

/// The project's fixtures and the real exports in `../shared/data` (skipped loudly when missing,
/// unless `KASS_REQUIRE_SHARED_DATA=1`).
pub mod test_data;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `kass` binary under test.
pub fn kass() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kass"))
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_port(port: u16, child: &mut Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited before listening: {status}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what} did not listen on 127.0.0.1:{port} within 60 s");
}

/// A moto server (S3 + SQS API) on a free loopback port, killed on drop.
pub struct MotoServer {
    child: Child,
    pub port: u16,
}

impl MotoServer {
    /// Starts `$KASS_MOTO_SERVER` (set by scripts/test.sh), else `moto_server` from PATH.
    pub fn start() -> Self {
        let bin = std::env::var("KASS_MOTO_SERVER").unwrap_or_else(|_| "moto_server".into());
        let port = free_port();
        let mut child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start moto server {bin:?}: {e}. Run the tests with scripts/test.sh, which installs it")
            });
        wait_for_port(port, &mut child, "moto_server");
        Self { child, port }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real Chroma server (`chroma run`) on a free loopback port, its data in `path`.
pub struct ChromaServer {
    child: Child,
    pub port: u16,
    pub path: PathBuf,
}

impl ChromaServer {
    /// Starts `$KASS_CHROMA` (set by scripts/test.sh), else `chroma` from PATH.
    pub fn start(path: &Path) -> Self {
        Self::start_on(path, free_port())
    }

    /// [`ChromaServer::start`] on a given port: a restart where clients already point.
    pub fn start_on(path: &Path, port: u16) -> Self {
        let bin = std::env::var("KASS_CHROMA").unwrap_or_else(|_| "chroma".into());
        let mut child = Command::new(&bin)
            .arg("run")
            .arg("--path")
            .arg(path)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start Chroma {bin:?}: {e}. Run the tests with scripts/test.sh, which installs it")
            });
        wait_for_port(port, &mut child, "chroma");
        // The port opens a moment before the API answers.
        for _ in 0..100 {
            if http_get_ok(port, "/api/v2/heartbeat") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Self {
            child,
            port,
            path: path.to_path_buf(),
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `[chroma]` for a kass.toml pointing at this server.
    pub fn config(&self, collection: &str) -> String {
        format!(
            "\n[chroma]\nurl = \"{}\"\ncollection = \"{collection}\"\nmax_wait_ms = 50\n\n[chroma.retry]\nmax_attempts = 2\ninitial_backoff_ms = 50\n",
            self.url()
        )
    }

    /// Stops the server (and waits for it, so the data directory is released).
    pub fn stop(mut self) -> PathBuf {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.path.clone()
    }
}

impl Drop for ChromaServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http_get_ok(port: u16, path: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(2)));
    if s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && head.ends_with(b"200")
}

/// A kass.toml over the shipped example data, storing into the given Chroma server.
pub fn write_run_config(dir: &Path, chroma: &ChromaServer, collection: &str) -> PathBuf {
    let slack = dir.join("slack");
    copy_dir(&repo_root().join("examples/data/slack-export"), &slack);
    let config = write_example_config(dir, &slack);
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&chroma.config(collection));
    std::fs::write(&config, text).unwrap();
    config
}

/// Every file under `dir`, relative, sorted.
pub fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(
                    p.strip_prefix(dir)
                        .unwrap()
                        .to_string_lossy()
                        .replace('\\', "/"),
                );
            }
        }
    }
    out.sort();
    out
}

/// Copies a directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A kass.toml over the shipped example data, storing into `store_dir`.
pub fn example_config(store_dir: &Path, slack_dir: &Path, docs_dir: &Path) -> String {
    format!(
        r#"
[store]
type = "local"
path = "{}"

[batch]
max_chunks = 4
max_wait_ms = 200

[[sources]]
type = "slack_export"
name = "slack"
path = "{}"

[[sources]]
type = "files"
name = "docs"
path = "{}"
"#,
        store_dir.display(),
        slack_dir.display(),
        docs_dir.display()
    )
}

/// Writes `dir/kass.toml` over the shipped example docs and `slack`, storing into `dir/store`.
pub fn write_example_config(dir: &Path, slack: &Path) -> PathBuf {
    let path = dir.join("kass.toml");
    let docs = repo_root().join("examples/data/docs");
    std::fs::write(&path, example_config(&dir.join("store"), slack, &docs)).unwrap();
    path
}

/// Runs a command that must succeed, failing the test with its stderr otherwise.
pub fn run_ok(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{:?} failed: {}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Ids of every chunk in the batch files under a local store, sorted.
pub fn batch_chunk_ids(store: &Path) -> Vec<String> {
    let mut ids = Vec::new();
    for rel in files_under(store)
        .into_iter()
        .filter(|k| k.contains("/chunked/"))
    {
        let bytes = std::fs::read(store.join(&rel)).unwrap();
        let batch = kass_pipeline::batch::read_batch(&rel, &bytes).unwrap();
        ids.extend(batch.chunks.into_iter().map(|c| c.id));
    }
    ids.sort();
    ids
}

pub fn batch_chunk_count(store: &Path) -> usize {
    batch_chunk_ids(store).len()
}

/// The value of the Prometheus series `name{labels...}` in an exposition (a counter, a gauge,
/// or a histogram's or summary's `_count` / `_sum`), if present.
pub fn metric_value(exposition: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let rest = series.strip_prefix(name)?;
            let matches = rest.starts_with('{')
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")));
            matches.then(|| value.parse().ok())?
        })
}

/// `POST .../collections/{id}/get` with `request` (`where`, `include`) on the Chroma at `url`:
/// what the collection holds, or `None` when there is no such collection.
#[allow(dead_code)]
pub async fn chroma_get(
    url: &str,
    collection: &str,
    request: serde_json::Value,
) -> Option<serde_json::Value> {
    let http = reqwest::Client::new();
    let base =
        format!("{url}/api/v2/tenants/default_tenant/databases/default_database/collections");
    let found: serde_json::Value = http
        .get(format!("{base}/{collection}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = found["id"].as_str()?;
    let records = http
        .post(format!("{base}/{id}/get"))
        .json(&request)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    Some(records)
}
