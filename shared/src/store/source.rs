//! Reading a document's bytes from where it was found: a path on this machine, or
//! `s3://bucket/key` (one S3 client per bucket, built on first use and kept).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::blob::{BlobError, BlobLocation, ObjectStat, SharedBlobStore, open_store};

/// Largest document read by default (256 MiB): bigger files fail with
/// `DocumentTooLarge` before they are read.
pub const DEFAULT_MAX_BYTES: u64 = 256 * 1024 * 1024;

/// True for a key or file name ending in `.pdf` (any case) after a non-empty name:
/// `in/UPPER.PDF` is one, `in/pdf`, `in/.pdf` and `in/scan.pdf.zip` are not.
pub fn is_pdf_name(key: &str) -> bool {
    key.rsplit_once('.').is_some_and(|(stem, ext)| {
        !stem.is_empty() && !stem.ends_with('/') && ext.eq_ignore_ascii_case("pdf")
    })
}

/// Why a source could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read {what}: {message}")]
    Read { what: String, message: String },
    #[error("file is {size} bytes, over the limit of {limit} bytes")]
    TooLarge { size: u64, limit: u64 },
    #[error("{0}")]
    Blob(#[from] BlobError),
}

/// Reads sources; share it behind an `Arc`.
#[derive(Debug, Default)]
pub struct SourceReader {
    buckets: Mutex<HashMap<String, SharedBlobStore>>,
}

/// `(bucket, key)` of `s3://bucket/key`; `None` for anything else.
pub fn parse_s3_url(source: &str) -> Option<(&str, &str)> {
    let rest = source.strip_prefix("s3://")?;
    let (bucket, key) = rest.split_once('/')?;
    (!bucket.is_empty() && !key.is_empty()).then_some((bucket, key))
}

impl SourceReader {
    pub fn new() -> SourceReader {
        SourceReader::default()
    }

    /// This reader, reading `bucket` through `store` (one the caller built, e.g. with a
    /// client configured in code rather than from the environment); other buckets are
    /// still opened from the environment on first use.
    pub fn with_bucket(self, bucket: &str, store: SharedBlobStore) -> SourceReader {
        self.buckets
            .lock()
            .expect("poisoned")
            .insert(bucket.to_string(), store);
        self
    }

    /// The store of `bucket`, built once.
    ///
    /// # Errors
    /// The S3 client cannot be set up.
    pub async fn bucket(&self, bucket: &str) -> Result<SharedBlobStore, BlobError> {
        if let Some(s) = self.buckets.lock().expect("poisoned").get(bucket) {
            return Ok(s.clone());
        }
        let store = open_store(&BlobLocation::S3 {
            bucket: bucket.to_string(),
            prefix: String::new(),
        })
        .await?;
        self.buckets
            .lock()
            .expect("poisoned")
            .entry(bucket.to_string())
            .or_insert(store.clone());
        Ok(store)
    }

    /// The bytes at `source`, refusing more than `max_bytes`.
    ///
    /// # Errors
    /// The source is missing or unreadable, or too large.
    pub async fn read(&self, source: &str, max_bytes: u64) -> Result<Vec<u8>, SourceError> {
        Ok(self.read_with_stat(source, max_bytes).await?.0)
    }

    /// As [`SourceReader::read`], with the [`ObjectStat`] (ETag, version id) of the S3
    /// object version read; a file has none.
    ///
    /// # Errors
    /// As [`SourceReader::read`].
    pub async fn read_with_stat(
        &self,
        source: &str,
        max_bytes: u64,
    ) -> Result<(Vec<u8>, ObjectStat), SourceError> {
        if let Some((bucket, key)) = parse_s3_url(source) {
            let store = self.bucket(bucket).await?;
            let (bytes, stat) = store
                .get_with_stat(key)
                .await?
                .ok_or_else(|| no_such_object(source))?;
            let size = bytes.len() as u64;
            if size > max_bytes {
                return Err(SourceError::TooLarge {
                    size,
                    limit: max_bytes,
                });
            }
            return Ok((bytes, stat));
        }
        let bytes = read_file(std::path::Path::new(source), max_bytes).await?;
        Ok((bytes, ObjectStat::default()))
    }

    /// The [`ObjectStat`] of the S3 object at `source` now, without reading it
    /// (`HeadObject`); `None` for a file.
    ///
    /// # Errors
    /// The object is gone, or S3 failed.
    pub async fn stat(&self, source: &str) -> Result<Option<ObjectStat>, SourceError> {
        let Some((bucket, key)) = parse_s3_url(source) else {
            return Ok(None);
        };
        let store = self.bucket(bucket).await?;
        let stat = store
            .stat(key)
            .await?
            .ok_or_else(|| no_such_object(source))?;
        Ok(Some(stat))
    }
}

fn no_such_object(source: &str) -> SourceError {
    SourceError::Read {
        what: source.to_string(),
        message: "no such object".into(),
    }
}

/// Reads a file's bytes, refusing files over `max_bytes` before reading them.
///
/// # Errors
/// The file cannot be read, or is too large.
pub async fn read_file(path: &std::path::Path, max_bytes: u64) -> Result<Vec<u8>, SourceError> {
    let read_err = |e: std::io::Error| SourceError::Read {
        what: path.display().to_string(),
        message: e.to_string(),
    };
    let size = tokio::fs::metadata(path).await.map_err(read_err)?.len();
    if size > max_bytes {
        return Err(SourceError::TooLarge {
            size,
            limit: max_bytes,
        });
    }
    tokio::fs::read(path).await.map_err(read_err)
}

/// A shared reader.
pub type SharedSourceReader = Arc<SourceReader>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_urls_split_into_bucket_and_key_and_paths_are_not_s3() {
        assert_eq!(
            parse_s3_url("s3://b/in/a b+c.pdf"),
            Some(("b", "in/a b+c.pdf"))
        );
        assert_eq!(parse_s3_url("s3://b"), None);
        assert_eq!(parse_s3_url("s3:///k"), None);
        assert_eq!(parse_s3_url("samples/x.pdf"), None);
    }

    #[tokio::test]
    async fn a_file_over_the_limit_is_refused_before_it_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.pdf");
        std::fs::write(&p, vec![0u8; 100]).unwrap();
        let r = SourceReader::new();
        let src = p.display().to_string();
        assert!(matches!(
            r.read(&src, 10).await,
            Err(SourceError::TooLarge { size: 100, .. })
        ));
        assert_eq!(r.read(&src, 100).await.unwrap().len(), 100);
        assert!(matches!(
            r.read("/no/such/file.pdf", 10).await,
            Err(SourceError::Read { .. })
        ));
    }
}
