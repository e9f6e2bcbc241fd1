//! Durable storage: PostgreSQL (Supabase in production) for documents, their results and
//! the work queue. Without `DATABASE_URL`, results go to JSON files only.
//!
//! - [`db`]: configuration, connection, embedded migrations, errors.
//! - [`queue`]: enqueue, claim (SKIP LOCKED + lease + fencing token), heartbeat,
//!   complete, fail, and the per-attempt history.
//! - [`persist`]: one document's results in one transaction, fenced and upserted.
//! - [`source`]: a document's bytes from a path or `s3://bucket/key`.
//! - [`blob`]: the blob store (a folder or S3) for inputs and durable step artefacts.
//! - [`s3`]: the S3 adapter of the blob store and the S3 client built from `aws-config`.

pub mod blob;
pub mod db;
pub mod persist;
pub mod queue;
pub mod s3;
pub mod source;
