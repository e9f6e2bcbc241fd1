//! The cost ledger: what the paid APIs (Textract, the LLM) were asked, what the caches
//! saved, and what it cost.
//!
//! A step that may call a paid API creates a [`Meter`], hands it down to the engine that
//! makes the calls, and reports `meter.ledger()` in its output under `"usage"` (omitted
//! when empty). The local runner adds every step's usage into the document's and the run's
//! summary (`api_calls`, `cost_usd`); the Lambda flow carries the same field in the state
//! machine's payloads. A step that fails after paid calls returns them with its error
//! (`StageError::WithUsage`), which the local runner adds to the summary and a Lambda
//! function to its invocation's metric lines. Counts are of requests the endpoint actually received: a call is
//! recorded when it was sent, whatever came back; an avoided call is one a cache, an
//! artefact or a duplicate check made unnecessary, priced at what it would have cost.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::config::PriceConfig;

/// Usage of one paid API.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ApiUsage {
    /// Requests the endpoint received (every Textract Start/Get call; every LLM request,
    /// retries included).
    pub calls: u64,
    /// Requests not made because their answer was already known.
    pub calls_avoided: u64,
    /// Billed units sent: Textract pages, or LLM prompt tokens.
    pub units_in: u64,
    /// LLM completion tokens (zero for Textract).
    pub units_out: u64,
    /// Billed units not sent (pages served from the cache or the text layer; tokens of
    /// cached LLM answers).
    pub units_avoided: u64,
    /// Dollars spent.
    pub usd: f64,
    /// Dollars not spent thanks to the caches.
    pub usd_avoided: f64,
}

impl ApiUsage {
    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &ApiUsage) {
        self.calls += other.calls;
        self.calls_avoided += other.calls_avoided;
        self.units_in += other.units_in;
        self.units_out += other.units_out;
        self.units_avoided += other.units_avoided;
        self.usd += other.usd;
        self.usd_avoided += other.usd_avoided;
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        *self == ApiUsage::default()
    }
}

/// Usage of every paid API, as a step reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Ledger {
    pub textract: ApiUsage,
    pub llm: ApiUsage,
}

impl Ledger {
    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &Ledger) {
        self.textract.add(&other.textract);
        self.llm.add(&other.llm);
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.textract.is_empty() && self.llm.is_empty()
    }

    /// Dollars spent on every API.
    pub fn usd(&self) -> f64 {
        self.textract.usd + self.llm.usd
    }

    /// Dollars avoided on every API.
    pub fn usd_avoided(&self) -> f64 {
        self.textract.usd_avoided + self.llm.usd_avoided
    }

    /// The usage a step reported in its output JSON (`{"usage": {...}}`), if any.
    pub fn reported(output: &serde_json::Value) -> Option<Ledger> {
        output
            .get("usage")
            .and_then(|u| serde_json::from_value(u.clone()).ok())
    }
}

/// Records calls as they happen, from any number of tasks of one step.
#[derive(Debug)]
pub struct Meter {
    prices: PriceConfig,
    ledger: Mutex<Ledger>,
}

impl Meter {
    pub fn new(prices: PriceConfig) -> Meter {
        Meter {
            prices,
            ledger: Mutex::new(Ledger::default()),
        }
    }

    fn with(&self, f: impl FnOnce(&mut Ledger, &PriceConfig)) {
        let mut l = self.ledger.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut l, &self.prices);
    }

    /// One Textract request (Start or Get) received by the endpoint; `pages` billed with it
    /// (the pages of a job are billed once, when its text is first fetched: pass 0 else).
    pub fn textract_call(&self, pages: u64) {
        self.with(|l, p| {
            l.textract.calls += 1;
            l.textract.units_in += pages;
            l.textract.usd += p.textract(pages);
        });
    }

    /// Textract work not done: `calls` requests and `pages` pages served from a cache, an
    /// artefact or the text layer.
    pub fn textract_avoided(&self, calls: u64, pages: u64) {
        self.with(|l, p| {
            l.textract.calls_avoided += calls;
            l.textract.units_avoided += pages;
            l.textract.usd_avoided += p.textract(pages);
        });
    }

    /// One LLM request received by the endpoint, with the tokens its response reported
    /// (0 and 0 when it failed without a `usage`).
    pub fn llm_call(&self, input_tokens: u64, output_tokens: u64) {
        self.with(|l, p| {
            l.llm.calls += 1;
            l.llm.units_in += input_tokens;
            l.llm.units_out += output_tokens;
            l.llm.usd += p.llm(input_tokens, output_tokens);
        });
    }

    /// One LLM request not made because its answer was cached; the tokens are those the
    /// cached answer cost when it was made.
    pub fn llm_avoided(&self, input_tokens: u64, output_tokens: u64) {
        self.with(|l, p| {
            l.llm.calls_avoided += 1;
            l.llm.units_avoided += input_tokens + output_tokens;
            l.llm.usd_avoided += p.llm(input_tokens, output_tokens);
        });
    }

    /// Adds a whole ledger (e.g. a sub-step's).
    pub fn add(&self, other: &Ledger) {
        self.with(|l, _| l.add(other));
    }

    /// What was recorded so far.
    pub fn ledger(&self) -> Ledger {
        *self.ledger.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meter_prices_calls_and_avoided_work() {
        let m = Meter::new(PriceConfig::default());
        m.textract_call(0);
        m.textract_call(10);
        m.textract_avoided(2, 10);
        m.llm_call(1_000_000, 0);
        m.llm_avoided(0, 1_000_000);
        let l = m.ledger();
        assert_eq!((l.textract.calls, l.textract.units_in), (2, 10));
        assert!((l.textract.usd - 0.015).abs() < 1e-12);
        assert!((l.textract.usd_avoided - 0.015).abs() < 1e-12);
        assert_eq!((l.llm.calls, l.llm.calls_avoided), (1, 1));
        assert!((l.usd() - 0.165).abs() < 1e-12);
        assert!((l.usd_avoided() - 0.615).abs() < 1e-12);
    }

    #[test]
    fn ledgers_add_and_round_trip_through_a_step_output() {
        let m = Meter::new(PriceConfig::default());
        m.llm_call(100, 20);
        let mut total = Ledger::default();
        assert!(total.is_empty());
        let out = serde_json::json!({"work": {"computed": 1, "reused": 0}, "usage": m.ledger()});
        let reported = Ledger::reported(&out).unwrap();
        total.add(&reported);
        total.add(&reported);
        assert_eq!(total.llm.calls, 2);
        assert_eq!(total.llm.units_out, 40);
        assert!(Ledger::reported(&serde_json::json!({"work": {}})).is_none());
    }
}
