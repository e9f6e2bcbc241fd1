use super::*;
#[test]
#[ignore]
fn debug_dump() {
    let text = std::fs::read_to_string(std::env::var("LP_FILE").unwrap()).unwrap();
    for m in RuleExtractor::new().extract(&text) {
        println!(
            "{:<12} {:>5}-{:<5} {:.2} {:?} => {:?}",
            m.kind.as_str(),
            m.start,
            m.end,
            m.confidence,
            m.text,
            m.normalized
        );
    }
}

#[test]
#[ignore]
fn debug_samples() {
    let verbose = std::env::var("LP_VERBOSE").is_ok();
    let (mut found, mut total, mut pm, mut pt) = (0, 0, 0, 0);
    for doc in crate::samples::documents() {
        let text = doc.page_texts().join("\n\n");
        std::fs::write(format!("/tmp/lp/{}.txt", doc.file_name), &text).unwrap();
        let mentions = RuleExtractor::new().extract(&text);
        let expected = doc.entities();
        println!("== {}", doc.file_name);
        for e in &expected {
            total += 1;
            let hit = mentions.iter().any(|m| {
                m.kind == e.kind
                    && m.text == e.text
                    && e.normalized.as_ref().is_none_or(|n| *n == m.normalized)
            });
            if hit {
                found += 1
            } else {
                let near: Vec<String> = mentions
                    .iter()
                    .filter(|m| m.text.contains(&e.text) || e.text.contains(&m.text))
                    .map(|m| format!("{}:{:?}={:?}", m.kind, m.text, m.normalized))
                    .collect();
                println!(
                    "  MISS {} {:?} {:?}  near: {:?}",
                    e.kind, e.text, e.normalized, near
                );
            }
        }
        for m in &mentions {
            if matches!(
                m.kind,
                crate::model::EntityKind::Person | crate::model::EntityKind::Org
            ) {
                pt += 1;
                let ml = m.text.to_lowercase();
                let ok = expected.iter().any(|e| {
                    let el = e.text.to_lowercase();
                    el.contains(&ml) || ml.contains(&el)
                });
                if ok {
                    pm += 1
                } else {
                    println!("  EXTRA {} {:?}", m.kind, m.text);
                }
            } else if verbose {
                println!("  other {} {:?}", m.kind, m.text);
            }
        }
    }
    println!("recall {found}/{total}, person/org precision {pm}/{pt}");
}
