//! OCR settings: which engine reads the pages whose text layer is not their content, and
//! how (`LEXPIPE_OCR_*`, `LEXPIPE_TESSERACT`, `LEXPIPE_PDFTOPPM`, `LEXPIPE_TEXTRACT_*`; see
//! the table in [`crate::config`]).

use std::path::PathBuf;
use std::time::Duration;

use super::{ConfigError, DeploymentStage, Vars, quoted};

const ENGINE: &str = "LEXPIPE_OCR_ENGINE";
const TESSERACT: &str = "LEXPIPE_TESSERACT";
const PDFTOPPM: &str = "LEXPIPE_PDFTOPPM";
const DPI: &str = "LEXPIPE_OCR_DPI";
const LANG: &str = "LEXPIPE_OCR_LANG";
const POLL_SECS: &str = "LEXPIPE_TEXTRACT_POLL_SECS";
const STATUS_TTL_DONE_SECS: &str = "LEXPIPE_TEXTRACT_STATUS_TTL_SECS";

/// Which engine reads the pages that need OCR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OcrEngineChoice {
    /// Nothing: pages that need OCR keep their text layer and are reported as unread.
    None,
    /// Tesseract on this machine (pages rendered by `pdftoppm`).
    Tesseract,
    /// AWS Textract, asynchronous text detection on an S3 object.
    Textract,
}

impl OcrEngineChoice {
    pub fn as_str(self) -> &'static str {
        match self {
            OcrEngineChoice::None => "none",
            OcrEngineChoice::Tesseract => "tesseract",
            OcrEngineChoice::Textract => "textract",
        }
    }
}

/// How pages are read by image OCR; read once at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcrConfig {
    /// `LEXPIPE_OCR_ENGINE`: `auto` (the default) is Textract in `cloud`, Textract in
    /// `hybrid` when the artefact store is S3 (Textract reads S3 only) and Tesseract
    /// otherwise, Tesseract in `local`. `None` here means `auto`.
    pub engine: Option<OcrEngineChoice>,
    /// `LEXPIPE_TESSERACT`: the Tesseract command (default `tesseract`, found on `PATH`).
    pub tesseract: PathBuf,
    /// `LEXPIPE_PDFTOPPM`: the poppler renderer (default `pdftoppm`).
    pub pdftoppm: PathBuf,
    /// `LEXPIPE_OCR_DPI`: rendering resolution for Tesseract, default 300.
    pub dpi: u32,
    /// `LEXPIPE_OCR_LANG`: Tesseract languages, default `eng` (`eng+fra` for several).
    pub lang: String,
    /// `LEXPIPE_TEXTRACT_POLL_SECS`: the wait between polls of a Textract job, and how
    /// long a running job's status is cached (so any number of pollers cost one call per
    /// interval). Default 5 s.
    pub poll_interval: Duration,
    /// `LEXPIPE_TEXTRACT_STATUS_TTL_SECS`: how long a finished job's status is cached,
    /// default 6 hours.
    pub status_ttl_done: Duration,
}

impl Default for OcrConfig {
    fn default() -> Self {
        OcrConfig {
            engine: None,
            tesseract: PathBuf::from("tesseract"),
            pdftoppm: PathBuf::from("pdftoppm"),
            dpi: 300,
            lang: "eng".to_string(),
            poll_interval: Duration::from_secs(5),
            status_ttl_done: Duration::from_secs(6 * 60 * 60),
        }
    }
}

impl OcrConfig {
    /// Reads the OCR variables through `get`; unset or blank keeps the default.
    ///
    /// # Errors
    /// An unknown engine, a DPI outside 72–1200, a language that is not
    /// `[a-z_]+` joined by `+`, or a duration that is not a whole number of seconds ≥ 1;
    /// the error names the variable.
    pub fn from_vars(get: &dyn Fn(&str) -> Option<String>) -> Result<OcrConfig, ConfigError> {
        let vars = Vars::new(get);
        let d = OcrConfig::default();
        let engine = match vars.trimmed(ENGINE).map(|v| v.to_ascii_lowercase()) {
            None => None,
            Some(v) => match v.as_str() {
                "auto" => None,
                "none" => Some(OcrEngineChoice::None),
                "tesseract" => Some(OcrEngineChoice::Tesseract),
                "textract" => Some(OcrEngineChoice::Textract),
                _ => {
                    return Err(ConfigError::new(
                        ENGINE,
                        format!(
                            "expected auto, none, tesseract or textract, got {}",
                            quoted(&v)
                        ),
                    ));
                }
            },
        };
        let lang = vars.trimmed(LANG).unwrap_or(d.lang);
        let lang_ok = lang.split('+').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit())
        });
        if !lang_ok {
            return Err(ConfigError::new(
                LANG,
                format!(
                    "expected Tesseract language codes such as eng or eng+fra, got {}",
                    quoted(&lang)
                ),
            ));
        }
        Ok(OcrConfig {
            engine,
            tesseract: vars.trimmed(TESSERACT).map_or(d.tesseract, PathBuf::from),
            pdftoppm: vars.trimmed(PDFTOPPM).map_or(d.pdftoppm, PathBuf::from),
            dpi: vars.whole_in(DPI, d.dpi, 72..=1200, "a resolution in dots per inch")?,
            lang,
            poll_interval: vars.secs_in(POLL_SECS, d.poll_interval.as_secs(), 3600)?,
            status_ttl_done: vars.secs(STATUS_TTL_DONE_SECS, d.status_ttl_done.as_secs())?,
        })
    }

    /// The engine for `stage`, given whether the artefact store is S3.
    pub fn engine_for(&self, stage: DeploymentStage, artefacts_in_s3: bool) -> OcrEngineChoice {
        self.engine.unwrap_or(match stage {
            DeploymentStage::Cloud => OcrEngineChoice::Textract,
            DeploymentStage::Hybrid if artefacts_in_s3 => OcrEngineChoice::Textract,
            DeploymentStage::Hybrid | DeploymentStage::Local => OcrEngineChoice::Tesseract,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engine_follows_the_stage_unless_set() {
        let d = OcrConfig::from_vars(&|_| None).unwrap();
        assert_eq!(d, OcrConfig::default());
        use DeploymentStage::*;
        assert_eq!(d.engine_for(Cloud, false), OcrEngineChoice::Textract);
        assert_eq!(d.engine_for(Hybrid, true), OcrEngineChoice::Textract);
        assert_eq!(d.engine_for(Hybrid, false), OcrEngineChoice::Tesseract);
        assert_eq!(d.engine_for(Local, true), OcrEngineChoice::Tesseract);
        let none = OcrConfig::from_vars(&|k| (k == ENGINE).then(|| " None ".into())).unwrap();
        assert_eq!(none.engine_for(Cloud, true), OcrEngineChoice::None);
    }

    #[test]
    fn bad_ocr_settings_name_their_variable() {
        for (var, bad) in [
            (ENGINE, "abbyy"),
            (DPI, "20"),
            (LANG, "eng; rm -rf"),
            (POLL_SECS, "0"),
        ] {
            let e = OcrConfig::from_vars(&|k| (k == var).then(|| bad.into())).unwrap_err();
            assert_eq!(e.var, var);
        }
    }
}
