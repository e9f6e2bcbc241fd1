//! Entity extraction. The rule-based extractor ([`rules`]) is the offline default; the
//! LLM one ([`llm`]: prompt, schema, span location) asks the endpoint of [`crate::llm`];
//! `LEXPIPE_EXTRACTOR=both` merges the two.

pub mod doctype;
pub mod llm;
pub mod rules;

pub use rules::RuleExtractor;
