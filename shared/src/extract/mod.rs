//! Entity extraction. The rule-based extractor is the offline default; an LLM-backed one
//! comes with the LLM client.

pub mod rules;

pub use rules::RuleExtractor;
