//! The S3 blob store against a real S3 API: moto's server on 127.0.0.1, one per test.
//! moto is required; without it these tests fail with the install command.
//!
//! Every client here has an explicit endpoint `http://localhost:port`, which only answers
//! path-style requests (`http://localhost:port/bucket/key`; a virtual-host request would go
//! to `bucket.localhost`, which does not resolve): each round trip also proves that a
//! configured endpoint switches path-style addressing on. (The SDK would choose path-style
//! by itself for an IP address such as 127.0.0.1, which would prove nothing.)

use std::time::{Duration, Instant};

use futures::StreamExt;
use lexpipe::store::blob::{BlobError, BlobStore, S3Store};
use lexpipe::store::s3::s3_client;
use lexpipe_tests::moto::{self, MotoServer};

async fn store_on(moto: &MotoServer, tag: &str, prefix: &str) -> (S3Store, String) {
    let bucket = moto.bucket(tag).await;
    let store = S3Store::from_client(moto.client(), &bucket, prefix).expect("valid store");
    (store, bucket)
}

#[tokio::test]
async fn an_object_put_is_read_back_byte_for_byte() {
    // Arrange
    let moto = MotoServer::start();
    let (store, bucket) = store_on(&moto, "roundtrip", "runs/one").await;
    let bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();

    // Act
    store
        .put("processed/abc/ocr-v1.json.zst", bytes.clone())
        .await
        .unwrap();
    let read = store.get("processed/abc/ocr-v1.json.zst").await.unwrap();

    // Assert
    assert_eq!(read.as_deref(), Some(&bytes[..]));
    assert_eq!(
        store.location("processed/abc/ocr-v1.json.zst"),
        format!("s3://{bucket}/runs/one/processed/abc/ocr-v1.json.zst")
    );
    let raw = moto
        .client()
        .head_object()
        .bucket(&bucket)
        .key("runs/one/processed/abc/ocr-v1.json.zst")
        .send()
        .await
        .expect("the object lives under the store's prefix");
    assert_eq!(raw.content_length(), Some(70_000));
}

#[tokio::test]
async fn a_missing_key_reads_as_none() {
    // Arrange
    let moto = MotoServer::start();
    let (store, _) = store_on(&moto, "missing", "p").await;

    // Act
    let read = store.get("processed/nothing-here.json").await;

    // Assert
    assert_eq!(read.unwrap(), None);
}

#[tokio::test]
async fn listing_more_than_one_page_returns_every_object_once_in_order() {
    // Arrange: 1,050 objects, more than the 1,000 one ListObjectsV2 page holds.
    let moto = MotoServer::start();
    let (store, bucket) = store_on(&moto, "paging", "big").await;
    let keys: Vec<String> = (0..1050).map(|i| format!("in/doc-{i:05}.pdf")).collect();
    futures::stream::iter(keys.clone())
        .map(|k| {
            let store = store.clone();
            async move { store.put(&k, k.as_bytes().to_vec()).await }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<()>, _>>()
        .unwrap();
    store.put("out/other.json", b"{}".to_vec()).await.unwrap();

    // Act
    let listed = store.list("in/").await.unwrap();

    // Assert
    let listed_keys: Vec<&str> = listed.iter().map(|o| o.key.as_str()).collect();
    let expected: Vec<&str> = keys.iter().map(String::as_str).collect();
    assert_eq!(listed_keys, expected);
    assert!(
        listed.iter().all(|o| o.size == o.key.len() as u64),
        "sizes: {:?}",
        &listed[..3]
    );
    assert_eq!(store.list("").await.unwrap().len(), 1051);
    let first_page = moto
        .client()
        .list_objects_v2()
        .bucket(&bucket)
        .prefix("big/in/")
        .send()
        .await
        .unwrap();
    assert_eq!(
        first_page.is_truncated(),
        Some(true),
        "one page held everything: the test did not exercise paging"
    );
}

#[tokio::test]
async fn keys_with_spaces_plus_signs_and_non_ascii_round_trip_and_list_back_exactly() {
    // Arrange
    let moto = MotoServer::start();
    let (store, _) = store_on(&moto, "names", "case files").await;
    let keys = [
        "in/Smith v. Jones + Co — é.pdf",
        "in/a+b=c & d%20e.pdf",
        "in/日本語 ファイル.pdf",
    ];

    // Act
    for (i, key) in keys.iter().enumerate() {
        store.put(key, vec![i as u8; 10]).await.unwrap();
    }

    // Assert
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(
            store.get(key).await.unwrap(),
            Some(vec![i as u8; 10]),
            "{key:?}"
        );
    }
    let mut expected: Vec<&str> = keys.to_vec();
    expected.sort();
    let listed: Vec<String> = store
        .list("in/")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(listed, expected);
}

#[tokio::test]
async fn a_stores_prefix_hides_objects_outside_it() {
    // Arrange: a neighbour whose prefix starts with the same letters.
    let moto = MotoServer::start();
    let (store, bucket) = store_on(&moto, "isolation", "in").await;
    let neighbour = S3Store::from_client(moto.client(), &bucket, "inbox").unwrap();
    let whole_bucket = S3Store::from_client(moto.client(), &bucket, "").unwrap();
    store.put("a.pdf", b"mine".to_vec()).await.unwrap();
    neighbour.put("b.pdf", b"theirs".to_vec()).await.unwrap();
    whole_bucket.put("c.pdf", b"root".to_vec()).await.unwrap();

    // Act
    let mine = store.list("").await.unwrap();
    let theirs = neighbour.list("").await.unwrap();

    // Assert
    assert_eq!(
        mine.iter().map(|o| o.key.as_str()).collect::<Vec<_>>(),
        ["a.pdf"]
    );
    assert_eq!(
        theirs.iter().map(|o| o.key.as_str()).collect::<Vec<_>>(),
        ["b.pdf"]
    );
    assert_eq!(store.get("b.pdf").await.unwrap(), None);
    assert_eq!(
        whole_bucket
            .list("")
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.key)
            .collect::<Vec<_>>(),
        ["c.pdf", "in/a.pdf", "inbox/b.pdf"]
    );
}

#[tokio::test]
async fn a_missing_bucket_is_a_terminal_error_naming_the_bucket_without_credentials() {
    // Arrange
    let moto = MotoServer::start();
    let store = S3Store::from_client(moto.client(), "lexpipe-t-no-such-bucket", "p").unwrap();

    // Act
    let read = store.get("in/a.pdf").await.unwrap_err();
    let write = store.put("in/a.pdf", b"x".to_vec()).await.unwrap_err();
    let list = store.list("in/").await.unwrap_err();

    // Assert
    assert!(matches!(read, BlobError::Read { .. }), "{read:?}");
    assert!(matches!(write, BlobError::Write { .. }), "{write:?}");
    assert!(matches!(list, BlobError::Read { .. }), "{list:?}");
    for err in [&read, &write, &list] {
        let message = err.to_string();
        assert!(!err.is_retryable(), "{message}");
        assert!(
            message.contains("s3://lexpipe-t-no-such-bucket/p/in/"),
            "{message}"
        );
        assert!(message.contains("NoSuchBucket"), "{message}");
        assert!(!message.contains(moto::SECRET_ACCESS_KEY), "{message}");
    }
}

#[tokio::test]
async fn an_unreachable_endpoint_is_retryable_and_fails_fast() {
    // Arrange: nothing listens on port 1.
    let client = s3_client(&moto::impatient_sdk_config_for("http://127.0.0.1:1"));
    let store = S3Store::from_client(client, "any-bucket", "p").unwrap();
    let started = Instant::now();

    // Act
    let read = store.get("in/a.pdf").await.unwrap_err();
    let write = store.put("in/a.pdf", b"x".to_vec()).await.unwrap_err();
    let list = store.list("").await.unwrap_err();

    // Assert
    for err in [&read, &write, &list] {
        assert!(
            matches!(err, BlobError::Unavailable { .. }),
            "{err:?} is not Unavailable"
        );
        assert!(err.is_retryable());
        assert!(err.to_string().contains("s3://any-bucket/p"), "{err}");
        assert!(!err.to_string().contains(moto::SECRET_ACCESS_KEY), "{err}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
}

/// Runs the child binary's `blob-roundtrip` with only the given AWS variables, none
/// inherited from this process and no profile files.
fn child_roundtrip(location: &str, key: &str, vars: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_lexpipe-test-child"));
    cmd.args(["blob-roundtrip", location, key]);
    moto::isolate_aws_env(&mut cmd)
        .envs(vars.iter().copied())
        .output()
        .expect("the child runs")
}

#[tokio::test]
async fn the_pipeline_reads_region_credentials_and_endpoint_from_the_environment() {
    // Arrange: one bucket, reached once through the S3-only variable and once through the
    // global one; both only answer path-style requests.
    let moto = MotoServer::start();
    let bucket = moto.bucket("env").await;
    let endpoint = moto.endpoint();
    let common = [
        ("AWS_REGION", "eu-west-1"),
        ("AWS_ACCESS_KEY_ID", moto::ACCESS_KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", moto::SECRET_ACCESS_KEY),
    ];
    let with = |name: &'static str| {
        let mut vars = common.to_vec();
        vars.push((name, endpoint.as_str()));
        vars
    };

    // Act
    let s3_only = child_roundtrip(
        &format!("s3://{bucket}/from-env/"),
        "in/a b+é.pdf",
        &with("AWS_ENDPOINT_URL_S3"),
    );
    let global = child_roundtrip(
        &format!("s3://{bucket}/from-env"),
        "in/second.pdf",
        &with("AWS_ENDPOINT_URL"),
    );

    // Assert
    for out in [&s3_only, &global] {
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let listed = S3Store::from_client(moto.client(), &bucket, "from-env")
        .unwrap()
        .list("")
        .await
        .unwrap();
    assert_eq!(
        listed.into_iter().map(|o| o.key).collect::<Vec<_>>(),
        ["in/a b+é.pdf", "in/second.pdf"]
    );
}

#[tokio::test]
async fn without_a_region_opening_an_s3_store_fails_naming_aws_region() {
    // Arrange: no region anywhere (no variables, no profile, no instance metadata).

    // Act
    let out = child_roundtrip("s3://some-bucket/p", "k", &[]);

    // Assert
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    assert!(stdout.contains("AWS_REGION"), "{stdout}");
    assert!(stdout.contains("s3://some-bucket/p"), "{stdout}");
}

#[tokio::test]
async fn invalid_keys_are_refused_before_any_request() {
    // Arrange: an endpoint that would fail if it were called.
    let client = s3_client(&moto::impatient_sdk_config_for("http://127.0.0.1:1"));
    let store = S3Store::from_client(client, "any-bucket", "p").unwrap();

    // Act
    let escaping = store.get("../other-prefix/secret.pdf").await;
    let absolute = store.put("/etc/passwd", vec![]).await;

    // Assert
    assert!(matches!(escaping, Err(BlobError::InvalidKey { .. })));
    assert!(matches!(absolute, Err(BlobError::InvalidKey { .. })));
}

/// Records the HTTP method of every request a client sends.
#[derive(Debug, Clone, Default)]
struct MethodLog(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl aws_sdk_s3::config::Intercept for MethodLog {
    fn name(&self) -> &'static str {
        "MethodLog"
    }

    fn read_before_transmit(
        &self,
        context: &aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _components: &aws_sdk_s3::config::RuntimeComponents,
        _cfg: &mut aws_sdk_s3::config::ConfigBag,
    ) -> Result<(), aws_sdk_s3::error::BoxError> {
        self.0
            .lock()
            .unwrap()
            .push(context.request().method().to_string());
        Ok(())
    }
}

#[tokio::test]
async fn exists_asks_for_metadata_only_and_a_missing_key_is_false() {
    // Arrange: a 2 MB object, and a client that logs the methods it sends.
    let moto = MotoServer::start();
    let (writer, bucket) = store_on(&moto, "exists", "p").await;
    writer
        .put("processed/abc/big.json.zst", vec![7u8; 2_000_000])
        .await
        .unwrap();
    let log = MethodLog::default();
    let client = aws_sdk_s3::Client::from_conf(
        moto.client()
            .config()
            .to_builder()
            .interceptor(log.clone())
            .build(),
    );
    let store = S3Store::from_client(client, &bucket, "p").unwrap();

    // Act
    let present = store.exists("processed/abc/big.json.zst").await;
    let missing = store.exists("processed/abc/none.json.zst").await;
    let folder = store.exists("processed/abc").await;

    // Assert
    assert!(present.unwrap());
    assert!(!missing.unwrap());
    assert!(!folder.unwrap(), "a prefix of a key is not an object");
    assert_eq!(*log.0.lock().unwrap(), ["HEAD", "HEAD", "HEAD"]);
}

#[tokio::test]
async fn exists_on_an_unreachable_endpoint_is_retryable_not_false() {
    // Arrange
    let client = s3_client(&moto::impatient_sdk_config_for("http://127.0.0.1:1"));
    let store = S3Store::from_client(client, "any-bucket", "p").unwrap();

    // Act
    let answer = store.exists("processed/abc/x.json.zst").await;
    let invalid = store.exists("../escape").await;

    // Assert
    let err = answer.unwrap_err();
    assert!(matches!(err, BlobError::Unavailable { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("s3://any-bucket/p/processed/abc/x.json.zst")
    );
    assert!(matches!(invalid, Err(BlobError::InvalidKey { .. })));
}
