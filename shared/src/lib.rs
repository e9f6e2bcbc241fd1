//! # lexpipe
//!
//! A legal-document processing pipeline: OCR → chunk → entity extraction → resolution →
//! output, made cheap, fast and safe by Redis (result caches with single flight, metrics,
//! circuit breaking). The same stages run in AWS Lambda (one function per stage) and on
//! one machine through `lexpipe process`.
//!
//! ## Layout
//!
//! - [`config`]: one typed [`config::Config`], read once from the environment.
//! - [`model`]: the data passed between stages (pages, chunks, mentions, entities).
//! - [`text`]: offset and hashing helpers.
//! - [`redis`]: keys, codec, connection with circuit breaker, cache (Redis and in-process),
//!   metrics and health.
//! - [`ocr`]: text of every page (PDF text layer locally).
//! - [`chunk`], [`extract`], [`resolve`]: the text-processing stages' pure logic.
//! - [`stages`]: each stage as `run(deps, input)`, with its caching.
//! - [`runner`]: the local end-to-end run behind `lexpipe process`.
//! - [`samples`]: the generator of the synthetic documents in `samples/`.
//! - [`store`]: PostgreSQL persistence and the work queue.
//! - [`asl`]: a generic local Amazon States Language interpreter, to run the deployed state
//!   machine definition in-process.

pub mod asl;
pub mod chunk;
pub mod config;
pub mod extract;
pub mod model;
pub mod ocr;
pub mod redis;
pub mod resolve;
pub mod runner;
pub mod samples;
pub mod stages;
pub mod store;
pub mod text;
pub mod worker;
