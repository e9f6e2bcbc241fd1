//! Prices of the paid APIs, for the cost ledger ([`crate::cost`]): `LEXPIPE_PRICE_*` (see
//! the table in [`crate::config`]). Defaults are the list prices in us-east-1 as of 2026:
//! Textract `DetectDocumentText` $1.50 per 1,000 pages, gpt-4o-mini $0.15 per million input
//! and $0.60 per million output tokens.

use super::{ConfigError, Vars, quoted};

const TEXTRACT_PER_PAGE_VAR: &str = "LEXPIPE_PRICE_TEXTRACT_PER_PAGE";
const LLM_INPUT_VAR: &str = "LEXPIPE_PRICE_LLM_INPUT_PER_MTOK";
const LLM_OUTPUT_VAR: &str = "LEXPIPE_PRICE_LLM_OUTPUT_PER_MTOK";

/// Dollars per billed unit of each paid API.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PriceConfig {
    /// Textract text detection, per page.
    pub textract_per_page: f64,
    /// LLM prompt tokens, per million.
    pub llm_input_per_million: f64,
    /// LLM completion tokens, per million.
    pub llm_output_per_million: f64,
}

// Prices are finite by construction (`from_vars` refuses NaN and infinities), so equality
// is total, as `Config`'s `Eq` needs.
impl Eq for PriceConfig {}

impl Default for PriceConfig {
    fn default() -> Self {
        PriceConfig {
            textract_per_page: 0.0015,
            llm_input_per_million: 0.15,
            llm_output_per_million: 0.60,
        }
    }
}

impl PriceConfig {
    /// Reads the `LEXPIPE_PRICE_*` variables through `get`; unset or blank keeps the default.
    ///
    /// # Errors
    /// A value that is not a finite, non-negative number, naming its variable.
    pub fn from_vars(get: &dyn Fn(&str) -> Option<String>) -> Result<PriceConfig, ConfigError> {
        let vars = Vars::new(get);
        let d = PriceConfig::default();
        Ok(PriceConfig {
            textract_per_page: price(&vars, TEXTRACT_PER_PAGE_VAR, d.textract_per_page)?,
            llm_input_per_million: price(&vars, LLM_INPUT_VAR, d.llm_input_per_million)?,
            llm_output_per_million: price(&vars, LLM_OUTPUT_VAR, d.llm_output_per_million)?,
        })
    }

    /// Dollars for `pages` Textract pages.
    pub fn textract(&self, pages: u64) -> f64 {
        self.textract_per_page * pages as f64
    }

    /// Dollars for an LLM call of `input` prompt and `output` completion tokens.
    pub fn llm(&self, input: u64, output: u64) -> f64 {
        (self.llm_input_per_million * input as f64 + self.llm_output_per_million * output as f64)
            / 1_000_000.0
    }
}

fn price<F: Fn(&str) -> Option<String>>(
    vars: &Vars<F>,
    var: &str,
    default: f64,
) -> Result<f64, ConfigError> {
    let Some(v) = vars.trimmed(var) else {
        return Ok(default);
    };
    match v.parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
        _ => Err(ConfigError::new(
            var,
            format!(
                "expected a price in dollars (a number ≥ 0), got {}",
                quoted(&v)
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let d = PriceConfig::from_vars(&|_| None).unwrap();
        assert_eq!(d, PriceConfig::default());
        assert!((d.textract(1000) - 1.5).abs() < 1e-9);
        assert!((d.llm(1_000_000, 1_000_000) - 0.75).abs() < 1e-9);
        let p = PriceConfig::from_vars(&|k| (k == TEXTRACT_PER_PAGE_VAR).then(|| " 0.01 ".into()))
            .unwrap();
        assert!((p.textract(3) - 0.03).abs() < 1e-12);
    }

    #[test]
    fn bad_prices_name_their_variable() {
        for bad in ["-1", "abc", "NaN", "inf"] {
            let e =
                PriceConfig::from_vars(&|k| (k == LLM_INPUT_VAR).then(|| bad.into())).unwrap_err();
            assert_eq!(e.var, LLM_INPUT_VAR);
            assert!(e.problem.contains(bad), "{}", e.problem);
        }
    }
}
