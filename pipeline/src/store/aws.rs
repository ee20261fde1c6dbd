//! The AWS settings every client of kass shares (S3, SQS, Secrets Manager): the standard
//! credential chain, an explicit region when given (us-east-1 when none is found, which local
//! servers accept), an optional endpoint for local APIs, and timeouts so that a stalled
//! endpoint fails instead of hanging a run.

use std::time::Duration;

/// Where AWS APIs are reached: AWS itself, or one local server (moto serves S3, SQS and
/// Secrets Manager on one port).
#[derive(Debug, Clone, Default)]
pub struct AwsEndpoint {
    pub endpoint_url: Option<String>,
    pub region: Option<String>,
}

impl AwsEndpoint {
    /// Shared SDK configuration; each client builds from it and adds the endpoint.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .operation_attempt_timeout(Duration::from_secs(60))
                    .operation_timeout(Duration::from_secs(300))
                    .build(),
            );
        if let Some(region) = &self.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        if let Some(endpoint) = &self.endpoint_url {
            loader = loader.endpoint_url(endpoint);
        }
        let shared = loader.load().await;
        if shared.region().is_none() {
            return shared
                .into_builder()
                .region(aws_config::Region::new("us-east-1"))
                .build();
        }
        shared
    }
}
