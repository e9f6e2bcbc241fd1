//! The blob store: where input documents are read from and where each step's durable
//! artefact is written. One trait, two adapters: a local folder (the default) and S3.
//!
//! Keys are relative, `/`-separated paths (`processed/{sha}/ocr-pdf_text-v1.json.zst`),
//! validated by [`validate_key`] so that a key can never climb out of its folder or
//! bucket prefix. Writes are atomic: a reader sees the old object or the new one, never a
//! part (a folder writes a temporary file and renames it; S3 `PutObject` is atomic).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;

pub use super::s3::S3Store;

/// One stored object, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// The key, relative to the store's root (folder or bucket prefix).
    pub key: String,
    /// Size in bytes.
    pub size: u64,
}

/// What identifies the version of an object a read saw, without its bytes: S3's ETag
/// (and version id, in a versioned bucket). Both `None` where the store has no such
/// thing (a folder).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectStat {
    pub etag: Option<String>,
    pub version_id: Option<String>,
}

/// Why a blob operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The key is not a safe relative path. Terminal.
    #[error("invalid blob key {key:?}: {problem}")]
    InvalidKey { key: String, problem: &'static str },
    /// The store could not be reached or answered with a server-side error (S3 5xx,
    /// timeout, throttling). Retryable.
    #[error("blob store unavailable at {location}: {message}")]
    Unavailable { location: String, message: String },
    /// Reading failed for another reason (permissions, a folder where a file was
    /// expected). Terminal.
    #[error("cannot read {location}: {message}")]
    Read { location: String, message: String },
    /// Writing failed (disk full, permissions, access denied). Terminal.
    #[error("cannot write {location}: {message}")]
    Write { location: String, message: String },
}

impl BlobError {
    /// Would the same call succeed later?
    pub fn is_retryable(&self) -> bool {
        matches!(self, BlobError::Unavailable { .. })
    }
}

/// Durable objects by key. Implementations are cheap to share behind an `Arc`.
#[async_trait]
pub trait BlobStore: Send + Sync + fmt::Debug {
    /// The object at `key`, or `None` when there is none.
    ///
    /// # Errors
    /// An invalid key, or the store failed.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BlobError>;

    /// Writes `bytes` at `key`, atomically, replacing any object there.
    ///
    /// # Errors
    /// An invalid key, or the store failed.
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), BlobError>;

    /// Every object whose key starts with `prefix` (recursively), sorted by key.
    ///
    /// # Errors
    /// The store failed.
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, BlobError>;

    /// Whether an object exists at `key`. The default reads it; adapters answer from
    /// metadata.
    ///
    /// # Errors
    /// An invalid key, or the store failed.
    async fn exists(&self, key: &str) -> Result<bool, BlobError> {
        Ok(self.get(key).await?.is_some())
    }

    /// The object at `key` and the [`ObjectStat`] of the version read, from one request,
    /// so that the two always belong together. The default has no ETag.
    ///
    /// # Errors
    /// An invalid key, or the store failed.
    async fn get_with_stat(&self, key: &str) -> Result<Option<(Vec<u8>, ObjectStat)>, BlobError> {
        Ok(self.get(key).await?.map(|b| (b, ObjectStat::default())))
    }

    /// The [`ObjectStat`] of the object at `key` now, without reading it (`HeadObject`);
    /// `None` when there is none. The default reads it and has no ETag.
    ///
    /// # Errors
    /// An invalid key, or the store failed.
    async fn stat(&self, key: &str) -> Result<Option<ObjectStat>, BlobError> {
        Ok(self.get_with_stat(key).await?.map(|(_, stat)| stat))
    }

    /// Where `key` lives, for people and for pointers between steps: a path for a
    /// folder, `s3://bucket/prefix/key` for S3.
    fn location(&self, key: &str) -> String;
}

/// Checks that `key` is a relative path that stays inside the store: non-empty, no
/// leading `/`, no empty, `.` or `..` segments, no backslash or control characters.
///
/// # Errors
/// What is wrong with the key.
pub fn validate_key(key: &str) -> Result<(), BlobError> {
    let bad = |problem| {
        Err(BlobError::InvalidKey {
            key: key.chars().take(200).collect(),
            problem,
        })
    };
    if key.is_empty() {
        return bad("empty");
    }
    if key.len() > 1024 {
        return bad("longer than 1024 bytes");
    }
    if key.starts_with('/') {
        return bad("absolute");
    }
    if key.chars().any(|c| c == '\\' || c.is_control()) {
        return bad("contains a backslash or a control character");
    }
    if key
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return bad("has an empty, '.' or '..' segment");
    }
    Ok(())
}

/// A folder on this machine.
#[derive(Debug, Clone)]
pub struct FolderStore {
    root: PathBuf,
}

impl FolderStore {
    /// A store rooted at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> FolderStore {
        FolderStore { root: root.into() }
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &str) -> Result<PathBuf, BlobError> {
        validate_key(key)?;
        Ok(self.root.join(key))
    }
}

#[async_trait]
impl BlobStore for FolderStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BlobError> {
        let path = self.path(key)?;
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(BlobError::Read {
                location: path.display().to_string(),
                message: e.to_string(),
            }),
        }
    }

    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), BlobError> {
        let path = self.path(key)?;
        let write_err = |e: std::io::Error| BlobError::Write {
            location: path.display().to_string(),
            message: e.to_string(),
        };
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(write_err)?;
        }
        // A unique temporary name per writer: concurrent writers of one key (the same
        // bytes processed twice at once) never interleave, and the rename is atomic.
        let tmp = path.with_file_name(format!(
            ".{}.tmp-{}-{:016x}",
            path.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            std::process::id(),
            rand::random::<u64>()
        ));
        if let Err(e) = tokio::fs::write(&tmp, bytes).await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(write_err(e));
        }
        if let Err(e) = tokio::fs::rename(&tmp, &path).await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(write_err(e));
        }
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, BlobError> {
        let root = self.root.clone();
        let prefix = prefix.to_string();
        let listed = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            list_folder(&root, &root, &prefix, &mut out)?;
            out.sort_by(|a, b| a.key.cmp(&b.key));
            Ok::<_, BlobError>(out)
        })
        .await
        .map_err(|e| BlobError::Read {
            location: self.root.display().to_string(),
            message: e.to_string(),
        })??;
        Ok(listed)
    }

    async fn exists(&self, key: &str) -> Result<bool, BlobError> {
        let path = self.path(key)?;
        match tokio::fs::metadata(&path).await {
            Ok(m) => Ok(m.is_file()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(BlobError::Read {
                location: path.display().to_string(),
                message: e.to_string(),
            }),
        }
    }

    fn location(&self, key: &str) -> String {
        self.root.join(key).display().to_string()
    }
}

fn list_folder(
    root: &Path,
    dir: &Path,
    prefix: &str,
    out: &mut Vec<ObjectInfo>,
) -> Result<(), BlobError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(BlobError::Read {
                location: dir.display().to_string(),
                message: e.to_string(),
            });
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(ft) = entry.file_type() else { continue };
        let Ok(rel) = path.strip_prefix(root) else {
            continue;
        };
        let key = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        if ft.is_dir() {
            // Descend only where the prefix can still match.
            let dir_key = format!("{key}/");
            if prefix.starts_with(&dir_key) || dir_key.starts_with(prefix) {
                list_folder(root, &path, prefix, out)?;
            }
        } else if ft.is_file() && key.starts_with(prefix) && !is_temporary(&key) {
            let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
            out.push(ObjectInfo { key, size });
        }
    }
    Ok(())
}

fn is_temporary(key: &str) -> bool {
    key.rsplit('/')
        .next()
        .is_some_and(|name| name.starts_with('.') && name.contains(".tmp-"))
}

pub use crate::config::BlobLocation;

/// A shared store.
pub type SharedBlobStore = Arc<dyn BlobStore>;

/// The store at `loc`: a [`FolderStore`], or an [`S3Store`] configured from the
/// environment (region, credentials, endpoint; see [`super::s3`]).
///
/// # Errors
/// For S3: an invalid bucket or prefix, or no AWS region configured.
pub async fn open_store(loc: &BlobLocation) -> Result<SharedBlobStore, BlobError> {
    match loc {
        BlobLocation::Folder(path) => Ok(Arc::new(FolderStore::new(path))),
        BlobLocation::S3 { bucket, prefix } => {
            Ok(Arc::new(S3Store::connect(bucket, prefix).await?))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_could_leave_the_store_are_refused() {
        for key in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "a/./b",
            "a\\b",
            "a\nb",
            "a/",
        ] {
            assert!(validate_key(key).is_err(), "{key:?} accepted");
        }
        for key in ["a", "processed/abc/ocr-v1.json.zst", "in/With Space +é.pdf"] {
            assert!(validate_key(key).is_ok(), "{key:?} refused");
        }
    }

    #[tokio::test]
    async fn a_folder_store_round_trips_lists_by_prefix_and_misses_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let store = FolderStore::new(dir.path().join("root"));
        assert_eq!(store.get("processed/a/x.json").await.unwrap(), None);
        assert!(store.list("").await.unwrap().is_empty());
        store
            .put("processed/a/x.json", b"one".to_vec())
            .await
            .unwrap();
        store
            .put("processed/a/x.json", b"two".to_vec())
            .await
            .unwrap();
        store.put("in/b.pdf", b"pdf".to_vec()).await.unwrap();
        assert_eq!(
            store.get("processed/a/x.json").await.unwrap().as_deref(),
            Some(&b"two"[..])
        );
        let all: Vec<String> = store
            .list("")
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.key)
            .collect();
        assert_eq!(all, vec!["in/b.pdf", "processed/a/x.json"]);
        let processed = store.list("processed/").await.unwrap();
        assert_eq!(processed.len(), 1);
        assert_eq!(processed[0].size, 3);
        assert!(matches!(
            store.get("../outside").await,
            Err(BlobError::InvalidKey { .. })
        ));
    }

    #[tokio::test]
    async fn concurrent_writers_of_one_key_leave_one_whole_object() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(FolderStore::new(dir.path()));
        let mut set = tokio::task::JoinSet::new();
        for i in 0..16u8 {
            let s = store.clone();
            set.spawn(async move { s.put("k/v", vec![i; 64 * 1024]).await });
        }
        while let Some(r) = set.join_next().await {
            r.unwrap().unwrap();
        }
        let v = store.get("k/v").await.unwrap().unwrap();
        assert_eq!(v.len(), 64 * 1024);
        assert!(v.iter().all(|b| *b == v[0]), "bytes of two writers mixed");
        assert_eq!(
            store.list("").await.unwrap().len(),
            1,
            "temporary files left"
        );
    }

    #[test]
    fn locations_parse_s3_urls_and_folders() {
        assert_eq!(
            BlobLocation::parse("s3://bucket/some/prefix/").unwrap(),
            BlobLocation::S3 {
                bucket: "bucket".into(),
                prefix: "some/prefix".into()
            }
        );
        assert_eq!(
            BlobLocation::parse("s3://bucket").unwrap().display(),
            "s3://bucket"
        );
        assert!(BlobLocation::parse("s3:///x").is_err());
        assert_eq!(
            BlobLocation::parse("out/artefacts").unwrap(),
            BlobLocation::Folder(PathBuf::from("out/artefacts"))
        );
    }

    #[tokio::test]
    async fn a_folder_location_opens_a_folder_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(&BlobLocation::Folder(dir.path().to_path_buf()))
            .await
            .unwrap();
        store.put("a/b.txt", b"x".to_vec()).await.unwrap();
        assert_eq!(
            store.location("a/b.txt"),
            dir.path().join("a/b.txt").display().to_string()
        );
    }

    #[test]
    fn s3_store_keys_live_under_the_prefix_and_bad_prefixes_are_refused() {
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .build();
        let client = super::super::s3::s3_client(&sdk);
        let store = S3Store::from_client(client.clone(), "bucket", "/runs/one/").unwrap();
        assert_eq!(store.prefix(), "runs/one");
        assert_eq!(
            store.location("in/a b.pdf"),
            "s3://bucket/runs/one/in/a b.pdf"
        );
        let whole = S3Store::from_client(client.clone(), "bucket", "").unwrap();
        assert_eq!(whole.location("k"), "s3://bucket/k");
        assert!(S3Store::from_client(client.clone(), "bucket", "a/../b").is_err());
        assert!(S3Store::from_client(client, "", "p").is_err());
    }

    #[test]
    fn a_custom_endpoint_set_in_code_is_recognised_and_aws_itself_is_not() {
        let base = || {
            aws_config::SdkConfig::builder()
                .behavior_version(aws_config::BehaviorVersion::latest())
                .region(aws_config::Region::new("us-east-1"))
        };
        assert_eq!(super::super::s3::custom_endpoint(&base().build()), None);
        let local = base().endpoint_url("http://127.0.0.1:9000").build();
        assert_eq!(
            super::super::s3::custom_endpoint(&local).as_deref(),
            Some("http://127.0.0.1:9000")
        );
    }
}
