//! One builder for every Redis key.
//!
//! A key is `lexpipe:{env}:{namespace}:v{N}:{part}:{part}…`. The prefix and namespace are
//! fixed by the program; every part is either a digest the program computed, an internal
//! identifier restricted to `[A-Za-z0-9._-]`, or user input, which is always hashed. So no
//! file name or S3 key, whatever it contains (`:`, `*`, spaces, newlines, unicode), can
//! move a key into another namespace or match a pattern it should not.

use crate::text::sha256_hex;

/// Longest identifier kept verbatim; longer ones are hashed.
const MAX_ID_LEN: usize = 64;

/// Builds keys under one `lexpipe:{env}:` prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyBuilder {
    prefix: String,
}

/// One component of a key after the namespace and version.
#[derive(Debug, Clone, Copy)]
pub enum KeyPart<'a> {
    /// A hex digest the program computed (SHA-256 of content, of a request…).
    /// Anything that is not lowercase hex is hashed instead.
    Digest(&'a str),
    /// An internal identifier (method, model, extractor name, UUID). Characters outside
    /// `[A-Za-z0-9._-]`, or more than 64 of them, make it hashed (`h-…`).
    Id(&'a str),
    /// Untrusted input (file name, S3 key): always hashed.
    User(&'a [u8]),
    /// A number (counter, page index).
    Num(u64),
    /// A Redis Cluster hash tag, `{…}`: keys that one script touches together carry the
    /// same tag so they live in one slot. The content follows the rules of [`KeyPart::Id`].
    Tag(&'a str),
}

impl KeyBuilder {
    /// `env` must already be validated by `Config` (`[a-z0-9][a-z0-9_-]*`); anything else is
    /// hashed so that even a bad caller cannot break the prefix.
    pub fn new(env: &str) -> KeyBuilder {
        let env = if is_safe_id(env) && !env.is_empty() {
            env.to_string()
        } else {
            format!("h-{}", &sha256_hex(env)[..16])
        };
        KeyBuilder {
            prefix: format!("lexpipe:{env}:"),
        }
    }

    /// `lexpipe:{env}:`: every key of this deployment starts with it.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `{prefix}{namespace}:v{version}:{parts…}`.
    ///
    /// # Panics
    /// If `namespace` is not `[a-z_]+`: namespaces are compile-time constants, so this is a
    /// programming error caught by any test that builds the key.
    pub fn key(&self, namespace: &str, version: u32, parts: &[KeyPart<'_>]) -> String {
        assert!(
            !namespace.is_empty()
                && namespace
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_'),
            "invalid key namespace {namespace:?}"
        );
        let mut key = String::with_capacity(self.prefix.len() + namespace.len() + 96);
        key.push_str(&self.prefix);
        key.push_str(namespace);
        key.push_str(":v");
        key.push_str(&version.to_string());
        for part in parts {
            key.push(':');
            push_part(&mut key, part);
        }
        key
    }

    /// The pattern matching every key of a namespace (for SCAN in stats and tests).
    pub fn pattern(&self, namespace: &str) -> String {
        format!("{}{}:*", self.prefix, namespace)
    }

    /// `{prefix}metrics:v1:`, what every metrics hash key starts with.
    pub fn metrics_prefix(&self) -> String {
        format!("{}metrics:v1:", self.prefix)
    }

    /// `{prefix}metrics:v1:{namespace}`: the hash of cache counters for one namespace.
    pub fn metrics(&self, namespace: &str) -> String {
        self.key("metrics", 1, &[KeyPart::Id(namespace)])
    }
}

fn push_part(key: &mut String, part: &KeyPart<'_>) {
    match *part {
        KeyPart::Digest(d) => {
            if !d.is_empty()
                && d.len() <= 128
                && d.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            {
                key.push_str(d);
            } else {
                key.push_str("h-");
                key.push_str(&sha256_hex(d)[..32]);
            }
        }
        KeyPart::Id(id) => {
            if !id.is_empty() && id.len() <= MAX_ID_LEN && is_safe_id(id) {
                key.push_str(id);
            } else {
                key.push_str("h-");
                key.push_str(&sha256_hex(id)[..32]);
            }
        }
        KeyPart::User(bytes) => {
            key.push_str("u-");
            key.push_str(&sha256_hex(bytes)[..32]);
        }
        KeyPart::Num(n) => key.push_str(&n.to_string()),
        KeyPart::Tag(t) => {
            key.push('{');
            push_part(key, &KeyPart::Id(t));
            key.push('}');
        }
    }
}

fn is_safe_id(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_has_prefix_namespace_version_and_parts() {
        let k = KeyBuilder::new("dev");
        let sha = sha256_hex("x");
        assert_eq!(
            k.key("ocr", 3, &[KeyPart::Digest(&sha), KeyPart::Id("pdf_text")]),
            format!("lexpipe:dev:ocr:v3:{sha}:pdf_text")
        );
    }

    #[test]
    fn user_input_is_always_hashed() {
        let k = KeyBuilder::new("dev");
        let key = k.key("doc", 1, &[KeyPart::User(b"contract.pdf")]);
        assert!(!key.contains("contract"));
        assert!(key.starts_with("lexpipe:dev:doc:v1:u-"));
    }

    #[test]
    fn a_tag_wraps_a_safe_id_in_braces_and_hashes_anything_else() {
        let k = KeyBuilder::new("dev");
        assert_eq!(
            k.key("lock", 1, &[KeyPart::Tag("queue_item-42")]),
            "lexpipe:dev:lock:v1:{queue_item-42}"
        );
        let hostile = k.key("lock", 1, &[KeyPart::Tag("a}{b")]);
        assert_eq!(hostile.matches('{').count(), 1);
        assert_eq!(hostile.matches('}').count(), 1);
    }

    #[test]
    #[should_panic(expected = "invalid key namespace")]
    fn a_namespace_with_a_colon_is_refused() {
        KeyBuilder::new("dev").key("a:b", 1, &[]);
    }
}
