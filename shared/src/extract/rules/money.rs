//! MONEY: amounts with a currency symbol, code or word, normalised to `USD 250000.00`.

use std::sync::LazyLock;

use regex::{Captures, Regex};

use super::lexicon::compile;
use super::{Candidate, char_after, char_before};
use crate::model::EntityKind;

/// `1,250,000`, `250000`, `2.5`, `1,250,000.00` (named groups `int`, `frac`).
const AMOUNT: &str = r"(?P<int>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<frac>\d+))?";
const SCALE: &str = r"(?:[ \t]+(?P<scale>thousand|million|billion|trillion)\b)?";

/// `$250,000`, `US$ 5`, `€10,000`, `£3.50`, `$2.5 million`.
static SYMBOL: LazyLock<Regex> =
    LazyLock::new(|| compile(&format!(r"(?i)(?P<cur>US\$|\$|€|£)[ \t]?{AMOUNT}{SCALE}")));

/// `USD 4,500`, `EUR 10,000.00`, `USD 2 million`.
static CODE_BEFORE: LazyLock<Regex> = LazyLock::new(|| {
    compile(&format!(
        r"\b(?P<cur>USD|EUR|GBP|CAD|AUD|CHF|JPY)[ \t]?{AMOUNT}{SCALE}"
    ))
});

/// `4,500 USD`, `250,000 dollars`, `2.5 million U.S. dollars`, `10,000 euros`.
static AFTER: LazyLock<Regex> = LazyLock::new(|| {
    compile(&format!(
        r"(?i)\b{AMOUNT}{SCALE}[ \t]+(?P<cur>USD|EUR|GBP|(?:U\.S\.[ \t]+|US[ \t]+)?dollars|euros|pounds[ \t]+sterling)\b"
    ))
});

pub(super) fn find(text: &str, out: &mut Vec<Candidate>) {
    for re in [&*SYMBOL, &*CODE_BEFORE, &*AFTER] {
        for caps in re.captures_iter(text) {
            let Some(whole) = caps.get(0) else { continue };
            // `$250,000` is money; `A$250` or `12$5` is not text we understand.
            if char_before(text, whole.start()).is_some_and(char::is_alphanumeric)
                || char_after(text, whole.end()).is_some_and(char::is_alphanumeric)
            {
                continue;
            }
            let Some(normalized) = normalize(&caps) else {
                continue;
            };
            out.push(Candidate::new(
                EntityKind::Money,
                whole.start(),
                whole.end(),
                normalized,
                0.95,
            ));
        }
    }
}

/// `CODE amount` with two decimals and no separators, or `None` if the amount overflows.
fn normalize(caps: &Captures<'_>) -> Option<String> {
    let cur = caps.name("cur")?.as_str().to_ascii_lowercase();
    let code = match cur.as_str() {
        "$" | "us$" | "usd" => "USD",
        "€" | "eur" | "euros" => "EUR",
        "£" | "gbp" => "GBP",
        c if c.ends_with("dollars") => "USD",
        c if c.starts_with("pounds") => "GBP",
        c => {
            return Some(format!(
                "{} {}",
                c.to_ascii_uppercase(),
                amount_in_cents(caps)?
            ));
        }
    };
    Some(format!("{code} {}", amount_in_cents(caps)?))
}

/// The amount as `units.cents`, exact for up to 2 decimals (rounded half up beyond).
fn amount_in_cents(caps: &Captures<'_>) -> Option<String> {
    let int: u128 = caps.name("int")?.as_str().replace(',', "").parse().ok()?;
    let frac = caps.name("frac").map_or("", |m| m.as_str());
    // Decimals beyond 18 are noise; keep the arithmetic in range.
    let frac = &frac[..frac.len().min(18)];
    let scale: u128 = match caps.name("scale").map(|m| m.as_str().to_ascii_lowercase()) {
        None => 1,
        Some(s) => match s.as_str() {
            "thousand" => 1_000,
            "million" => 1_000_000,
            "billion" => 1_000_000_000,
            _ => 1_000_000_000_000,
        },
    };
    let denom = 10u128.checked_pow(u32::try_from(frac.len()).ok()?)?;
    let frac_value: u128 = if frac.is_empty() {
        0
    } else {
        frac.parse().ok()?
    };
    // value = (int + frac/denom) * scale, in cents, rounded half up.
    let numerator = int
        .checked_mul(denom)?
        .checked_add(frac_value)?
        .checked_mul(scale)?
        .checked_mul(100)?;
    let cents = (numerator + denom / 2) / denom;
    Some(format!("{}.{:02}", cents / 100, cents % 100))
}
