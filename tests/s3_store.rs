//! The S3 store against a real S3 API (moto server, started here), and `kass fetch` writing its
//! batch files into a bucket.

mod support;

use kass_pipeline::batch::{parse_batch_key, read_batch};
use kass_pipeline::store::{ObjectStore, S3Store, S3StoreConfig, StoreError};
use support::{kass, repo_root, run_ok, write_example_config, MotoServer};

const BUCKET: &str = "kass-test";

fn aws_env(cmd: &mut std::process::Command, moto: &MotoServer) {
    cmd.env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("KASS_S3_BUCKET", BUCKET)
        .env("KASS_S3_ENDPOINT_URL", moto.endpoint())
        .env("KASS_S3_FORCE_PATH_STYLE", "true");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_store_round_trip_and_fetch_into_a_bucket() {
    let moto = MotoServer::start();
    // One test function, so these process-wide variables are set before any other thread reads them.
    std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
    let config = S3StoreConfig {
        bucket: BUCKET.into(),
        endpoint_url: Some(moto.endpoint()),
        region: Some("us-east-1".into()),
        force_path_style: true,
        max_attempts: 3,
    };
    let store = S3Store::connect(&config).await;
    store
        .client()
        .create_bucket()
        .bucket(BUCKET)
        .send()
        .await
        .expect("create bucket on moto");

    // Objects round-trip byte for byte, including keys with spaces and non-ASCII characters.
    store
        .put("a/b/one.json", b"{\"x\":1}".to_vec())
        .await
        .unwrap();
    store
        .put("a/b/two words é.json", vec![0, 159, 146, 150])
        .await
        .unwrap();
    assert_eq!(store.get("a/b/one.json").await.unwrap(), b"{\"x\":1}");
    assert_eq!(
        store.get("a/b/two words é.json").await.unwrap(),
        vec![0, 159, 146, 150]
    );
    assert!(store
        .put_if_absent("a/b/once.json", b"1".to_vec())
        .await
        .unwrap());
    assert!(!store
        .put_if_absent("a/b/once.json", b"2".to_vec())
        .await
        .unwrap());
    assert_eq!(store.get("a/b/once.json").await.unwrap(), b"1");
    store.delete("a/b/once.json").await.unwrap();
    assert!(matches!(
        store.get("a/b/missing.json").await,
        Err(StoreError::NotFound { .. })
    ));

    // Listing follows continuation tokens past S3's 1,000-key page.
    for i in 0..1005 {
        store
            .put(&format!("many/{i:05}.json"), vec![b'x'])
            .await
            .unwrap();
    }
    let listed = store.list("many/").await.unwrap();
    assert_eq!(listed.len(), 1005);
    assert_eq!(listed[0], "many/00000.json");
    store.delete("a/b/one.json").await.unwrap();
    assert_eq!(
        store.list("a/").await.unwrap(),
        vec!["a/b/two words é.json"]
    );

    // `kass fetch` with the store switched to S3 by the environment.
    let dir = tempfile::tempdir().unwrap();
    let config_path =
        write_example_config(dir.path(), &repo_root().join("examples/data/slack-export"));
    let mut cmd = kass();
    cmd.args(["fetch", "--config"]).arg(&config_path);
    aws_env(&mut cmd, &moto);
    run_ok(&mut cmd);

    let keys = store.list("slack/chunked/").await.unwrap();
    assert!(!keys.is_empty(), "no batch written to the bucket");
    let mut chunks = 0;
    for key in &keys {
        assert!(parse_batch_key(key).is_some(), "{key} is not a batch key");
        let batch = read_batch(key, &store.get(key).await.unwrap()).unwrap();
        chunks += batch.chunk_count;
    }
    assert!(
        chunks >= 3,
        "expected the example conversations, got {chunks} chunks"
    );
    assert!(!store.list("docs/chunked/").await.unwrap().is_empty());
    assert!(store.list("_dead_letter/").await.unwrap().is_empty());

    // `kass inspect` reads a key from the bucket.
    let mut cmd = kass();
    cmd.args(["inspect", &keys[0], "--config"])
        .arg(&config_path);
    aws_env(&mut cmd, &moto);
    let out = run_ok(&mut cmd);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("source        slack") && stdout.contains(&format!("s3://{BUCKET}/")),
        "{stdout}"
    );
}

#[test]
fn unreachable_store_stops_the_run_with_a_message_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let config_path =
        write_example_config(dir.path(), &repo_root().join("examples/data/slack-export"));
    let closed_port = support::free_port();
    let out = kass()
        .args(["fetch", "--config"])
        .arg(&config_path)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("KASS_S3_BUCKET", "nowhere")
        .env(
            "KASS_S3_ENDPOINT_URL",
            format!("http://127.0.0.1:{closed_port}"),
        )
        .env("KASS_S3_FORCE_PATH_STYLE", "1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Error:") && stderr.contains("s3://nowhere/"),
        "{stderr}"
    );
}
