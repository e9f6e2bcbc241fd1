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
//! - [`ocr`]: text of every page: the PDF text layer, which pages need image OCR and
//!   why, Tesseract locally, Textract asynchronously in the cloud.
//! - [`chunk`], [`extract`], [`resolve`]: the text-processing stages' pure logic.
//! - [`llm`]: the OpenAI-compatible client behind the LLM response cache and the shared
//!   rate limits, with its JSON-schema validator.
//! - [`testing`]: fake paid APIs (a real HTTP server speaking the OpenAI protocol) for
//!   tests and benchmarks.
//! - [`eval`]: precision and recall of the extracted entities against labelled documents.
//! - [`app`]: the composition root every entry point builds once from the config.
//! - [`stages`]: each stage as a step, `run(app, Input) -> Output`, with its cache and
//!   its durable artefact.
//! - [`asl`]: the Amazon States Language interpreter that runs the state machine locally.
//! - [`pipeline`]: the state machine definition, its tasks, document state per stage.
//! - [`runner`]: the local batch run behind `lexpipe process`.
//! - [`worker`]: queue workers behind `lexpipe worker`.
//! - [`ingest`]: S3 notifications → documents, queue rows and state machine executions
//!   (the `ingest` Lambda function).
//! - [`health`]: the health check of `lexpipe health` and the `health` function;
//!   [`emf`]: the CloudWatch metric lines every function prints.
//! - [`samples`]: the generator of the synthetic documents in `samples/`.
//! - [`store`]: PostgreSQL persistence, the work queue, the blob store and sources.
//! - [`testing`]: stand-ins the tests and `lexpipe bench` share: a fake Textract HTTP
//!   server and scanned court filings made from born-digital ones.

pub mod app;
pub mod asl;
pub mod chunk;
pub mod config;
pub mod cost;
pub mod emf;
pub mod eval;
pub mod extract;
pub mod health;
pub mod ingest;
pub mod llm;
pub mod model;
pub mod ocr;
pub mod pipeline;
pub mod redis;
pub mod resolve;
pub mod runner;
pub mod samples;
pub mod stages;
pub mod store;
pub mod testing;
pub mod text;
pub mod worker;
