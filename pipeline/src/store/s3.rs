use async_trait::async_trait;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;

use super::{validate_key, ObjectStore, S3StoreConfig, StoreError};

/// Objects in an S3 bucket. Works with AWS and with local S3 APIs (moto, MinIO, LocalStack)
/// through `endpoint_url` and `force_path_style`. Transient failures are retried by the SDK's
/// standard retry policy up to `max_attempts`; after that the error is returned.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
}

impl S3Store {
    pub async fn connect(config: &S3StoreConfig) -> Self {
        let shared = config.endpoint().sdk_config().await;
        let builder = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(config.force_path_style)
            .retry_config(
                aws_config::retry::RetryConfig::standard()
                    .with_max_attempts(config.max_attempts.max(1)),
            );
        Self {
            client: Client::from_conf(builder.build()),
            bucket: config.bucket.clone(),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    fn error<E>(&self, op: &'static str, key: &str, e: SdkError<E, HttpResponse>) -> StoreError
    where
        E: std::error::Error + 'static,
    {
        let location = self.location(key);
        let reason = DisplayErrorContext(&e).to_string();
        // 4xx other than throttling and timeouts: the request itself is refused (403 from a
        // bucket policy or KMS). 5xx (503 SlowDown), timeouts and network errors may pass later.
        let refused = matches!(&e, SdkError::ServiceError(s)
            if matches!(s.raw().status().as_u16(), 400..=499)
                && !matches!(s.raw().status().as_u16(), 408 | 429));
        if refused {
            StoreError::Refused {
                op,
                location,
                reason,
            }
        } else {
            StoreError::Io {
                op,
                location,
                reason,
            }
        }
    }
}

fn content_type(key: &str) -> &'static str {
    if key.ends_with(".json") {
        "application/json"
    } else {
        "application/octet-stream"
    }
}

#[async_trait]
impl ObjectStore for S3Store {
    fn location(&self, key: &str) -> String {
        format!("s3://{}/{}", self.bucket, key)
    }

    async fn put(&self, key: &str, body: Vec<u8>) -> Result<(), StoreError> {
        validate_key(key)?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type(key))
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| self.error("write", key, e))?;
        Ok(())
    }

    async fn put_if_absent(&self, key: &str, body: Vec<u8>) -> Result<bool, StoreError> {
        validate_key(key)?;
        let result = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type(key))
            .if_none_match("*")
            .body(ByteStream::from(body))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            // 412: the key exists. 409: a concurrent conditional write to the same key won.
            Err(e)
                if matches!(
                    e.raw_response().map(|r| r.status().as_u16()),
                    Some(412 | 409)
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(self.error("write", key, e)),
        }
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        validate_key(key)?;
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| match &e {
                SdkError::ServiceError(s) if s.err().is_no_such_key() => StoreError::NotFound {
                    location: self.location(key),
                },
                _ => self.error("read", key, e),
            })?;
        let bytes = out.body.collect().await.map_err(|e| StoreError::Io {
            op: "read",
            location: self.location(key),
            reason: e.to_string(),
        })?;
        Ok(bytes.into_bytes().to_vec())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut keys = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.error("list", prefix, e))?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_string)),
            );
        }
        keys.sort();
        Ok(keys)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        validate_key(key)?;
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| self.error("delete", key, e))?;
        Ok(())
    }
}
