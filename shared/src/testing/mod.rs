//! Fakes of the paid APIs, for the integration tests and `lexpipe bench workload`: real
//! servers on local ports that the real clients talk to, never mocks of the code under
//! test.
//!
//! - [`fake_llm`]: an OpenAI-compatible chat completions endpoint.
//!
//! The Textract fake (issue 8) belongs here too, so that the workload benchmark can drive
//! both from one place.

pub mod fake_llm;
