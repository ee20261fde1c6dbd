//! Checks the local Slack Web API server (`support/slack_web_api.rs`) itself, with plain HTTP
//! requests: that it pages, orders, bounds, limits and refuses the way Slack documents, so that
//! tests of the Slack API source can trust it. Also that the same workspace written as an export
//! (`Workspace::write_export`) holds the very messages the server serves.

#[path = "support/slack_web_api.rs"]
mod slack_web_api;

use std::time::Duration;

use serde_json::{json, Value};
use slack_web_api::{Message, ServerOptions, SlackServer, Workspace};

const TOKEN: &str = "xoxb-selfcheck-0000000000-abcdefghijklmnop";

/// The status, the Retry-After header and the JSON body of one GET.
struct Answer {
    status: u16,
    retry_after: Option<String>,
    body: Value,
}

async fn call_with(
    server: &SlackServer,
    auth: Option<&str>,
    method: &str,
    params: &[(&str, &str)],
) -> Answer {
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    let url = format!("{}/{method}?{query}", server.base_url());
    let mut request = reqwest::Client::new().get(url);
    if let Some(token) = auth {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let body = response.json().await.unwrap();
    Answer {
        status,
        retry_after,
        body,
    }
}

async fn call(server: &SlackServer, method: &str, params: &[(&str, &str)]) -> Answer {
    call_with(server, Some(TOKEN), method, params).await
}

fn ts_list(body: &Value) -> Vec<String> {
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["ts"].as_str().unwrap().to_string())
        .collect()
}

fn next_cursor(body: &Value) -> String {
    body["response_metadata"]["next_cursor"]
        .as_str()
        .unwrap()
        .to_string()
}

/// `general` (C01): six messages at 1..6, a thread on 2 (replies 2.1, 2.2, the latter
/// broadcast), an edit of 3.
fn sample() -> Workspace {
    let mut w = Workspace::default();
    w.add_user("U01", "ada");
    w.add_user("U02", "bob");
    w.add_channel("C01", "general");
    for i in 1..=6 {
        w.post(
            "general",
            &format!("100000000{i}.000000"),
            "U01",
            &format!("m{i}"),
        );
    }
    w.reply(
        "general",
        "1000000002.000000",
        "1000000002.100000",
        "U02",
        "r1",
    );
    w.broadcast(
        "general",
        "1000000002.000000",
        "1000000002.200000",
        "U01",
        "r2",
    );
    w.edit(
        "general",
        "1000000003.000000",
        "m3 edited",
        "1000000009.000000",
    );
    w
}

#[tokio::test]
async fn lists_use_short_pages_until_the_cursor_is_empty() {
    let mut w = Workspace::default();
    for i in 0..7 {
        w.add_channel(&format!("C{i:02}"), &format!("chan-{i}"));
    }
    w.channel_mut("chan-3").is_archived = true;
    let private = w.channel_mut("chan-4");
    private.is_private = true;
    let hidden = w.add_channel("C99", "secret");
    hidden.is_private = true;
    hidden.is_member = false;
    let mut options = ServerOptions::new(TOKEN);
    options.short_pages = true;
    let server = SlackServer::start(w, options).await;

    let mut ids = Vec::new();
    let mut cursor = String::new();
    let mut short_page_with_more = false;
    loop {
        let a = call(
            &server,
            "conversations.list",
            &[
                ("types", "public_channel,private_channel"),
                ("limit", "4"),
                ("cursor", &cursor),
            ],
        )
        .await;
        assert_eq!(a.body["ok"], true, "{}", a.body);
        let page = a.body["channels"].as_array().unwrap();
        for c in page {
            assert_eq!(c["is_channel"], !c["is_private"].as_bool().unwrap());
            ids.push(c["id"].as_str().unwrap().to_string());
        }
        cursor = next_cursor(&a.body);
        if cursor.is_empty() {
            break;
        }
        short_page_with_more |= page.len() < 4;
    }
    assert!(short_page_with_more, "pages are shorter than the limit");
    // Every channel but the private one the caller is not in, once, in id order.
    assert_eq!(ids, ["C00", "C01", "C02", "C03", "C04", "C05", "C06"]);

    // Defaults: public channels only; exclude_archived hides the archived one.
    let a = call(
        &server,
        "conversations.list",
        &[("exclude_archived", "true")],
    )
    .await;
    let names: Vec<&str> = a.body["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["chan-0", "chan-1", "chan-2", "chan-5", "chan-6"]);

    let a = call(
        &server,
        "conversations.list",
        &[("cursor", "bm90LWEtY3Vyc29y")],
    )
    .await;
    assert_eq!(a.body["error"], "invalid_cursor");
}

#[tokio::test]
async fn users_list_pages_members_with_profiles() {
    let server = SlackServer::start(sample(), ServerOptions::new(TOKEN)).await;
    let first = call(&server, "users.list", &[("limit", "1")]).await;
    assert_eq!(first.body["members"][0]["id"], "U01");
    assert_eq!(first.body["members"][0]["profile"]["display_name"], "ada");
    let cursor = next_cursor(&first.body);
    assert!(!cursor.is_empty());
    let second = call(
        &server,
        "users.list",
        &[("limit", "1"), ("cursor", &cursor)],
    )
    .await;
    assert_eq!(second.body["members"][0]["id"], "U02");
    assert_eq!(next_cursor(&second.body), "");
}

#[tokio::test]
async fn history_is_newest_first_with_exclusive_bounds() {
    let server = SlackServer::start(sample(), ServerOptions::new(TOKEN)).await;

    let all = call(&server, "conversations.history", &[("channel", "C01")]).await;
    // Replies stay out, except the broadcast one.
    assert_eq!(
        ts_list(&all.body),
        [
            "1000000006.000000",
            "1000000005.000000",
            "1000000004.000000",
            "1000000003.000000",
            "1000000002.200000",
            "1000000002.000000",
            "1000000001.000000",
        ]
    );
    assert_eq!(all.body["has_more"], false);
    assert_eq!(next_cursor(&all.body), "");
    let messages = all.body["messages"].as_array().unwrap();
    let parent = &messages[5];
    assert_eq!(parent["thread_ts"], "1000000002.000000");
    assert_eq!(parent["reply_count"], 2);
    assert_eq!(parent["reply_users_count"], 2);
    assert_eq!(parent["latest_reply"], "1000000002.200000");
    assert_eq!(parent["reply_users"], serde_json::json!(["U02", "U01"]));
    let broadcast = &messages[4];
    assert_eq!(broadcast["subtype"], "thread_broadcast");
    assert_eq!(broadcast["thread_ts"], "1000000002.000000");
    assert_eq!(broadcast["root"]["ts"], "1000000002.000000");
    let edited = &messages[3];
    assert_eq!(edited["text"], "m3 edited");
    assert_eq!(edited["edited"]["ts"], "1000000009.000000");
    assert!(messages[0].get("thread_ts").is_none());

    let bounded = call(
        &server,
        "conversations.history",
        &[
            ("channel", "C01"),
            ("oldest", "1000000002.200000"),
            ("latest", "1000000005"),
        ],
    )
    .await;
    assert_eq!(
        ts_list(&bounded.body),
        ["1000000004.000000", "1000000003.000000"]
    );
    let inclusive = call(
        &server,
        "conversations.history",
        &[
            ("channel", "C01"),
            ("oldest", "1000000002.2"),
            ("latest", "1000000005.000000"),
            ("inclusive", "true"),
        ],
    )
    .await;
    assert_eq!(
        ts_list(&inclusive.body),
        [
            "1000000005.000000",
            "1000000004.000000",
            "1000000003.000000",
            "1000000002.200000"
        ]
    );

    let bad = call(
        &server,
        "conversations.history",
        &[("channel", "C01"), ("oldest", "yesterday")],
    )
    .await;
    assert_eq!(bad.body["error"], "invalid_ts_oldest");
}

#[tokio::test]
async fn history_pages_under_the_page_cap_and_follows_workspace_changes() {
    let mut options = ServerOptions::new(TOKEN);
    options.page_cap = Some(3);
    let server = SlackServer::start(sample(), options).await;

    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let a = call(
            &server,
            "conversations.history",
            &[("channel", "C01"), ("limit", "100"), ("cursor", &cursor)],
        )
        .await;
        let page = ts_list(&a.body);
        assert!(page.len() <= 3);
        seen.extend(page);
        cursor = next_cursor(&a.body);
        assert_eq!(a.body["has_more"], !cursor.is_empty());
        if cursor.is_empty() {
            break;
        }
    }
    assert_eq!(seen.len(), 7);
    assert_eq!(server.count("conversations.history"), 3);
    assert_eq!(server.messages_returned("conversations.history"), 7);

    // Between runs: a new message, a deleted thread, an archived channel.
    server.with_workspace(|w| {
        w.post("general", "1000000007.000000", "U02", "m7");
        w.delete("general", "1000000002.000000");
        w.archive("general");
    });
    let a = call(
        &server,
        "conversations.history",
        &[("channel", "C01"), ("oldest", "1000000005.000000")],
    )
    .await;
    assert_eq!(ts_list(&a.body), ["1000000007.000000", "1000000006.000000"]);
    let gone = call(
        &server,
        "conversations.replies",
        &[("channel", "C01"), ("ts", "1000000002.000000")],
    )
    .await;
    assert_eq!(gone.body["error"], "thread_not_found");
    server.with_workspace(|w| w.remove_channel("general"));
    let a = call(&server, "conversations.history", &[("channel", "C01")]).await;
    assert_eq!(a.body["error"], "channel_not_found");
}

#[tokio::test]
async fn replies_put_the_parent_first_on_every_page() {
    let mut w = sample();
    for i in 3..=6 {
        w.reply(
            "general",
            "1000000002.000000",
            &format!("1000000002.{i}00000"),
            "U02",
            &format!("r{i}"),
        );
    }
    let server = SlackServer::start(w, ServerOptions::new(TOKEN)).await;
    let mut pages = Vec::new();
    let mut cursor = String::new();
    loop {
        let a = call(
            &server,
            "conversations.replies",
            &[
                ("channel", "C01"),
                ("ts", "1000000002.000000"),
                ("limit", "3"),
                ("cursor", &cursor),
            ],
        )
        .await;
        assert_eq!(a.body["ok"], true, "{}", a.body);
        pages.push(ts_list(&a.body));
        cursor = next_cursor(&a.body);
        if cursor.is_empty() {
            break;
        }
    }
    let p = "1000000002.000000";
    assert_eq!(
        pages,
        [
            vec![p, "1000000002.100000", "1000000002.200000"],
            vec![p, "1000000002.300000", "1000000002.400000"],
            vec![p, "1000000002.500000", "1000000002.600000"],
        ]
    );

    // Parent on the first page only.
    let mut options = ServerOptions::new(TOKEN);
    options.replies_parent_every_page = false;
    server.set_options(options);
    let first = call(
        &server,
        "conversations.replies",
        &[("channel", "C01"), ("ts", p), ("limit", "3")],
    )
    .await;
    assert_eq!(
        ts_list(&first.body),
        [p, "1000000002.100000", "1000000002.200000"]
    );
    assert_eq!(first.body["messages"][1]["parent_user_id"], "U01");
    let cursor = next_cursor(&first.body);
    let second = call(
        &server,
        "conversations.replies",
        &[
            ("channel", "C01"),
            ("ts", p),
            ("limit", "3"),
            ("cursor", &cursor),
        ],
    )
    .await;
    assert_eq!(
        ts_list(&second.body),
        [
            "1000000002.300000",
            "1000000002.400000",
            "1000000002.500000"
        ]
    );

    // `oldest` filters the replies, not the parent.
    let newer = call(
        &server,
        "conversations.replies",
        &[
            ("channel", "C01"),
            ("ts", p),
            ("oldest", "1000000002.400000"),
        ],
    )
    .await;
    assert_eq!(
        ts_list(&newer.body),
        [p, "1000000002.500000", "1000000002.600000"]
    );
    // A message without replies comes alone.
    let alone = call(
        &server,
        "conversations.replies",
        &[("channel", "C01"), ("ts", "1000000005.000000")],
    )
    .await;
    assert_eq!(ts_list(&alone.body), ["1000000005.000000"]);
}

#[tokio::test]
async fn a_method_limit_answers_429_with_retry_after() {
    let options =
        ServerOptions::new(TOKEN).limit("conversations.history", 2, Duration::from_secs(3));
    let server = SlackServer::start(sample(), options).await;
    let params = [("channel", "C01")];
    assert_eq!(
        call(&server, "conversations.history", &params).await.status,
        200
    );
    assert_eq!(
        call(&server, "conversations.history", &params).await.status,
        200
    );
    let refused = call(&server, "conversations.history", &params).await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.body["ok"], false);
    assert_eq!(refused.body["error"], "ratelimited");
    let seconds: u64 = refused.retry_after.unwrap().parse().unwrap();
    assert!((1..=3).contains(&seconds), "Retry-After {seconds}");
    // Other methods are not limited by it.
    assert_eq!(call(&server, "users.list", &[]).await.status, 200);
    assert_eq!(server.refused_429(), 1);
    assert_eq!(
        server.max_in_window("conversations.history", Duration::from_secs(3)),
        2
    );
    let log = server.log();
    let last = log
        .iter()
        .rfind(|l| l.method == "conversations.history")
        .unwrap();
    assert_eq!(last.status, 429);
    assert_eq!(last.error.as_deref(), Some("ratelimited"));
}

#[tokio::test]
async fn a_429_storm_refuses_the_first_requests() {
    let mut options = ServerOptions::new(TOKEN);
    options.fail_429_first = 2;
    let server = SlackServer::start(sample(), options).await;
    for _ in 0..2 {
        let a = call(&server, "conversations.list", &[]).await;
        assert_eq!(a.status, 429);
        assert_eq!(a.retry_after.as_deref(), Some("1"));
    }
    assert_eq!(
        call(&server, "conversations.list", &[]).await.body["ok"],
        true
    );
    assert_eq!(server.refused_429(), 2);
}

#[tokio::test]
async fn broken_paging_a_method_storm_and_an_empty_listing_are_served_when_switched_on() {
    let mut ws = Workspace::default();
    ws.add_channel("C1", "one");
    ws.add_channel("C2", "two");
    for n in 0..6 {
        ws.post("one", &slack_web_api::ts(1_700_000_000 + n, 0), "U1", "m");
        ws.post("two", &slack_web_api::ts(1_700_000_000 + n, 0), "U1", "m");
    }
    let options = ServerOptions::new(TOKEN)
        .broken(
            "conversations.history",
            Some("C1"),
            slack_web_api::BrokenCursor::NoCursor,
        )
        .broken(
            "conversations.history",
            Some("C2"),
            slack_web_api::BrokenCursor::Repeated,
        );
    let server = SlackServer::start(ws, options).await;
    // has_more without a cursor.
    let a = call(
        &server,
        "conversations.history",
        &[("channel", "C1"), ("limit", "2")],
    )
    .await;
    assert_eq!(a.body["has_more"], true);
    assert_eq!(next_cursor(&a.body), "");
    // The second page names itself again, every time.
    let first = call(
        &server,
        "conversations.history",
        &[("channel", "C2"), ("limit", "2")],
    )
    .await;
    let cursor = next_cursor(&first.body);
    assert!(!cursor.is_empty());
    for _ in 0..3 {
        let again = call(
            &server,
            "conversations.history",
            &[("channel", "C2"), ("limit", "2"), ("cursor", &cursor)],
        )
        .await;
        assert_eq!(again.body["has_more"], true);
        assert_eq!(next_cursor(&again.body), cursor);
    }
    // A last page stays a last page.
    let all = call(
        &server,
        "conversations.history",
        &[("channel", "C1"), ("limit", "100")],
    )
    .await;
    assert_eq!(all.body["has_more"], false);

    let mut options = ServerOptions::new(TOKEN);
    options.empty_listing = true;
    options.method_storm = Some(slack_web_api::MethodStorm {
        method: "conversations.replies".to_string(),
        period: Duration::from_millis(300),
        retry_after_secs: 1,
    });
    server.set_options(options);
    let listed = call(&server, "conversations.list", &[]).await;
    assert_eq!(listed.body["ok"], true);
    assert_eq!(listed.body["channels"], json!([]));
    assert_eq!(next_cursor(&listed.body), "");
    let ts = slack_web_api::ts(1_700_000_000, 0);
    let replies = [("channel", "C1"), ("ts", ts.as_str())];
    for _ in 0..2 {
        let a = call(&server, "conversations.replies", &replies).await;
        assert_eq!(a.status, 429);
        assert_eq!(a.retry_after.as_deref(), Some("1"));
        assert_eq!(a.body["error"], "ratelimited");
    }
    // Other methods are served through the storm; after its period, so is the method.
    let other = call(&server, "conversations.history", &[("channel", "C1")]).await;
    assert_eq!(other.status, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        call(&server, "conversations.replies", &replies)
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn auth_and_unknown_methods_answer_ok_false() {
    let mut options = ServerOptions::new(TOKEN);
    options.not_in_channel = vec!["C01".into()];
    let server = SlackServer::start(sample(), options).await;

    let missing = call_with(&server, None, "conversations.list", &[]).await;
    assert_eq!(missing.status, 200);
    assert_eq!(missing.body["error"], "not_authed");
    let wrong = call_with(&server, Some("xoxb-wrong"), "conversations.list", &[]).await;
    assert_eq!(wrong.status, 200);
    assert_eq!(wrong.body["ok"], false);
    assert_eq!(wrong.body["error"], "invalid_auth");
    let log = server.log();
    assert!(!log[0].auth_header);
    assert!(log[1].auth_header);
    assert_eq!(log[1].error.as_deref(), Some("invalid_auth"));

    let unknown = call(&server, "conversations.nope", &[]).await;
    assert_eq!(unknown.body["error"], "unknown_method");
    let a = call(&server, "conversations.history", &[("channel", "C01")]).await;
    assert_eq!(a.body["error"], "not_in_channel");
    let a = call(
        &server,
        "conversations.replies",
        &[("channel", "C01"), ("ts", "1000000002.000000")],
    )
    .await;
    assert_eq!(a.body["error"], "not_in_channel");
    let a = call(&server, "conversations.history", &[("channel", "C77")]).await;
    assert_eq!(a.body["error"], "channel_not_found");
    assert_eq!(server.count("conversations.history"), 2);
}

// ------------------------------------------------------------------------------------------
// Extra fields and the export
// ------------------------------------------------------------------------------------------

const PARENT: &str = "1709550000.000100"; // 2024-03-04 11:00 UTC
const FILE: &str = "1709551000.000200";
const EDITED: &str = "1709552000.000300";
const REPLY: &str = "1709560000.000400"; // 2024-03-04 13:46 UTC
const LAST_OF_DAY: &str = "1709596799.999999"; // 2024-03-04 23:59:59.999999 UTC
const BROADCAST: &str = "1709596800.000000"; // 2024-03-05 00:00 UTC
const BOT: &str = "1709600100.000500";

/// `general` (C01): on 2024-03-04 a thread parent, a message with a file (and stale `ts` and
/// `reply_count` in its extra fields, which must not show), an edited message, a reply, a
/// message a microsecond before midnight; on 2024-03-05 a broadcast reply to the thread and a
/// bot post without `user`. An archived channel, a private one, one without messages.
fn export_sample() -> Workspace {
    let mut w = Workspace::default();
    w.add_user("U01", "ada");
    let bob = w.add_user("U02", "bob");
    bob.real_name = "Bob Stone".into();
    bob.display_name = String::new();
    w.add_channel("C01", "general");
    w.post("general", PARENT, "U01", "Is the deploy done?");
    w.post_message(
        "general",
        Message::new(FILE, "U02", "Uploaded the roadmap").with_extra(json!({
            "files": [{"id": "F01", "name": "roadmap.pdf", "title": "Q1 roadmap"}],
            "user_profile": {"display_name": "", "real_name": "Bob Stone"},
            "ts": "1.000000",
            "reply_count": 9,
        })),
    );
    w.post("general", EDITED, "U01", "typo fixd");
    w.edit("general", EDITED, "typo fixed", "1709552060.000000");
    w.reply("general", PARENT, REPLY, "U02", "Almost");
    w.message_mut("general", REPLY).extra =
        json!({"reactions": [{"name": "eyes", "users": ["U01"], "count": 1}]})
            .as_object()
            .unwrap()
            .clone();
    w.post("general", LAST_OF_DAY, "U01", "good night");
    w.broadcast("general", PARENT, BROADCAST, "U02", "Done, shipped");
    let mut bot = Message::new(BOT, "", "Nightly build finished").with_extra(json!({
        "bot_id": "B01",
        "username": "ci-bot",
        "attachments": [{"fallback": "arm64: 41 min"}],
    }));
    bot.subtype = Some("bot_message".into());
    w.post_message("general", bot);

    w.add_channel("C02", "old");
    w.post("old", "1600000000.000000", "U01", "archived news");
    w.archive("old");
    w.add_channel("C03", "secret").is_private = true;
    w.post("secret", "1709550000.000000", "U01", "psst");
    w.add_channel("C04", "quiet");
    w
}

fn read_json(path: &std::path::Path) -> Value {
    let body = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The entries of `dir`, sorted; folders end in `/`.
fn entries(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            if e.file_type().unwrap().is_dir() {
                format!("{name}/")
            } else {
                name
            }
        })
        .collect();
    names.sort();
    names
}

fn field<'a>(messages: &'a Value, ts: &str) -> &'a Value {
    messages
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["ts"] == ts)
        .unwrap_or_else(|| panic!("no message {ts} in {messages}"))
}

#[tokio::test]
async fn extra_fields_are_served_without_overriding_the_servers_own() {
    let server = SlackServer::start(export_sample(), ServerOptions::new(TOKEN)).await;
    let history = call(&server, "conversations.history", &[("channel", "C01")]).await;
    let file = field(&history.body["messages"], FILE);
    assert_eq!(file["files"][0]["name"], "roadmap.pdf");
    assert_eq!(file["user_profile"]["real_name"], "Bob Stone");
    assert!(file.get("reply_count").is_none(), "{file}");
    assert!(file.get("thread_ts").is_none(), "{file}");
    let bot = field(&history.body["messages"], BOT);
    assert!(
        bot.get("user").is_none(),
        "a message without a user has no `user`: {bot}"
    );
    assert_eq!(bot["bot_id"], "B01");
    assert_eq!(bot["username"], "ci-bot");
    assert_eq!(bot["subtype"], "bot_message");

    let replies = call(
        &server,
        "conversations.replies",
        &[("channel", "C01"), ("ts", PARENT)],
    )
    .await;
    assert_eq!(ts_list(&replies.body), [PARENT, REPLY, BROADCAST]);
    let reply = field(&replies.body["messages"], REPLY);
    assert_eq!(reply["reactions"][0]["name"], "eyes");
    assert_eq!(reply["thread_ts"], PARENT);
}

#[tokio::test]
async fn an_export_holds_every_message_as_the_server_serves_it() {
    let workspace = export_sample();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("export");
    workspace.write_export(&root);
    let server = SlackServer::start(workspace, ServerOptions::new(TOKEN)).await;

    assert_eq!(
        entries(&root),
        [
            "channels.json",
            "general/",
            "groups.json",
            "old/",
            "secret/",
            "users.json"
        ],
        "a channel without messages has no folder"
    );
    assert_eq!(
        entries(&root.join("general")),
        ["2024-03-04.json", "2024-03-05.json"]
    );

    // The listings, exactly as the list methods serve them.
    let users = call(&server, "users.list", &[]).await;
    assert_eq!(read_json(&root.join("users.json")), users.body["members"]);
    let public = call(&server, "conversations.list", &[]).await;
    let channels = read_json(&root.join("channels.json"));
    assert_eq!(channels, public.body["channels"]);
    let names: Vec<&str> = channels
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["general", "old", "quiet"], "archived ones included");
    assert_eq!(channels[1]["is_archived"], true);
    let private = call(
        &server,
        "conversations.list",
        &[("types", "private_channel")],
    )
    .await;
    let groups = read_json(&root.join("groups.json"));
    assert_eq!(groups, private.body["channels"]);
    assert_eq!(groups[0]["name"], "secret");

    // Every message of a UTC day, replies included, oldest first.
    let day1 = read_json(&root.join("general/2024-03-04.json"));
    let day2 = read_json(&root.join("general/2024-03-05.json"));
    assert_eq!(
        ts_list(&json!({"messages": day1})),
        [PARENT, FILE, EDITED, REPLY, LAST_OF_DAY]
    );
    assert_eq!(ts_list(&json!({"messages": day2})), [BROADCAST, BOT]);

    // Each one exactly as the server serves it: history for what it lists (a broadcast reply
    // with its `root`), replies for the rest.
    let history = call(&server, "conversations.history", &[("channel", "C01")]).await;
    let replies = call(
        &server,
        "conversations.replies",
        &[("channel", "C01"), ("ts", PARENT)],
    )
    .await;
    let mut served: Vec<&Value> = history.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    for m in replies.body["messages"].as_array().unwrap() {
        if !served.iter().any(|s| s["ts"] == m["ts"]) {
            served.push(m);
        }
    }
    for exported in day1
        .as_array()
        .unwrap()
        .iter()
        .chain(day2.as_array().unwrap())
    {
        let ts = exported["ts"].as_str().unwrap();
        let same = served.iter().find(|s| s["ts"] == ts).unwrap();
        assert_eq!(exported, *same, "message {ts}");
    }

    // The shape the export reader relies on.
    let parent = field(&day1, PARENT);
    assert_eq!(parent["thread_ts"], PARENT);
    assert_eq!(parent["reply_count"], 2);
    assert_eq!(parent["reply_users_count"], 1);
    assert_eq!(parent["reply_users"], json!(["U02"]));
    assert_eq!(parent["latest_reply"], BROADCAST);
    let reply = field(&day1, REPLY);
    assert_eq!(reply["thread_ts"], PARENT);
    assert_eq!(reply["parent_user_id"], "U01");
    assert!(reply.get("subtype").is_none());
    let broadcast = field(&day2, BROADCAST);
    assert_eq!(broadcast["subtype"], "thread_broadcast");
    assert_eq!(broadcast["thread_ts"], PARENT);
    assert_eq!(broadcast["parent_user_id"], "U01");
    assert_eq!(broadcast["root"]["ts"], PARENT);
    assert_eq!(broadcast["root"]["reply_count"], 2);
    let edited = field(&day1, EDITED);
    assert_eq!(edited["text"], "typo fixed");
    assert_eq!(
        edited["edited"],
        json!({"user": "U01", "ts": "1709552060.000000"})
    );
    let file = field(&day1, FILE);
    assert_eq!(file["files"][0]["name"], "roadmap.pdf");
    assert_eq!(file["user_profile"]["real_name"], "Bob Stone");
    assert!(file.get("reply_count").is_none());
    assert!(field(&day2, BOT).get("user").is_none());
    for m in day1
        .as_array()
        .unwrap()
        .iter()
        .chain(day2.as_array().unwrap())
    {
        assert_eq!(m["type"], "message");
    }
    assert_eq!(
        ts_list(&json!({"messages": read_json(&root.join("old/2020-09-13.json"))})),
        ["1600000000.000000"]
    );
}

#[tokio::test]
async fn writing_the_export_again_changes_only_what_changed() {
    let mut workspace = export_sample();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    workspace.write_export(root);

    // Age every file, to tell rewritten files from untouched ones whatever the clock's grain.
    let long_ago = std::time::UNIX_EPOCH + Duration::from_secs(1_000_000);
    let day1 = root.join("general/2024-03-04.json");
    let day2 = root.join("general/2024-03-05.json");
    let users = root.join("users.json");
    for path in [&day1, &day2, &users] {
        let file = std::fs::File::options().write(true).open(path).unwrap();
        file.set_modified(long_ago).unwrap();
    }
    let modified = |path: &std::path::Path| std::fs::metadata(path).unwrap().modified().unwrap();

    // The bot post goes (2024-03-05 still holds the broadcast), #old is removed, #secret
    // loses its only message, #quiet gets one on a new day.
    workspace
        .channel_mut("general")
        .messages
        .retain(|m| m.ts != BOT);
    workspace.remove_channel("old");
    workspace.delete("secret", "1709550000.000000");
    workspace.post("quiet", "1709683200.000000", "U02", "hello"); // 2024-03-06
    workspace.write_export(root);

    assert_eq!(
        entries(root),
        [
            "channels.json",
            "general/",
            "groups.json",
            "quiet/",
            "users.json"
        ]
    );
    assert_eq!(
        modified(&day1),
        long_ago,
        "an unchanged day file is not rewritten"
    );
    assert_eq!(modified(&users), long_ago);
    assert_ne!(modified(&day2), long_ago);
    assert_eq!(ts_list(&json!({"messages": read_json(&day2)})), [BROADCAST]);
    assert_eq!(entries(&root.join("quiet")), ["2024-03-06.json"]);
    let names: Vec<String> = read_json(&root.join("channels.json"))
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["general", "quiet"]);
    assert_eq!(read_json(&root.join("groups.json"))[0]["name"], "secret");
}
