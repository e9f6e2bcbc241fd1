use super::*;
#[test]
#[ignore]
fn debug_dump() {
    let text = std::fs::read_to_string(std::env::var("LP_FILE").unwrap()).unwrap();
    for m in RuleExtractor::new().extract(&text) {
        println!("{:<12} {:>5}-{:<5} {:.2} {:?} => {:?}", m.kind.as_str(), m.start, m.end, m.confidence, m.text, m.normalized);
    }
}
#[test]
#[ignore]
fn debug_org_regex() {
    let t = "We hired Goldman Sachs & Co. LLC today.";
    for m in super::names::debug_org_matches(t) { println!("match {:?}", m); }
}
