//! A small typed client for Chroma's HTTP API v2 (Chroma 1.x): the calls kass needs and no
//! more. Record calls take the collection's UUID, collection calls its name. The exchange
//! itself is the shared one ([`kass_pipeline::http`]): 429, 5xx answers and network errors
//! are retried with the shared back-off; other 4xx answers are returned at once.

use std::time::Duration;

use base64::prelude::{Engine, BASE64_STANDARD};
use reqwest::header::HeaderName;
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use kass_pipeline::http::{Auth, HttpClient, HttpConfig, HttpFailure};
use kass_pipeline::redact;
use kass_pipeline::retry::RetryPolicy;
use kass_pipeline::secret::Secret;
use kass_pipeline::telemetry::ChromaRetryScheduled;

use super::config::{ChromaConfig, TokenHeader};
use super::ChromaError;

/// One record's metadata as Chroma returns it (`null` when the record has none).
pub type RecordMetadata = Option<Map<String, Value>>;

#[derive(Debug, Clone, Deserialize)]
pub struct Collection {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub metadata: Option<Map<String, Value>>,
}

/// Records as `/get` returns them; absent includes are `null`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct GetResult {
    pub ids: Vec<String>,
    #[serde(default)]
    pub documents: Option<Vec<Option<String>>>,
    #[serde(default)]
    pub metadatas: Option<Vec<RecordMetadata>>,
}

/// `/query` for one query embedding: nested lists, one per query.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct QueryResult {
    pub ids: Vec<Vec<String>>,
    #[serde(default)]
    pub documents: Option<Vec<Vec<Option<String>>>>,
    #[serde(default)]
    pub metadatas: Option<Vec<Vec<RecordMetadata>>>,
    #[serde(default)]
    pub distances: Option<Vec<Vec<Option<f32>>>>,
}

/// How one try failed: the exchange (retried when [`HttpFailure::retry`] says so), or a 2xx
/// answer that is not the documented shape (never retried).
enum Failure {
    Http(HttpFailure),
    Unreadable(serde_json::Error),
}

#[derive(Clone)]
pub struct ChromaClient {
    http: HttpClient,
    root: String,
    /// `root` as shown in messages (see [`Self::url`]).
    shown: String,
    database: String,
    retry: RetryPolicy,
    base64_embeddings: bool,
}

impl ChromaClient {
    pub fn new(config: &ChromaConfig) -> Result<Self, String> {
        let auth = match &config.token_env {
            Some(var) => {
                let token = Secret::from_env(var)
                    .map_err(|e| format!("[chroma] the token in {e}"))?
                    .ok_or_else(|| format!("[chroma] token_env: {var} is not set"))?;
                Some(match config.token_header {
                    TokenHeader::Authorization => Auth::Bearer(token),
                    TokenHeader::XChromaToken => {
                        Auth::Header(HeaderName::from_static("x-chroma-token"), token)
                    }
                })
            }
            None => None,
        };
        let http = HttpClient::new(HttpConfig {
            connect_timeout: Duration::from_secs(5),
            auth,
            ..HttpConfig::new("chroma", config.timeout())
        })
        .map_err(|e| e.to_string())?;
        // reqwest sends a URL's `user:password@` as basic auth; the password is a secret too.
        if let Some(password) = reqwest::Url::parse(&config.url)
            .ok()
            .and_then(|url| url.password().map(str::to_string))
        {
            redact::register(&password);
        }
        let root = format!("{}/api/v2", config.url.trim_end_matches('/'));
        Ok(Self {
            shown: redact::without_userinfo(&root).into_owned(),
            database: format!(
                "{root}/tenants/{}/databases/{}",
                config.tenant, config.database
            ),
            root,
            http,
            retry: config.retry.clone(),
            base64_embeddings: false,
        })
    }

    /// The API root for messages: without the URL's user info, which may hold a password.
    pub fn url(&self) -> &str {
        &self.shown
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
        what: &str,
    ) -> Result<T, ChromaError> {
        self.retry
            .run(
                |_| self.attempt(method.clone(), url, body),
                |failure: &Failure| match failure {
                    Failure::Http(failure) => failure.retry(),
                    Failure::Unreadable(_) => None,
                },
                |failure, attempt, delay| {
                    if let Failure::Http(failure) = failure {
                        ChromaRetryScheduled {
                            what,
                            attempt,
                            delay,
                            error: failure,
                        }
                        .emit();
                    }
                },
            )
            .await
            .map_err(|(failure, attempts)| self.error(failure, attempts, what))
    }

    /// What a call that failed for good tells its caller.
    fn error(&self, failure: Failure, attempts: u32, what: &str) -> ChromaError {
        match failure {
            Failure::Unreadable(e) => ChromaError::Protocol {
                what: what.into(),
                message: e.to_string(),
            },
            Failure::Http(failure) => match failure {
                HttpFailure::Status {
                    status, message, ..
                } if !failure.is_retryable() => ChromaError::Rejected {
                    what: what.into(),
                    status: status.as_u16(),
                    message,
                },
                failure => ChromaError::Unavailable {
                    url: self.shown.clone(),
                    attempts,
                    message: failure.to_string(),
                },
            },
        }
    }

    /// One try of a call.
    async fn attempt<T: DeserializeOwned>(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<T, Failure> {
        let mut request = self.http.request(method, url);
        if let Some(body) = body {
            request = request.json(body);
        }
        let answer = self.http.send(request).await.map_err(Failure::Http)?;
        answer.json().map_err(Failure::Unreadable)
    }

    fn records(&self, collection_id: &str, op: &str) -> String {
        format!("{}/collections/{collection_id}/{op}", self.database)
    }

    pub async fn heartbeat(&self) -> Result<(), ChromaError> {
        let _: Value = self
            .call(
                Method::GET,
                &format!("{}/heartbeat", self.root),
                None,
                "heartbeat",
            )
            .await?;
        Ok(())
    }

    /// What the server allows: the largest batch in one write (it does not enforce it; we
    /// do) and whether embeddings may be sent as base64 (from then on, they are).
    pub async fn pre_flight(&mut self) -> Result<usize, ChromaError> {
        let checks: Value = self
            .call(
                Method::GET,
                &format!("{}/pre-flight-checks", self.root),
                None,
                "pre-flight-checks",
            )
            .await?;
        self.base64_embeddings = checks
            .get("supports_base64_encoding")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        Ok(checks
            .get("max_batch_size")
            .and_then(Value::as_u64)
            .unwrap_or(1000) as usize)
    }

    /// `configuration` is Chroma's collection configuration (`embedding_function`, ...), set
    /// only when the collection is created.
    pub async fn get_or_create_collection(
        &self,
        name: &str,
        metadata: Map<String, Value>,
        configuration: Option<Value>,
    ) -> Result<Collection, ChromaError> {
        let mut body = json!({"name": name, "metadata": metadata, "get_or_create": true});
        if let Some(configuration) = configuration {
            body["configuration"] = configuration;
        }
        self.call(
            Method::POST,
            &format!("{}/collections", self.database),
            Some(&body),
            &format!("creating collection {name}"),
        )
        .await
    }

    /// `None` when there is no such collection.
    pub async fn get_collection(&self, name: &str) -> Result<Option<Collection>, ChromaError> {
        match self
            .call(
                Method::GET,
                &format!("{}/collections/{name}", self.database),
                None,
                &format!("collection {name}"),
            )
            .await
        {
            Ok(c) => Ok(Some(c)),
            Err(ChromaError::Rejected { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn upsert(
        &self,
        collection_id: &str,
        ids: &[&str],
        embeddings: &[&[f32]],
        documents: &[&str],
        metadatas: &[Map<String, Value>],
    ) -> Result<(), ChromaError> {
        // Base64 of little-endian f32s is a third of the JSON and spares the server parsing
        // 384+ decimal numbers per record.
        let embeddings: Value = if self.base64_embeddings {
            embeddings
                .iter()
                .map(|v| {
                    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                    Value::String(BASE64_STANDARD.encode(bytes))
                })
                .collect()
        } else {
            json!(embeddings)
        };
        let body = json!({
            "ids": ids,
            "embeddings": embeddings,
            "documents": documents,
            "metadatas": metadatas,
        });
        let _: Value = self
            .call(
                Method::POST,
                &self.records(collection_id, "upsert"),
                Some(&body),
                &format!("an upsert of {} records", ids.len()),
            )
            .await?;
        Ok(())
    }

    /// Merges `metadatas` into the metadata of existing records, leaving their vectors alone.
    pub async fn update_metadata(
        &self,
        collection_id: &str,
        ids: &[&str],
        metadatas: &[Map<String, Value>],
    ) -> Result<(), ChromaError> {
        let body = json!({"ids": ids, "metadatas": metadatas});
        let _: Value = self
            .call(
                Method::POST,
                &self.records(collection_id, "update"),
                Some(&body),
                &format!("a metadata update of {} records", ids.len()),
            )
            .await?;
        Ok(())
    }

    /// Records by ids and/or a `where` filter, with the given `include`s.
    pub async fn get(
        &self,
        collection_id: &str,
        ids: Option<&[&str]>,
        filter: Option<&Value>,
        include: &[&str],
        limit: Option<usize>,
        offset: Option<usize>,
    ) -> Result<GetResult, ChromaError> {
        let mut body = json!({"include": include});
        if let Some(ids) = ids {
            body["ids"] = json!(ids);
        }
        if let Some(filter) = filter {
            body["where"] = filter.clone();
        }
        if let Some(limit) = limit {
            body["limit"] = json!(limit);
        }
        if let Some(offset) = offset {
            body["offset"] = json!(offset);
        }
        self.call(
            Method::POST,
            &self.records(collection_id, "get"),
            Some(&body),
            "a get",
        )
        .await
    }

    pub async fn query(
        &self,
        collection_id: &str,
        embedding: &[f32],
        n_results: usize,
        filter: Option<&Value>,
    ) -> Result<QueryResult, ChromaError> {
        let mut body = json!({
            "query_embeddings": [embedding],
            "n_results": n_results,
            "include": ["documents", "metadatas", "distances"],
        });
        if let Some(filter) = filter {
            body["where"] = filter.clone();
        }
        self.call(
            Method::POST,
            &self.records(collection_id, "query"),
            Some(&body),
            "a query",
        )
        .await
    }

    /// Deletes by ids and/or `where`; returns how many records went.
    pub async fn delete(
        &self,
        collection_id: &str,
        ids: Option<&[&str]>,
        filter: Option<&Value>,
    ) -> Result<u64, ChromaError> {
        let mut body = json!({});
        if let Some(ids) = ids {
            body["ids"] = json!(ids);
        }
        if let Some(filter) = filter {
            body["where"] = filter.clone();
        }
        let answer: Value = self
            .call(
                Method::POST,
                &self.records(collection_id, "delete"),
                Some(&body),
                "a delete",
            )
            .await?;
        Ok(answer.get("deleted").and_then(Value::as_u64).unwrap_or(0))
    }

    pub async fn count(&self, collection_id: &str) -> Result<u64, ChromaError> {
        self.call(
            Method::GET,
            &self.records(collection_id, "count"),
            None,
            "a count",
        )
        .await
    }
}
