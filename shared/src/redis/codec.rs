//! The value format of every cache entry: a versioned envelope, JSON, zstd-compressed above
//! a size threshold, with a size cap.
//!
//! Bytes on the wire: a 4-byte magic (`LXJ1` plain JSON, `LXZ1` zstd JSON) then the
//! envelope `{"v": schema, "at": created_ms, "by": producer, "p": payload}`. Decoding is
//! strict: a wrong magic, a failed decompression or parse, or a schema other than the one
//! the reader expects is a [`DecodeError`], which the cache treats as a miss.

use std::cell::RefCell;

use serde::{Deserialize, Serialize, de::DeserializeOwned};

const MAGIC_JSON: &[u8; 4] = b"LXJ1";
const MAGIC_ZSTD: &[u8; 4] = b"LXZ1";
/// zstd level: 3 is the library default, a good speed/ratio point for JSON.
const ZSTD_LEVEL: i32 = 3;

/// Encoding settings shared by every cache of a process.
#[derive(Debug, Clone)]
pub struct Codec {
    /// Payloads whose JSON is larger than this are compressed.
    pub compress_threshold: usize,
    /// Encoded values larger than this are not cached (and not decoded).
    pub max_value_bytes: usize,
    /// Who wrote the entry, e.g. `lexpipe/0.1.0`: helps when reading Redis by hand.
    pub producer: String,
}

#[derive(Serialize)]
struct EnvelopeOut<'a, T> {
    v: u32,
    at: i64,
    by: &'a str,
    p: &'a T,
}

/// Reading side of the envelope: `at` and `by` are for people reading Redis by hand, so
/// the hot path skips them without allocating.
#[derive(Deserialize)]
struct EnvelopeIn<T> {
    v: u32,
    p: T,
}

/// Why a value could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("value of {size} bytes is over the cache cap of {cap} bytes")]
    TooLarge { size: usize, cap: usize },
    #[error("value does not serialise: {0}")]
    Serialize(String),
}

/// Why stored bytes could not be read back; the cache treats every one as a miss.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("unknown value format (bad magic)")]
    BadMagic,
    #[error("value of {size} bytes is over the cap of {cap} bytes")]
    TooLarge { size: usize, cap: usize },
    #[error("corrupt compressed value: {0}")]
    Decompress(String),
    #[error("corrupt value: {0}")]
    Parse(String),
    #[error("schema version {found}, expected {expected}")]
    Version { found: u32, expected: u32 },
}

thread_local! {
    // zstd contexts are costly to create (hundreds of KiB): one per thread, reused. A
    // fresh context per call cost more than the whole Redis round trip of a cache hit.
    static COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> =
        RefCell::new(zstd::bulk::Compressor::new(ZSTD_LEVEL).ok());
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        RefCell::new(zstd::bulk::Decompressor::new().ok());
}

#[derive(Deserialize)]
struct VersionOnly {
    v: u32,
}

impl Codec {
    /// Settings from the cache configuration.
    pub fn new(compress_threshold: usize, max_value_bytes: usize) -> Codec {
        Codec {
            compress_threshold,
            max_value_bytes,
            producer: format!("lexpipe/{}", env!("CARGO_PKG_VERSION")),
        }
    }

    /// Wraps `payload` in an envelope of `schema` version.
    ///
    /// # Errors
    /// The value does not serialise, or is larger than the cap after compression.
    pub fn encode<T: Serialize>(&self, schema: u32, payload: &T) -> Result<Vec<u8>, EncodeError> {
        let env = EnvelopeOut {
            v: schema,
            at: chrono::Utc::now().timestamp_millis(),
            by: &self.producer,
            p: payload,
        };
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(MAGIC_JSON);
        serde_json::to_writer(&mut out, &env).map_err(|e| EncodeError::Serialize(e.to_string()))?;
        if out.len() - 4 > self.compress_threshold {
            if out.len() - 4 > self.max_value_bytes {
                // Would not decode: the decompressed size is capped too.
                return Err(EncodeError::TooLarge {
                    size: out.len() - 4,
                    cap: self.max_value_bytes,
                });
            }
            let compressed = COMPRESSOR
                .with(|c| match c.borrow_mut().as_mut() {
                    Some(c) => c.compress(&out[4..]),
                    None => zstd::bulk::compress(&out[4..], ZSTD_LEVEL),
                })
                .map_err(|e| EncodeError::Serialize(e.to_string()))?;
            let mut z = Vec::with_capacity(compressed.len() + 4);
            z.extend_from_slice(MAGIC_ZSTD);
            z.extend_from_slice(&compressed);
            out = z;
        }
        if out.len() > self.max_value_bytes {
            return Err(EncodeError::TooLarge {
                size: out.len(),
                cap: self.max_value_bytes,
            });
        }
        Ok(out)
    }

    /// Decompresses a zstd frame whose declared size is within the cap: a decompression
    /// bomb cannot allocate more than the cap, and a normal value allocates exactly its size.
    fn decompress(&self, body: &[u8]) -> Result<Vec<u8>, DecodeError> {
        let size = match zstd::zstd_safe::get_frame_content_size(body) {
            Ok(Some(n)) => n,
            Ok(None) => {
                return Err(DecodeError::Decompress(
                    "frame without a content size".into(),
                ));
            }
            Err(_) => return Err(DecodeError::Decompress("bad frame header".into())),
        };
        if size > self.max_value_bytes as u64 {
            return Err(DecodeError::TooLarge {
                size: size as usize,
                cap: self.max_value_bytes,
            });
        }
        let mut out = Vec::with_capacity(size as usize);
        DECOMPRESSOR
            .with(|d| match d.borrow_mut().as_mut() {
                Some(d) => d.decompress_to_buffer(body, &mut out),
                None => zstd::bulk::decompress_to_buffer(body, &mut out),
            })
            .map_err(|e| DecodeError::Decompress(e.to_string()))?;
        Ok(out)
    }

    /// Reads back a value written by [`Codec::encode`] with the `expected` schema.
    ///
    /// # Errors
    /// See [`DecodeError`]; every case is a cache miss for the caller.
    pub fn decode<T: DeserializeOwned>(
        &self,
        expected: u32,
        bytes: &[u8],
    ) -> Result<T, DecodeError> {
        if bytes.len() > self.max_value_bytes {
            return Err(DecodeError::TooLarge {
                size: bytes.len(),
                cap: self.max_value_bytes,
            });
        }
        if bytes.len() < 4 {
            return Err(DecodeError::BadMagic);
        }
        let (magic, body) = bytes.split_at(4);
        let owned;
        let json: &[u8] = if magic == MAGIC_JSON {
            body
        } else if magic == MAGIC_ZSTD {
            owned = self.decompress(body)?;
            &owned
        } else {
            return Err(DecodeError::BadMagic);
        };
        match serde_json::from_slice::<EnvelopeIn<T>>(json) {
            Ok(env) if env.v == expected => Ok(env.p),
            Ok(env) => Err(DecodeError::Version {
                found: env.v,
                expected,
            }),
            Err(e) => {
                // A payload of another shape under another version reads as a version
                // mismatch, which is what it is.
                if let Ok(v) = serde_json::from_slice::<VersionOnly>(json)
                    && v.v != expected
                {
                    return Err(DecodeError::Version {
                        found: v.v,
                        expected,
                    });
                }
                Err(DecodeError::Parse(e.to_string()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec() -> Codec {
        Codec::new(64, 1 << 20)
    }

    #[test]
    fn small_values_round_trip_uncompressed() {
        let c = codec();
        let bytes = c.encode(2, &vec![1u32, 2, 3]).unwrap();
        assert_eq!(&bytes[..4], b"LXJ1");
        assert_eq!(c.decode::<Vec<u32>>(2, &bytes).unwrap(), vec![1, 2, 3]);
    }

    #[test]
    fn large_values_are_compressed_and_round_trip() {
        let c = codec();
        let text = "the party of the first part ".repeat(100);
        let bytes = c.encode(1, &text).unwrap();
        assert_eq!(&bytes[..4], b"LXZ1");
        assert!(bytes.len() < text.len() / 4);
        assert_eq!(c.decode::<String>(1, &bytes).unwrap(), text);
    }

    #[test]
    fn another_schema_version_is_refused() {
        let c = codec();
        let bytes = c.encode(1, &"x").unwrap();
        assert_eq!(
            c.decode::<String>(2, &bytes),
            Err(DecodeError::Version {
                found: 1,
                expected: 2
            })
        );
    }

    #[test]
    fn garbage_and_truncated_values_are_errors_not_panics() {
        let c = codec();
        let good = c
            .encode(1, &"the party of the first part ".repeat(100))
            .unwrap();
        for n in 0..good.len() {
            assert!(c.decode::<String>(1, &good[..n]).is_err());
        }
        assert_eq!(
            c.decode::<String>(1, b"hello world"),
            Err(DecodeError::BadMagic)
        );
    }

    #[test]
    fn values_over_the_cap_are_not_encoded() {
        let c = Codec::new(1 << 30, 100);
        assert!(matches!(
            c.encode(1, &"x".repeat(200)),
            Err(EncodeError::TooLarge { .. })
        ));
    }
}
