//! Tests
use super::*;

#[test]
#[ignore]
fn debug_dump() {
    let path = std::env::var("LP_FILE").unwrap();
    let text = std::fs::read_to_string(path).unwrap();
    for m in RuleExtractor::new().extract(&text) {
        println!("{:<12} {:>5}-{:<5} {:.2} {:?} => {:?}", m.kind.as_str(), m.start, m.end, m.confidence, m.text, m.normalized);
    }
}
