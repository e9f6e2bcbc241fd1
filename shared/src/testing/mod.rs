//! Stand-ins of the paid APIs, shared by the integration tests and `lexpipe bench`: real
//! servers on local ports that the real clients talk to, never mocks of the code under
//! test. They live in the library (not under `tests/`) so that the benchmarks, which are
//! not tests, can use them too.
//!
//! - [`fake_textract`]: an HTTP server speaking Textract's JSON 1.1 protocol as
//!   `aws-sdk-textract` does (moto's Textract cannot be used from Rust), logging every call
//!   with its time.
//! - [`fake_llm`]: an OpenAI-compatible chat completions endpoint.
//! - [`local_s3`]: moto's S3 server, for benchmarks that send pages to Textract.
//! - [`scans`]: scanned court filings made from born-digital ones (`pdftoppm` → JPEG → PDF),
//!   with an ECF header stamped into the text layer the way PACER does.

pub mod fake_llm;
pub mod fake_textract;
pub mod local_s3;
pub mod scans;
