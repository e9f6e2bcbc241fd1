//! Durable storage: PostgreSQL (documents, results, the work queue) and, without a
//! database, JSON files. Being written (issue 3).

pub mod db;
pub mod persist;
pub mod queue;
