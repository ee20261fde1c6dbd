//! The batch file is the contract between the fetch half and the embed half: these tests pin
//! its exact shape, its backward compatibility with the seed format, and the reader's errors.

mod support;

use chrono::{TimeZone, Utc};
use kass_pipeline::batch::{batch_key, read_batch, Batch, Compression, SCHEMA_VERSION};
use kass_pipeline::{Chunk, MetaValue, Metadata};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(support::repo_root().join("tests/fixtures").join(name)).unwrap()
}

fn sample_batch() -> Batch {
    let mut meta = Metadata::new();
    meta.insert("channel".into(), "general".into());
    meta.insert("message_count".into(), MetaValue::Int(2));
    meta.insert("start_time".into(), "2025-10-06T09:01:00Z".into());
    let chunks = vec![
        Chunk::new(
            "slack",
            "C0GENERAL/2025-10-06",
            0,
            "ana: Welcome!\nCho Min-jun: Thanks!".into(),
            meta.clone(),
        ),
        Chunk::new(
            "slack",
            "C0GENERAL/2025-10-06",
            1,
            "Ben: Code freeze is Thursday.".into(),
            meta,
        ),
    ];
    let at = Utc.with_ymd_and_hms(2025, 10, 6, 12, 0, 0).unwrap();
    Batch::new("20251006_120000_a1b2".into(), at, "slack", chunks)
}

#[test]
fn written_batch_matches_the_golden_file_byte_for_byte() {
    let encoded = sample_batch().encode(Compression::None);
    if std::env::var_os("KASS_UPDATE_GOLDEN").is_some() {
        let path = support::repo_root().join("tests/fixtures/golden_batch_v1.json");
        std::fs::write(path, [&encoded[..], b"\n"].concat()).unwrap();
    }
    let golden = fixture("golden_batch_v1.json");
    assert_eq!(
        String::from_utf8(encoded).unwrap(),
        String::from_utf8(golden).unwrap().trim_end(),
        "the batch format changed: if intended, bump SCHEMA_VERSION, update the README and this fixture"
    );
}

#[test]
fn written_batch_keeps_every_seed_field_with_its_meaning() {
    let value: serde_json::Value =
        serde_json::from_slice(&sample_batch().encode(Compression::None)).unwrap();
    let seed: serde_json::Value = serde_json::from_slice(&fixture("seed_batch_v0.json")).unwrap();
    for field in seed.as_object().unwrap().keys() {
        assert!(
            value.get(field).is_some(),
            "seed field `{field}` missing from the written batch"
        );
    }
    assert_eq!(value["schema_version"], SCHEMA_VERSION);
    assert_eq!(value["timestamp"], "2025-10-06T12:00:00Z");
    assert_eq!(
        value["chunk_count"],
        value["chunks"].as_array().unwrap().len()
    );
    for chunk in value["chunks"].as_array().unwrap() {
        assert!(
            chunk["text"].is_string() && chunk["metadata"].is_object() && chunk["id"].is_string()
        );
    }
}

#[test]
fn seed_format_batches_are_read_and_get_deterministic_ids() {
    let key = "slack/chunked/year=2025/month=10/day=06/batch_20251006_120000_a1b2.json";
    let a = read_batch(key, &fixture("seed_batch_v0.json")).unwrap();
    let b = read_batch(key, &fixture("seed_batch_v0.json")).unwrap();
    assert_eq!(a.schema_version, 0);
    assert_eq!(a.chunk_count, 2);
    assert!(a.chunks.iter().all(|c| c.id.len() == 32));
    assert_ne!(a.chunks[0].id, a.chunks[1].id);
    assert_eq!(a, b);
}

#[test]
fn gzip_batches_round_trip() {
    let batch = sample_batch();
    let key = batch_key("slack", batch.timestamp, &batch.batch_id, Compression::Gzip);
    assert!(key.ends_with(".json.gz"));
    let bytes = batch.encode(Compression::Gzip);
    assert_eq!(&bytes[..2], &[0x1f, 0x8b]);
    assert_eq!(read_batch(&key, &bytes).unwrap(), batch);
}

fn mutated(f: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let mut value: serde_json::Value =
        serde_json::from_slice(&sample_batch().encode(Compression::None)).unwrap();
    f(&mut value);
    serde_json::to_vec(&value).unwrap()
}

#[test]
fn reader_errors_name_the_key_and_the_field() {
    let key = "slack/chunked/year=2025/month=10/day=06/batch_x.json";
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            mutated(|v| {
                v["chunks"][1]
                    .as_object_mut()
                    .unwrap()
                    .remove("text")
                    .map(|_| ())
                    .unwrap()
            }),
            "chunks[1]",
        ),
        (
            mutated(|v| v["chunks"][0]["text"] = serde_json::json!(42)),
            "chunks[0].text",
        ),
        (
            mutated(|v| v["chunk_count"] = serde_json::json!(3)),
            "chunk_count",
        ),
        (
            mutated(|v| v["schema_version"] = serde_json::json!(99)),
            "schema_version",
        ),
        (
            mutated(|v| v["source"] = serde_json::json!("gitlab")),
            "source",
        ),
        (
            mutated(|v| {
                v["chunks"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("id")
                    .map(|_| ())
                    .unwrap()
            }),
            "chunks[0].id",
        ),
        (
            mutated(|v| v["timestamp"] = serde_json::json!("yesterday")),
            "timestamp",
        ),
        (b"{\"batch_id\": ".to_vec(), "EOF"),
    ];
    for (bytes, expected) in cases {
        let err = read_batch(key, &bytes).unwrap_err().to_string();
        assert!(err.contains(key), "error does not name the key: {err}");
        assert!(
            err.contains(expected),
            "error does not name `{expected}`: {err}"
        );
    }
}

#[test]
fn a_gzip_bomb_is_refused_not_inflated() {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![b' '; 1024 * 1024];
    for _ in 0..(kass_pipeline::batch::MAX_BATCH_BYTES / (1024 * 1024) + 1) {
        enc.write_all(&zeros).unwrap();
    }
    let bomb = enc.finish().unwrap();
    let err = read_batch(
        "slack/chunked/year=2025/month=01/day=01/batch_b.json.gz",
        &bomb,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("decompresses to more than"),
        "{err}"
    );
}

#[test]
fn tombstones_make_a_version_2_batch_and_round_trip() {
    use kass_pipeline::batch::{Tombstone, TOMBSTONES_SCHEMA_VERSION};
    let batch = sample_batch().with_tombstones(vec![Tombstone {
        document_id: "C0GENERAL/2025-10-05".into(),
        reason: Some("deleted".into()),
        version: None,
    }]);
    assert_eq!(batch.schema_version, TOMBSTONES_SCHEMA_VERSION);
    let bytes = batch.encode(Compression::None);
    let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        value["tombstones"][0]["document_id"],
        "C0GENERAL/2025-10-05"
    );
    let key = batch_key("slack", batch.timestamp, &batch.batch_id, Compression::None);
    assert_eq!(read_batch(&key, &bytes).unwrap(), batch);
    // Without tombstones a batch stays version 1, readable by an earlier kass.
    let plain: serde_json::Value =
        serde_json::from_slice(&sample_batch().encode(Compression::None)).unwrap();
    assert!(plain.get("tombstones").is_none());
}
