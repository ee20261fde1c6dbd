//! The transform stage on hand-made chat records: dropping, ordering, rendering, titles, errors.

use std::sync::Arc;

use kass_pipeline::dead_letter::spawn_writer;
use kass_pipeline::model::{ChatDirectory, RawChat, RawMessage};
use kass_pipeline::shutdown::Shutdown;
use kass_pipeline::store::LocalStore;
use kass_pipeline::{Document, DocumentKind, ItemStage, MetaValue, RawRecord, StageContext};
use kass_stages::transform::{Transform, TransformConfig};

fn ctx() -> (StageContext, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let (queue, _writer) = spawn_writer(Arc::new(LocalStore::new(dir.path()).unwrap()));
    (
        StageContext::new("transform", Shutdown::default(), queue),
        dir,
    )
}

fn directory() -> Arc<ChatDirectory> {
    let mut d = ChatDirectory::default();
    d.users.insert("U1".into(), "kara".into());
    d.users.insert("U2".into(), "Heather".into());
    d.channels.insert("C1".into(), "general".into());
    Arc::new(d)
}

fn message(ts: &str, user: &str, text: &str) -> RawMessage {
    RawMessage {
        ts: ts.into(),
        user_id: Some(user.into()),
        text: text.into(),
        ..RawMessage::default()
    }
}

fn chat(kind: DocumentKind, document_id: &str, messages: Vec<RawMessage>) -> RawRecord {
    RawRecord::Chat(RawChat {
        source: "slack".into(),
        document_id: document_id.into(),
        kind,
        channel_id: "C1".into(),
        channel_name: "general".into(),
        origin: "export/general/2021-10-27.json".into(),
        messages,
        directory: directory(),
        version: None,
    })
}

async fn transform(config: TransformConfig, record: RawRecord) -> Vec<Document> {
    let (ctx, _dir) = ctx();
    let stage: Transform = config.build().unwrap();
    assert_eq!(stage.name(), "transform");
    stage.process(&record, &ctx).await.unwrap()
}

#[tokio::test]
async fn documents_pass_through_unchanged() {
    let doc = Document::text("files", "a.md", DocumentKind::Markdown, "# A");
    let out = transform(TransformConfig::default(), RawRecord::Document(doc.clone())).await;
    assert_eq!(out, vec![doc]);
}

#[tokio::test]
async fn day_becomes_one_document_in_time_order_with_markup_rendered() {
    let mut join = message("1635356100.000100", "U2", "<@U2> has joined the channel");
    join.subtype = Some("channel_join".into());
    let mut edited = message(
        "1635356172.001900",
        "U1",
        "see <#C1> &amp; <https://r-project.org|R>",
    );
    edited.edited = true;
    let record = chat(
        DocumentKind::ChatConversation,
        "C1/2021-10-27",
        vec![
            message("1635356200.000300", "U2", "thanks <@U1>"),
            join,
            edited,
        ],
    );
    let out = transform(TransformConfig::default(), record).await;
    assert_eq!(out.len(), 1);
    let doc = &out[0];
    assert_eq!(doc.id, "C1/2021-10-27");
    assert_eq!(doc.kind, DocumentKind::ChatConversation);
    assert_eq!(doc.title.as_deref(), Some("#general 2021-10-27"));
    assert_eq!(
        doc.metadata.get("channel"),
        Some(&MetaValue::from("general"))
    );
    assert_eq!(doc.metadata.get("channel_id"), Some(&MetaValue::from("C1")));
    assert!(!doc.metadata.contains_key("thread_ts"));
    let texts: Vec<(&str, &str)> = doc
        .messages
        .iter()
        .map(|m| (m.author.as_str(), m.text.as_str()))
        .collect();
    assert_eq!(
        texts,
        [
            ("kara", "see #general & R (https://r-project.org)"),
            ("Heather", "thanks @kara"),
        ]
    );
    assert!(doc.messages[0].edited);
    assert_eq!(doc.created_at, Some(doc.messages[0].ts));
    assert_eq!(doc.updated_at, Some(doc.messages[1].ts));
    assert_eq!(doc.created_at.unwrap().timestamp(), 1_635_356_172);
}

#[tokio::test]
async fn thread_keeps_replies_under_a_deleted_parent_and_is_titled_by_the_first_kept_message() {
    let mut tombstone = message(
        "1710500968.450909",
        "USLACKBOT",
        "This message was deleted.",
    );
    tombstone.subtype = Some("tombstone".into());
    tombstone.thread_ts = Some("1710500968.450909".into());
    let mut reply = message(
        "1710502927.903589",
        "U1",
        &format!("answer {}", "x".repeat(80)),
    );
    reply.thread_ts = Some("1710500968.450909".into());
    let record = chat(
        DocumentKind::Thread,
        "C1/thread/1710500968.450909",
        vec![tombstone, reply],
    );
    let out = transform(TransformConfig::default(), record).await;
    let doc = &out[0];
    assert_eq!(doc.messages.len(), 1);
    assert_eq!(
        doc.messages[0].thread_id.as_deref(),
        Some("1710500968.450909")
    );
    assert_eq!(
        doc.metadata.get("thread_ts"),
        Some(&MetaValue::from("1710500968.450909"))
    );
    let title = doc.title.as_deref().unwrap();
    assert!(title.starts_with("#general thread: answer xxx"), "{title}");
    assert_eq!(title.chars().count(), "#general thread: ".len() + 60 + 1);
}

#[tokio::test]
async fn record_whose_every_message_is_dropped_yields_no_document() {
    let mut join = message("1635356100.000100", "U2", "joined");
    join.subtype = Some("channel_join".into());
    let mut bot = message("1635356101.000100", "B1", "   ");
    bot.is_bot = true;
    bot.user_id = None;
    bot.author_name = Some("github".into());
    let record = chat(
        DocumentKind::ChatConversation,
        "C1/2021-10-27",
        vec![join, bot],
    );
    assert!(transform(TransformConfig::default(), record)
        .await
        .is_empty());
}

#[tokio::test]
async fn empty_bot_message_is_kept_when_configured_and_bots_keep_their_name() {
    let mut bot = message("1635356101.000100", "B1", "");
    bot.is_bot = true;
    bot.user_id = None;
    bot.author_name = Some("github".into());
    let config = TransformConfig {
        drop_empty_bot_messages: false,
        ..TransformConfig::default()
    };
    let record = chat(DocumentKind::ChatConversation, "C1/2021-10-27", vec![bot]);
    let out = transform(config, record).await;
    assert_eq!(out[0].messages[0].author, "github");
}

#[tokio::test]
async fn attachments_render_after_the_text_unless_disabled() {
    let mut m = message("1635356172.001900", "U1", "my plot");
    m.attachments = vec!["file: plot.png".into(), "<https://x.org|X> preview".into()];
    let record = chat(DocumentKind::ChatConversation, "C1/2021-10-27", vec![m]);
    let out = transform(TransformConfig::default(), record.clone()).await;
    assert_eq!(
        out[0].messages[0].text,
        "my plot\n[file: plot.png]\n[X (https://x.org) preview]"
    );
    let config = TransformConfig {
        keep_attachments: false,
        ..TransformConfig::default()
    };
    assert_eq!(
        transform(config, record).await[0].messages[0].text,
        "my plot"
    );
}

#[tokio::test]
async fn unknown_user_falls_back_to_id_and_no_user_to_unknown() {
    let mut anonymous = message("1635356173.000000", "U1", "hi");
    anonymous.user_id = None;
    let record = chat(
        DocumentKind::ChatConversation,
        "C1/2021-10-27",
        vec![message("1635356172.000000", "U404", "hello"), anonymous],
    );
    let out = transform(TransformConfig::default(), record).await;
    let authors: Vec<&str> = out[0].messages.iter().map(|m| m.author.as_str()).collect();
    assert_eq!(authors, ["U404", "unknown"]);
}

#[tokio::test]
async fn unparseable_ts_is_an_item_error_naming_origin_and_ts() {
    let (ctx, _dir) = ctx();
    let stage = TransformConfig::default().build().unwrap();
    let record = chat(
        DocumentKind::ChatConversation,
        "C1/2021-10-27",
        vec![message("yesterday", "U1", "hi")],
    );
    let err = match stage.process(&record, &ctx).await.unwrap_err() {
        kass_pipeline::StageError::Item(err) => err,
        other => panic!("expected a per-item error, got {other}"),
    };
    assert_eq!(err.error_type, "invalid_timestamp");
    assert!(
        err.reason.contains("export/general/2021-10-27.json"),
        "{}",
        err.reason
    );
    assert!(err.reason.contains("\"yesterday\""), "{}", err.reason);
}

#[test]
fn config_defaults_and_unknown_fields() {
    let config: TransformConfig = serde_json::from_str("{}").unwrap();
    assert!(config.drop_subtypes.iter().any(|s| s == "channel_join"));
    assert!(config.drop_subtypes.iter().any(|s| s == "tombstone"));
    assert!(config.drop_empty_bot_messages && config.keep_attachments);
    assert!(serde_json::from_str::<TransformConfig>(r#"{"keep_attachment": true}"#).is_err());
}
