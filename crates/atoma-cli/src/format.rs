//! How values look to a person, and how a person writes them.
//!
//! Amounts of TOMA are shown with thousands separators and at most nine decimals, trailing zeros
//! trimmed (`1,000.5 TOMA`). Amounts are read the same way: `1000.5` TOMA, or a whole number of
//! base units with the suffix `base` (`1500base`). Ids are `0x` + 64 hex digits on the wire and
//! shortened to `0x1234…cdef` in tables.

use atoma_contract::TOMA;

/// The decimal digits of a TOMA in base units: nine, as `TOMA` is 10^9.
const DECIMALS: usize = TOMA.ilog10() as usize;

/// `1,000.5 TOMA` for 1_000_500_000_000 base units.
pub fn toma(base_units: u128) -> String {
    format!("{} TOMA", toma_number(base_units))
}

/// `1,000.5` for 1_000_500_000_000 base units (no unit).
pub fn toma_number(base_units: u128) -> String {
    let whole = base_units / u128::from(TOMA);
    let fraction = base_units % u128::from(TOMA);
    let whole = thousands(whole);
    if fraction == 0 {
        return whole;
    }
    let digits = format!("{fraction:0DECIMALS$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// `1,234,567` for 1234567.
pub fn thousands(n: u128) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Parses an amount of TOMA: `12`, `0.5`, `1,000.25`, or base units as `1500base`.
///
/// # Errors
/// A message when the text is not an amount, has more than nine decimals or overflows a `u64`.
pub fn parse_toma(text: &str) -> Result<u64, String> {
    let cleaned: String = text.trim().chars().filter(|c| *c != ',' && *c != '_').collect();
    if let Some(base) = cleaned.strip_suffix("base") {
        return base
            .trim()
            .parse::<u64>()
            .map_err(|_| format!("{text:?} is not a whole number of base units"));
    }
    let cleaned =
        cleaned.strip_suffix("TOMA").or_else(|| cleaned.strip_suffix("toma")).unwrap_or(&cleaned).trim();
    let (whole, fraction) = cleaned.split_once('.').unwrap_or((cleaned, ""));
    let digits_only = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !digits_only(whole) || !digits_only(fraction) {
        return Err(format!("{text:?} is not an amount of TOMA (such as 12, 0.5 or 1500base)"));
    }
    if fraction.len() > DECIMALS {
        return Err(format!("{text:?} has more than {DECIMALS} decimals"));
    }
    let too_large = || format!("{text:?} is too large");
    let whole: u64 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| too_large())? };
    let fraction: u64 = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<DECIMALS$}").parse().map_err(|_| too_large())?
    };
    whole.checked_mul(TOMA).and_then(|w| w.checked_add(fraction)).ok_or_else(too_large)
}

/// `0x1234…cdef`: an id or address shortened for tables.
pub fn short_id(full: &str) -> String {
    match (full.get(..6), full.len().checked_sub(4).and_then(|start| full.get(start..))) {
        (Some(head), Some(tail)) if full.len() > 14 => format!("{head}…{tail}"),
        _ => full.to_string(),
    }
}

/// Lowercase hex of `bytes`, without a prefix.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses hex bytes, with or without `0x`.
///
/// # Errors
/// A message when the text is not an even number of hex digits.
pub fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let digits = text.trim().strip_prefix("0x").unwrap_or(text.trim());
    if !digits.len().is_multiple_of(2) || !digits.is_ascii() {
        return Err(format!("{text:?} is not hex (an even number of hex digits)"));
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| {
            digits
                .get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| format!("{text:?} is not hex"))
        })
        .collect()
}

/// Parses exactly 32 hex bytes.
///
/// # Errors
/// A message when the text is not 64 hex digits.
pub fn parse_hex32(text: &str) -> Result<[u8; 32], String> {
    let bytes = parse_hex(text)?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| format!("{text:?} is not 32 bytes (64 hex digits)"))
}

/// A plain-text table: a header row and aligned columns, two spaces apart.
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub fn new(header: &[&str]) -> Self {
        Table { rows: vec![header.iter().map(|h| (*h).to_string()).collect()] }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Whether the table has only its header.
    pub fn is_empty(&self) -> bool {
        self.rows.len() <= 1
    }

    /// The table as text, one line per row, trailing spaces trimmed.
    pub fn render(&self) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|c| self.rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0))
            .collect();
        let lines: Vec<String> = self
            .rows
            .iter()
            .map(|row| {
                let cells: Vec<String> =
                    row.iter().zip(&widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
                cells.join("  ").trim_end().to_string()
            })
            .collect();
        lines.join("\n")
    }
}

/// Aligned `key: value` lines.
pub fn fields(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0) + 1;
    pairs.iter().map(|(k, v)| format!("{:<width$} {v}", format!("{k}:"))).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toma_is_shown_with_separators_and_trimmed_decimals() {
        assert_eq!(toma(1_000_500_000_000), "1,000.5 TOMA");
        assert_eq!(toma(0), "0 TOMA");
        assert_eq!(toma(1), "0.000000001 TOMA");
        assert_eq!(toma(1_234_567 * u128::from(TOMA)), "1,234,567 TOMA");
        assert_eq!(toma_number(999_000_000), "0.999");
        assert_eq!(10u64.pow(u32::try_from(DECIMALS).expect("small")), TOMA);
    }

    #[test]
    fn toma_is_read_back() {
        assert_eq!(parse_toma("1000.5"), Ok(1_000_500_000_000));
        assert_eq!(parse_toma("1,000.5 TOMA"), Ok(1_000_500_000_000));
        assert_eq!(parse_toma(".25"), Ok(250_000_000));
        assert_eq!(parse_toma("1500base"), Ok(1500));
        assert_eq!(parse_toma("0.000000001"), Ok(1));
        assert!(parse_toma("0.0000000001").is_err());
        assert!(parse_toma("abc").is_err());
        assert!(parse_toma("-1").is_err());
        assert!(parse_toma(".").is_err());
        assert!(parse_toma("99999999999999999999").is_err());
    }

    #[test]
    fn ids_shorten_and_hex_round_trips() {
        let id = format!("0x{}", "ab".repeat(32));
        assert_eq!(short_id(&id), "0xabab…abab");
        assert_eq!(short_id("0x12"), "0x12");
        assert_eq!(parse_hex("0x0aff"), Ok(vec![10, 255]));
        assert!(parse_hex("abc").is_err());
        assert!(parse_hex("zz").is_err());
        assert_eq!(parse_hex32(&"01".repeat(32)), Ok([1; 32]));
        assert!(parse_hex32("01").is_err());
        assert_eq!(hex(&[1, 171]), "01ab");
    }

    #[test]
    fn tables_align() {
        let mut t = Table::new(&["a", "long header"]);
        t.row(vec!["wide cell".into(), "x".into()]);
        assert_eq!(t.render(), "a          long header\nwide cell  x");
        assert_eq!(fields(&[("a", "1".into()), ("bcd", "2".into())]), "a:   1\nbcd: 2");
    }
}
