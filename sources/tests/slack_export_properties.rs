//! Properties of the `slack_export` source, the transform and the chunk router together, on
//! generated workspaces written as export directories: random channels, days and messages,
//! threads spanning days with replies after `latest_reply` (some past the grace period),
//! broadcast replies, bot posts, joins, parents whose replies were deleted.
//!
//! Every message text is unique, so a chunk text seen twice can only be one passage stored
//! twice (the twin chunks a thread parent used to make with its channel's day), never two
//! people saying the same thing.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::export::{self, assert_each_message_in_its_one_document, assert_no_twin_chunks};
use kass_sources::slack_export::SlackExportConfig;
use kass_stages::chunking::ChunkingConfig;
use proptest::prelude::*;
use serde_json::{json, Value};

const USERS: [(&str, &str); 3] = [("U01A", "ana"), ("U01B", "Ben"), ("U01C", "Cho")];
const BOT: &str = "ci-bot";
const WORDS: &[&str] = &[
    "build", "cache", "deploy", "error", "fix", "log", "merge", "review", "server", "test",
    "thread", "runner", "release", "query", "docs",
];
/// 2024-01-01T00:00:00Z.
const EPOCH: i64 = 1_704_067_200;

#[derive(Debug, Clone)]
struct Reply {
    after_minutes: u32,
    author: usize,
    broadcast: bool,
    bot: bool,
    words: Vec<&'static str>,
}

#[derive(Debug, Clone)]
enum Kind {
    Plain,
    Bot,
    Join,
    /// `thread_ts` set, no replies: what an export shows once a thread's replies are deleted.
    LoneParent,
    /// `claimed`: how many replies the parent's `reply_count` / `latest_reply` know of.
    Thread {
        replies: Vec<Reply>,
        claimed: usize,
    },
}

#[derive(Debug, Clone)]
struct Post {
    day: i64,
    minute: i64,
    author: usize,
    words: Vec<&'static str>,
    kind: Kind,
}

fn words() -> impl Strategy<Value = Vec<&'static str>> {
    prop::collection::vec(prop::sample::select(WORDS), 1..8)
}

fn reply() -> impl Strategy<Value = Reply> {
    (
        // Minutes to weeks after the parent: past the 7-day grace sometimes.
        prop_oneof![1u32..120, 120u32..(20 * 24 * 60)],
        0..USERS.len(),
        prop::bool::weighted(0.15),
        prop::bool::weighted(0.1),
        words(),
    )
        .prop_map(|(after_minutes, author, broadcast, bot, words)| Reply {
            after_minutes,
            author,
            broadcast,
            bot,
            words,
        })
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        4 => Just(Kind::Plain),
        1 => Just(Kind::Bot),
        1 => Just(Kind::Join),
        1 => Just(Kind::LoneParent),
        3 => prop::collection::vec(reply(), 0..8).prop_flat_map(|replies| {
            let n = replies.len();
            (Just(replies), 0..=n).prop_map(|(replies, claimed)| Kind::Thread { replies, claimed })
        }),
    ]
}

fn post() -> impl Strategy<Value = Post> {
    (0i64..15, 0i64..(24 * 60), 0..USERS.len(), words(), kind()).prop_map(
        |(day, minute, author, words, kind)| Post {
            day,
            minute,
            author,
            words,
            kind,
        },
    )
}

/// Channels, each a list of posts.
fn workspace() -> impl Strategy<Value = Vec<Vec<Post>>> {
    prop::collection::vec(prop::collection::vec(post(), 1..25), 1..4)
}

/// Writes the workspace as a Slack export; every message gets a unique ts and text.
struct Writer {
    serial: u64,
    /// Channel folder -> day -> messages.
    days: BTreeMap<String, BTreeMap<String, Vec<Value>>>,
}

impl Writer {
    fn message(&mut self, folder: &str, secs: i64, author: usize, words: &[&str]) -> Value {
        self.serial += 1;
        let ts = format!("{secs}.{:06}", self.serial);
        let text = format!("{} number {}", words.join(" "), self.serial);
        let day = chrono::DateTime::from_timestamp(secs, 0)
            .unwrap()
            .date_naive()
            .to_string();
        let message = json!({"type": "message", "ts": ts, "user": USERS[author].0, "text": text});
        self.days
            .entry(folder.to_string())
            .or_default()
            .entry(day)
            .or_default()
            .push(message.clone());
        message
    }

    /// Sets fields of the message last added with `ts`.
    fn update(&mut self, folder: &str, ts: &str, fields: Value) {
        let message = self
            .days
            .get_mut(folder)
            .unwrap()
            .values_mut()
            .flatten()
            .find(|m| m["ts"] == ts)
            .unwrap();
        for (k, v) in fields.as_object().unwrap() {
            message[k] = v.clone();
        }
    }

    fn channel(&mut self, folder: &str, posts: &[Post]) {
        for post in posts {
            let secs = EPOCH + post.day * 86_400 + post.minute * 60;
            let m = self.message(folder, secs, post.author, &post.words);
            let ts = m["ts"].as_str().unwrap().to_string();
            match &post.kind {
                Kind::Plain => {}
                Kind::Bot => self.update(folder, &ts, bot_fields()),
                Kind::Join => self.update(
                    folder,
                    &ts,
                    json!({"subtype": "channel_join", "text": format!("<@{}> has joined the channel", USERS[post.author].0)}),
                ),
                Kind::LoneParent => {
                    self.update(folder, &ts, json!({"thread_ts": ts, "reply_count": 0}))
                }
                Kind::Thread { replies, claimed } => {
                    let mut reply_ts = Vec::new();
                    let mut sorted = replies.clone();
                    sorted.sort_by_key(|r| r.after_minutes);
                    for r in &sorted {
                        let m = self.message(
                            folder,
                            secs + i64::from(r.after_minutes) * 60,
                            r.author,
                            &r.words,
                        );
                        let rts = m["ts"].as_str().unwrap().to_string();
                        let mut fields = json!({"thread_ts": ts, "parent_user_id": USERS[post.author].0});
                        if r.broadcast {
                            fields["subtype"] = "thread_broadcast".into();
                            fields["root"] = json!({"ts": ts, "text": m["text"]});
                        } else if r.bot {
                            fields = merge(fields, bot_fields());
                        }
                        self.update(folder, &rts, fields);
                        reply_ts.push(rts);
                    }
                    let mut fields = json!({"thread_ts": ts, "reply_count": claimed});
                    if *claimed > 0 {
                        fields["latest_reply"] = reply_ts[claimed - 1].clone().into();
                    }
                    self.update(folder, &ts, fields);
                }
            }
        }
    }

    fn write(self, root: &Path, channels: usize) {
        let users: Vec<Value> = USERS
            .iter()
            .map(|(id, name)| json!({"id": id, "name": name.to_lowercase(), "profile": {"display_name": name}}))
            .collect();
        // One more channel listed than there are folders, as in real exports.
        let listed: Vec<Value> = (0..=channels)
            .map(|i| json!({"id": format!("C{i:02}"), "name": format!("channel-{i}")}))
            .collect();
        std::fs::write(root.join("users.json"), serde_json::to_vec(&users).unwrap()).unwrap();
        std::fs::write(
            root.join("channels.json"),
            serde_json::to_vec(&listed).unwrap(),
        )
        .unwrap();
        for (folder, days) in self.days {
            std::fs::create_dir(root.join(&folder)).unwrap();
            for (day, mut messages) in days {
                messages.sort_by(|a, b| {
                    let ts = |m: &Value| m["ts"].as_str().unwrap().parse::<f64>().unwrap();
                    ts(a).total_cmp(&ts(b))
                });
                std::fs::write(
                    root.join(&folder).join(format!("{day}.json")),
                    serde_json::to_vec_pretty(&messages).unwrap(),
                )
                .unwrap();
            }
        }
    }
}

fn bot_fields() -> Value {
    json!({"subtype": "bot_message", "username": BOT, "bot_id": "B01CI", "user": Value::Null})
}

fn merge(mut a: Value, b: Value) -> Value {
    for (k, v) in b.as_object().unwrap() {
        a[k] = v.clone();
    }
    a
}

fn write_export(channels: &[Vec<Post>], root: &Path) {
    let mut writer = Writer {
        serial: 0,
        days: BTreeMap::new(),
    };
    for (i, posts) in channels.iter().enumerate() {
        writer.channel(&format!("channel-{i}"), posts);
    }
    writer.write(root, channels.len());
}

/// The `Author: text` line of every message the transform keeps (not a join).
fn expected_lines(root: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    for (_, name) in export::channels_with_folders(root) {
        for messages in export::raw_days(&root.join(name)).into_values() {
            for m in messages.iter().filter(|m| !export::is_dropped(m)) {
                let author = match export::str_field(m, "username") {
                    Some(bot) => bot,
                    None => {
                        let user = export::str_field(m, "user").unwrap();
                        USERS.iter().find(|(id, _)| *id == user).unwrap().1
                    }
                };
                lines.push(format!(
                    "{author}: {}",
                    export::str_field(m, "text").unwrap()
                ));
            }
        }
    }
    lines
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn every_message_is_chunked_once_and_no_chunk_text_repeats(
        channels in workspace(),
        max_tokens in prop::sample::select(&[64usize, 256][..]),
        chat_max_messages in prop::sample::select(&[3usize, 40][..]),
    ) {
        let dir = tempfile::tempdir().unwrap();
        write_export(&channels, dir.path());
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let out = runtime.block_on(export::read(SlackExportConfig::new(dir.path())));
        prop_assert_eq!(out.dead_letters, 0);
        assert_each_message_in_its_one_document(&export::expected(dir.path()), &out.documents);

        let config = ChunkingConfig { max_tokens, chat_max_messages, ..ChunkingConfig::default() };
        let chunks = export::chunk_all(&out.documents, config);
        assert_no_twin_chunks(&chunks);
        for line in expected_lines(dir.path()) {
            prop_assert!(
                chunks.iter().any(|c| c.text.lines().any(|l| l == line)),
                "no chunk holds {:?}", line
            );
        }
    }
}
