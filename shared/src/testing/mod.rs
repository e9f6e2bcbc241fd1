//! Stand-ins shared by the integration tests and `lexpipe bench`: they live in the library
//! (not under `tests/`) so that the benchmark, which is not a test, can use them too.
//!
//! - [`fake_textract`]: an HTTP server speaking Textract's JSON 1.1 protocol as
//!   `aws-sdk-textract` does (moto's Textract cannot be used from Rust), logging every call
//!   with its time.
//! - [`scans`]: scanned court filings made from born-digital ones (`pdftoppm` → JPEG → PDF),
//!   with an ECF header stamped into the text layer the way PACER does.

pub mod fake_textract;
pub mod scans;
