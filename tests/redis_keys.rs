//! Key safety: user input cannot change a key's namespace, against the real Redis.

use lexpipe::redis::{KeyBuilder, KeyPart};
use lexpipe_tests::{cleanup, keys_of, raw_connection, require_redis, unique_env};

const HOSTILE: &[&str] = &[
    "contract.pdf",
    "a:b:c",
    "*",
    "lock:queue_item:*",
    "with space",
    "line\nbreak\r\n",
    "tab\there",
    "ünïcødé — § 1983 契約",
    "../../etc/passwd",
    "lexpipe:prod:ocr:v1:deadbeef",
    "{hash}tag",
    "",
];

fn allowed(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, ':' | '-' | '_' | '.')
}

#[test]
fn hostile_input_cannot_change_a_keys_namespace_or_shape() {
    let keys = KeyBuilder::new("dev");
    for input in HOSTILE {
        for part in [
            KeyPart::User(input.as_bytes()),
            KeyPart::Id(input),
            KeyPart::Digest(input),
        ] {
            let key = keys.key("doc", 1, &[part, KeyPart::Id("tail")]);
            let rest = key
                .strip_prefix("lexpipe:dev:doc:v1:")
                .unwrap_or_else(|| panic!("{input:?} moved the key out of its namespace: {key}"));
            assert_eq!(
                rest.matches(':').count(),
                1,
                "{input:?} added separators: {key}"
            );
            assert!(rest.ends_with(":tail"), "{input:?} broke the key: {key}");
            assert!(
                key.chars().all(|c| allowed(c) || c.is_ascii_uppercase()),
                "{input:?} put a forbidden character in {key:?}"
            );
            assert!(!key.contains('*') && !key.contains(' ') && !key.contains('\n'));
        }
    }
}

#[test]
fn distinct_inputs_give_distinct_keys() {
    let keys = KeyBuilder::new("dev");
    let mut seen = std::collections::HashSet::new();
    for input in HOSTILE {
        assert!(seen.insert(keys.key("doc", 1, &[KeyPart::User(input.as_bytes())])));
    }
}

#[test]
fn a_bad_environment_name_cannot_break_the_prefix() {
    let keys = KeyBuilder::new("prod:*\n");
    assert!(keys.prefix().starts_with("lexpipe:h-"));
    assert_eq!(keys.prefix().matches(':').count(), 2);
}

#[tokio::test]
async fn hostile_keys_written_to_redis_stay_in_their_namespace() {
    // Arrange
    require_redis().await;
    let env = unique_env("keys");
    let keys = KeyBuilder::new(&env);
    let mut c = raw_connection().await;
    // Act: write one key per hostile input under the `doc` namespace.
    for input in HOSTILE {
        let key = keys.key("doc", 1, &[KeyPart::User(input.as_bytes())]);
        let _: () = redis::cmd("SET")
            .arg(&key)
            .arg("x")
            .arg("EX")
            .arg(60)
            .query_async(&mut c)
            .await
            .unwrap();
    }
    // Assert: every key is under doc, none matches another namespace's pattern.
    let all = keys_of(&env).await;
    assert_eq!(all.len(), HOSTILE.len());
    assert!(
        all.iter()
            .all(|k| k.starts_with(&format!("lexpipe:{env}:doc:v1:u-")))
    );
    for other in ["lock", "ocr", "metrics", "prod"] {
        let mut cursor: u64 = 0;
        loop {
            let (next, found): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(keys.pattern(other))
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut c)
                .await
                .unwrap();
            assert!(found.is_empty(), "{other} pattern matched {found:?}");
            if next == 0 {
                break;
            }
            cursor = next;
        }
    }
    cleanup(&env).await;
}
