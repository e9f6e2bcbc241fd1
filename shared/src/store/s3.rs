//! The S3 adapter of the blob store: keys live under `s3://{bucket}/{prefix}/`.
//!
//! Configuration comes from the environment through `aws-config`, exactly as the AWS CLI
//! reads it: `AWS_REGION` (or the profile's region), credentials (environment, profile,
//! web identity, ECS/Lambda container, instance metadata), and endpoints: `AWS_ENDPOINT_URL`
//! for every service, `AWS_ENDPOINT_URL_S3` for S3 only (it wins), the profile's
//! `endpoint_url`, and `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS` to ignore them all. When any
//! custom endpoint is in effect, requests use path-style addressing
//! (`http://host/bucket/key`): local emulators such as moto or MinIO cannot resolve
//! `bucket.127.0.0.1`.
//!
//! Tests and tools that must not read the process environment build an [`SdkConfig`]
//! themselves and pass it to [`s3_client`], which applies the same endpoint rule.
//!
//! Errors are classified once, in [`S3Store`]'s error mapping: throttling, server errors,
//! timeouts and connection failures are [`BlobError::Unavailable`] (retryable); access
//! denied, a missing bucket and other client errors are terminal
//! ([`BlobError::Read`] / [`BlobError::Write`]). Messages name the `s3://bucket/key`
//! location and the service's error code, never credentials.

use std::error::Error as StdError;

use async_trait::async_trait;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use aws_types::service_config::ServiceConfigKey;

use super::blob::{BlobError, BlobStore, ObjectInfo, ObjectStat, validate_key};

/// The HTTPS client the S3 clients use: hyper 1 with rustls on `ring`, the crypto provider
/// the rest of the workspace uses (the SDK's default would build aws-lc as well).
pub fn https_client() -> aws_sdk_s3::config::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// The AWS configuration of this process, read from the environment and profile files by
/// `aws-config` (region, credentials, endpoints, retries), with [`https_client`].
pub async fn load_sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_client())
        .load()
        .await
}

/// The endpoint URL an S3 client built from `sdk` will use, if it is not AWS's own: the
/// S3-specific setting (`AWS_ENDPOINT_URL_S3`, a profile's `services` section) wins over the
/// global one (`AWS_ENDPOINT_URL`, `endpoint_url`, or one set in code). The same rule as
/// `aws_sdk_s3::config::Builder::from(&SdkConfig)`, which offers no getter to ask it.
pub fn custom_endpoint(sdk: &SdkConfig) -> Option<String> {
    if sdk.get_origin("endpoint_url").is_client_config() {
        return sdk.endpoint_url().map(str::to_string);
    }
    let key = ServiceConfigKey::builder()
        .service_id("S3")
        .env("AWS_ENDPOINT_URL")
        .profile("endpoint_url")
        .build()
        .expect("every field of the key is set");
    sdk.service_config()
        .and_then(|c| c.load_config(key))
        .or_else(|| sdk.endpoint_url().map(str::to_string))
}

/// An S3 client for `sdk`, with path-style addressing when a custom endpoint is set.
pub fn s3_client(sdk: &SdkConfig) -> Client {
    let path_style = custom_endpoint(sdk).is_some();
    let config = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(path_style)
        .build();
    Client::from_conf(config)
}

/// A bucket, or a prefix of one, as a blob store. Cheap to clone: the client is shared.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
    /// Without leading or trailing `/`; empty for the whole bucket.
    prefix: String,
}

impl S3Store {
    /// A store on `s3://{bucket}/{prefix}` with a client configured from the environment
    /// (see the [module](self) documentation). Nothing is sent to S3 yet.
    ///
    /// # Errors
    /// An empty bucket name or an invalid prefix; no AWS region configured.
    pub async fn connect(bucket: &str, prefix: &str) -> Result<S3Store, BlobError> {
        let sdk = load_sdk_config().await;
        if sdk.region().is_none() {
            return Err(BlobError::Read {
                location: s3_url(bucket, prefix.trim_matches('/')),
                message: "no AWS region configured: set AWS_REGION (or a profile's region)".into(),
            });
        }
        S3Store::from_client(s3_client(&sdk), bucket, prefix)
    }

    /// A store on `s3://{bucket}/{prefix}` using `client` (build it with [`s3_client`] so
    /// that a custom endpoint gets path-style addressing). Leading and trailing `/` of the
    /// prefix are ignored.
    ///
    /// # Errors
    /// An empty bucket name, or a prefix that is not a valid key (see [`validate_key`]).
    pub fn from_client(client: Client, bucket: &str, prefix: &str) -> Result<S3Store, BlobError> {
        let prefix = prefix.trim_matches('/');
        if bucket.is_empty() || bucket.contains('/') {
            return Err(BlobError::InvalidKey {
                key: bucket.chars().take(200).collect(),
                problem: "is not a bucket name",
            });
        }
        if !prefix.is_empty() {
            validate_key(prefix)?;
        }
        Ok(S3Store {
            client,
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        })
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The key prefix (no leading or trailing `/`; empty for the whole bucket).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The client, for operations the [`BlobStore`] port does not offer.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The object key in the bucket for a store key.
    fn object_key(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}/{key}", self.prefix)
        }
    }
}

fn s3_url(bucket: &str, key: &str) -> String {
    if key.is_empty() {
        format!("s3://{bucket}")
    } else {
        format!("s3://{bucket}/{key}")
    }
}

#[derive(Clone, Copy)]
enum Op {
    Read,
    Write,
}

/// S3 error codes that mean "try again later" even when the status is not 5xx.
const RETRYABLE_CODES: &[&str] = &[
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestThrottled",
    "TooManyRequestsException",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "InternalError",
    "ServiceUnavailable",
];

/// One place that decides what an SDK failure means for the pipeline.
fn classify<E>(err: SdkError<E, HttpResponse>, op: Op, location: String) -> BlobError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    let terminal = |message: String| match op {
        Op::Read => BlobError::Read {
            location: location.clone(),
            message,
        },
        Op::Write => BlobError::Write {
            location: location.clone(),
            message,
        },
    };
    let unavailable = |message: String| BlobError::Unavailable {
        location: location.clone(),
        message,
    };
    match &err {
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let code = err.code().unwrap_or("unknown error code");
            let text = err.message().unwrap_or("");
            let message = if text.is_empty() {
                format!("{code} (HTTP {status})")
            } else {
                format!("{code} (HTTP {status}): {text}")
            };
            if status >= 500 || status == 429 || RETRYABLE_CODES.contains(&code) {
                unavailable(message)
            } else {
                terminal(message)
            }
        }
        SdkError::TimeoutError(_) => {
            unavailable(format!("timed out: {}", DisplayErrorContext(&err)))
        }
        SdkError::DispatchFailure(d) if d.is_user() => {
            terminal(DisplayErrorContext(&err).to_string())
        }
        SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            unavailable(DisplayErrorContext(&err).to_string())
        }
        // Building the request failed (no credentials, no region, a bad endpoint URL): the
        // same call will fail the same way.
        _ => terminal(DisplayErrorContext(&err).to_string()),
    }
}

#[async_trait]
impl BlobStore for S3Store {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BlobError> {
        Ok(self.get_with_stat(key).await?.map(|(bytes, _)| bytes))
    }

    /// `GetObject`: the bytes, and the ETag and version id of that very version.
    async fn get_with_stat(&self, key: &str) -> Result<Option<(Vec<u8>, ObjectStat)>, BlobError> {
        validate_key(key)?;
        let object_key = self.object_key(key);
        let result = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&object_key)
            .send()
            .await;
        let output = match result {
            Ok(output) => output,
            Err(err) if err.as_service_error().is_some_and(|e| e.is_no_such_key()) => {
                return Ok(None);
            }
            Err(err) => return Err(classify(err, Op::Read, self.location(key))),
        };
        let stat = ObjectStat {
            etag: output.e_tag().map(str::to_string),
            version_id: output.version_id().map(str::to_string),
        };
        // The body streams after the headers: a connection lost here is worth a retry.
        let bytes = output
            .body
            .collect()
            .await
            .map_err(|e| BlobError::Unavailable {
                location: self.location(key),
                message: format!("reading the body: {}", DisplayErrorContext(&e)),
            })?;
        Ok(Some((bytes.into_bytes().to_vec(), stat)))
    }

    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), BlobError> {
        validate_key(key)?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(self.object_key(key))
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|err| classify(err, Op::Write, self.location(key)))?;
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, BlobError> {
        // The store prefix always ends the listed prefix with `/`, so a store on `in` never
        // sees `inbox/…`.
        let root = if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        };
        let full_prefix = format!("{root}{prefix}");
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(&full_prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|err| classify(err, Op::Read, s3_url(&self.bucket, &full_prefix)))?;
            for object in page.contents() {
                let Some(key) = object.key().and_then(|k| k.strip_prefix(&root)) else {
                    continue;
                };
                out.push(ObjectInfo {
                    key: key.to_string(),
                    size: object
                        .size()
                        .and_then(|s| u64::try_from(s).ok())
                        .unwrap_or(0),
                });
            }
            match page.next_continuation_token() {
                Some(next) if page.is_truncated() == Some(true) => token = Some(next.to_string()),
                _ => break,
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// `HeadObject`: metadata only, so asking costs no download however large the
    /// object. A 404 (`NotFound`, which HEAD answers without a body or error code) is
    /// `false`; any other failure is classified as for a read. A missing bucket answers
    /// HEAD with the same bare 404, so it reads as `false` too: the write that usually
    /// follows reports `NoSuchBucket`.
    async fn exists(&self, key: &str) -> Result<bool, BlobError> {
        Ok(self.stat(key).await?.is_some())
    }

    /// `HeadObject`: the ETag and version id of the object there now.
    async fn stat(&self, key: &str) -> Result<Option<ObjectStat>, BlobError> {
        validate_key(key)?;
        let result = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(self.object_key(key))
            .send()
            .await;
        match result {
            Ok(out) => Ok(Some(ObjectStat {
                etag: out.e_tag().map(str::to_string),
                version_id: out.version_id().map(str::to_string),
            })),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(None),
            Err(err) => Err(classify(err, Op::Read, self.location(key))),
        }
    }

    fn location(&self, key: &str) -> String {
        s3_url(&self.bucket, &self.object_key(key))
    }
}
