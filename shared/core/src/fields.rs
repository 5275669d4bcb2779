//! Lenient readers for fields of Zoho JSON records, and the typed error that names the bad field.
//!
//! Zoho's real responses differ from its documented examples (see `../shared/ZOHO.md`): ids are strings
//! (numbers are accepted too), numbers arrive as `5.000000` or `"5.000000"`, `""` means "absent" for numeric
//! fields, timestamps carry offsets without a colon (`2024-02-01T10:54:54+0200`), some "timestamps" are bare
//! dates, and service items omit stock fields entirely. Every reader here accepts all of those and returns a
//! [`ParseError`] naming the field for anything else; none of them panics.

use std::str::FromStr;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};
use rust_decimal::Decimal;
use serde_json::{Map, Value};

use crate::EntityKind;

/// A Zoho record that could not be parsed: which kind, which record (when its id was readable),
/// which field (a path such as `locations[1].location_stock_on_hand`) and what was wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} record{}: field `{field}` {problem}", .id.as_ref().map(|id| format!(" {id}")).unwrap_or_default())]
pub struct ParseError {
    /// The kind of record being parsed.
    pub kind: EntityKind,
    /// The record's Zoho id, if it could be read.
    pub id: Option<String>,
    /// Path of the offending field within the record.
    pub field: String,
    /// What was wrong, including the offending value (records hold no secrets).
    pub problem: String,
}

impl ParseError {
    /// Attaches the id of the record the error was found in (kept if one is already set).
    pub fn in_record(mut self, id: &str) -> Self {
        if self.id.is_none() {
            self.id = Some(id.to_string());
        }
        self
    }
}

/// Runs `parse` and tags any error with the id of the record it came from.
pub fn within_record<T>(
    id: &str,
    parse: impl FnOnce() -> Result<T, ParseError>,
) -> Result<T, ParseError> {
    parse().map_err(|e| e.in_record(id))
}

/// Read-only view of one JSON object of a Zoho record, producing errors that carry the field's path.
#[derive(Clone, Copy)]
pub struct Fields<'a> {
    kind: EntityKind,
    map: &'a Map<String, Value>,
    prefix: Option<&'a str>,
}

impl<'a> Fields<'a> {
    /// Views `value` as a record of `kind`; anything but a JSON object is an error.
    pub fn new(kind: EntityKind, value: &'a Value) -> Result<Self, ParseError> {
        match value {
            Value::Object(map) => Ok(Fields {
                kind,
                map,
                prefix: None,
            }),
            other => Err(ParseError {
                kind,
                id: None,
                field: "(record)".into(),
                problem: format!("must be a JSON object, got {}", type_name(other)),
            }),
        }
    }

    /// Views a nested object (an element of an array, say) whose errors are reported under `prefix`.
    pub fn nested(kind: EntityKind, value: &'a Value, prefix: &'a str) -> Result<Self, ParseError> {
        match value {
            Value::Object(map) => Ok(Fields {
                kind,
                map,
                prefix: Some(prefix),
            }),
            other => Err(ParseError {
                kind,
                id: None,
                field: prefix.to_string(),
                problem: format!("must be a JSON object, got {}", type_name(other)),
            }),
        }
    }

    /// The raw value of `name`, if present and not `null`.
    pub fn raw(&self, name: &str) -> Option<&'a Value> {
        self.map.get(name).filter(|v| !v.is_null())
    }

    /// Number of top-level keys with a non-null value.
    pub fn present_count(&self) -> usize {
        self.map.values().filter(|v| !v.is_null()).count()
    }

    /// Builds an error for field `name`.
    pub fn error(&self, name: &str, problem: impl Into<String>) -> ParseError {
        let field = match self.prefix {
            Some(p) => format!("{p}.{name}"),
            None => name.to_string(),
        };
        ParseError {
            kind: self.kind,
            id: None,
            field,
            problem: problem.into(),
        }
    }

    /// A required id: a non-empty string, or an integer number (Zoho's documented examples).
    pub fn id(&self, name: &str) -> Result<String, ParseError> {
        self.opt_id(name)?
            .ok_or_else(|| self.error(name, "is required but missing or empty"))
    }

    /// An optional id: missing, `null` and `""` are `None`.
    pub fn opt_id(&self, name: &str) -> Result<Option<String>, ParseError> {
        match self.raw(name) {
            None => Ok(None),
            Some(Value::String(s)) => {
                let s = s.trim();
                Ok((!s.is_empty()).then(|| s.to_string()))
            }
            Some(Value::Number(n)) if n.is_u64() || n.is_i64() => Ok(Some(n.to_string())),
            Some(other) => Err(self.error(
                name,
                format!("must be an id (string or integer), got {}", describe(other)),
            )),
        }
    }

    /// A required non-empty string.
    pub fn string(&self, name: &str) -> Result<String, ParseError> {
        self.opt_string(name)?
            .ok_or_else(|| self.error(name, "is required but missing or empty"))
    }

    /// An optional string: missing, `null` and `""` are `None`; numbers and booleans are taken as text.
    pub fn opt_string(&self, name: &str) -> Result<Option<String>, ParseError> {
        match self.raw(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok((!s.is_empty()).then(|| s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(Value::Bool(b)) => Ok(Some(b.to_string())),
            Some(other) => Err(self.error(name, format!("must be text, got {}", describe(other)))),
        }
    }

    /// An optional exact decimal from a JSON number or numeric string; missing, `null` and `""` are `None`.
    pub fn opt_decimal(&self, name: &str) -> Result<Option<Decimal>, ParseError> {
        match self.raw(name) {
            None => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => parse_decimal(s.trim())
                .map(Some)
                .ok_or_else(|| self.error(name, format!("must be a number, got {s:?}"))),
            Some(Value::Number(n)) => parse_decimal(&n.to_string())
                .map(Some)
                .ok_or_else(|| self.error(name, format!("number {n} is out of range"))),
            Some(other) => {
                Err(self.error(name, format!("must be a number, got {}", describe(other))))
            }
        }
    }

    /// An optional integer; missing, `null` and `""` are `None`; `"3"` and `3.0` are accepted.
    pub fn opt_i64(&self, name: &str) -> Result<Option<i64>, ParseError> {
        match self.opt_decimal(name)? {
            None => Ok(None),
            Some(d) if d.fract().is_zero() => i64::try_from(d)
                .map(Some)
                .map_err(|_| self.error(name, format!("integer {d} is out of range"))),
            Some(d) => Err(self.error(name, format!("must be a whole number, got {d}"))),
        }
    }

    /// An optional boolean: `true`/`false`, or the strings `"true"`/`"false"` (any case); `""` is `None`.
    pub fn opt_bool(&self, name: &str) -> Result<Option<bool>, ParseError> {
        match self.raw(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
                "" => Ok(None),
                "true" => Ok(Some(true)),
                "false" => Ok(Some(false)),
                _ => Err(self.error(name, format!("must be true or false, got {s:?}"))),
            },
            Some(other) => Err(self.error(
                name,
                format!("must be true or false, got {}", describe(other)),
            )),
        }
    }

    /// An optional timestamp in any of the shapes Zoho sends (see [`parse_zoho_timestamp`]).
    pub fn opt_timestamp(&self, name: &str) -> Result<Option<DateTime<Utc>>, ParseError> {
        match self.raw(name) {
            None => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => parse_zoho_timestamp(s).map(Some).ok_or_else(|| {
                self.error(
                    name,
                    format!("must be a timestamp like 2024-02-01T10:54:54+0200, got {s:?}"),
                )
            }),
            Some(other) => Err(self.error(
                name,
                format!("must be a timestamp string, got {}", describe(other)),
            )),
        }
    }

    /// An optional calendar date (`yyyy-mm-dd`; a full timestamp is accepted and its date taken).
    pub fn opt_date(&self, name: &str) -> Result<Option<NaiveDate>, ParseError> {
        match self.raw(name) {
            None => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => parse_zoho_date(s).map(Some).ok_or_else(|| {
                self.error(name, format!("must be a date like 2024-02-01, got {s:?}"))
            }),
            Some(other) => Err(self.error(
                name,
                format!("must be a date string, got {}", describe(other)),
            )),
        }
    }

    /// An optional array; missing and `null` are `None`, anything but an array is an error.
    pub fn opt_array(&self, name: &str) -> Result<Option<&'a Vec<Value>>, ParseError> {
        match self.raw(name) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(other) => {
                Err(self.error(name, format!("must be an array, got {}", describe(other))))
            }
        }
    }

    /// An optional nested object, viewed with its errors reported under `name`.
    pub fn opt_object(&self, name: &'a str) -> Result<Option<Fields<'a>>, ParseError> {
        match self.raw(name) {
            None => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(v @ Value::Object(_)) => Fields::nested(self.kind, v, name).map(Some),
            Some(other) => {
                Err(self.error(name, format!("must be an object, got {}", describe(other))))
            }
        }
    }
}

/// Parses a decimal from text, accepting scientific notation (`1e-7`) as serde_json prints small floats.
/// The result is normalised (`5.000000` → `5`), so equal quantities are stored and compared alike.
pub fn parse_decimal(s: &str) -> Option<Decimal> {
    Decimal::from_str(s)
        .ok()
        .or_else(|| Decimal::from_scientific(s).ok())
        .map(|d| d.normalize())
}

/// Whether `s` looks like a Zoho record or organisation id: 1 to 32 ASCII digits. Anything else
/// (a path, a query string, a 60 KB blob) never reaches a Zoho URL or a table.
pub fn is_zoho_id(s: &str) -> bool {
    (1..=32).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

/// Parses a Zoho timestamp: `2024-02-01T10:54:54+0200` (Zoho's usual form, no colon in the offset),
/// RFC 3339 (`+02:00` or `Z`, optional fraction), `2024-02-01 10:54:54` (taken as UTC), or a bare date
/// `2024-02-01` (midnight UTC). Returns `None` for anything else.
pub fn parse_zoho_timestamp(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    // Zoho's own shape, read without chrono's format parser (the write path reads two per record).
    if let Some(t) = zoho_shape(s) {
        return Some(t);
    }
    if let Ok(t) = DateTime::<FixedOffset>::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z") {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(Utc.from_utc_datetime(&t));
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| Utc.from_utc_datetime(&t))
}

/// `yyyy-mm-ddThh:mm:ss+hhmm` exactly (how Zoho writes its times); `None` for anything else, which
/// the general parsers then read.
fn zoho_shape(s: &str) -> Option<DateTime<Utc>> {
    let b = s.as_bytes();
    if b.len() != 24
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let sign = match b[19] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let date = ymd(&b[..10])?;
    let time = date.and_hms_opt(
        digits(&b[11..13])?,
        digits(&b[14..16])?,
        digits(&b[17..19])?,
    )?;
    let offset = FixedOffset::east_opt(
        sign * (digits(&b[20..22])? * 3600 + digits(&b[22..24])? * 60) as i32,
    )?;
    offset
        .from_local_datetime(&time)
        .single()
        .map(|t| t.with_timezone(&Utc))
}

/// `yyyy-mm-dd` exactly.
fn ymd(b: &[u8]) -> Option<NaiveDate> {
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    NaiveDate::from_ymd_opt(
        digits(&b[..4])? as i32,
        digits(&b[5..7])?,
        digits(&b[8..10])?,
    )
}

/// ASCII digits as a number; `None` if any byte is not a digit.
fn digits(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |n, &c| {
        c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
    })
}

/// Parses a Zoho date (`yyyy-mm-dd`), or takes the date part of a Zoho timestamp.
pub fn parse_zoho_date(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    if let Some(d) = ymd(s.as_bytes()) {
        return Some(d);
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().or_else(|| {
        DateTime::<FixedOffset>::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z")
            .ok()
            .map(|t| t.date_naive())
    })
}

/// Formats a timestamp the way Zoho writes them (`2024-02-01T10:54:54+0000`), e.g. for query parameters.
pub fn format_zoho_timestamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%z").to_string()
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::Array(_) | Value::Object(_) => type_name(v).to_string(),
        other => format!("{} {}", type_name(other), truncate(&other.to_string(), 60)),
    }
}

/// `s` cut to at most `max` characters (with `…` when cut), for logs and error messages.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let cut: String = s.chars().take(max).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn timestamps_in_every_zoho_shape() {
        let expect = Utc.with_ymd_and_hms(2024, 2, 1, 8, 54, 54).unwrap();
        assert_eq!(
            parse_zoho_timestamp("2024-02-01T10:54:54+0200"),
            Some(expect)
        );
        assert_eq!(
            parse_zoho_timestamp("2024-02-01T10:54:54+02:00"),
            Some(expect)
        );
        assert_eq!(parse_zoho_timestamp("2024-02-01T08:54:54Z"), Some(expect));
        assert_eq!(
            parse_zoho_timestamp("2024-02-01T14:24:54+0530"),
            Some(expect)
        );
        assert_eq!(parse_zoho_timestamp("2024-02-01 08:54:54"), Some(expect));
        assert_eq!(
            parse_zoho_timestamp("2024-02-01"),
            Some(Utc.with_ymd_and_hms(2024, 2, 1, 0, 0, 0).unwrap())
        );
        assert_eq!(parse_zoho_timestamp("yesterday"), None);
        assert_eq!(parse_zoho_timestamp("2024-13-01"), None);
        // Zoho's shape is read by hand: it must agree with chrono's parser, and refuse what it refuses.
        assert_eq!(
            parse_zoho_timestamp("2024-02-01T03:24:54-0530"),
            Some(expect)
        );
        assert_eq!(parse_zoho_timestamp("2024-02-30T10:54:54+0200"), None);
        assert_eq!(parse_zoho_timestamp("2024-02-01T24:54:54+0200"), None);
        assert_eq!(parse_zoho_timestamp("2024-02-01T10:54:54+2500"), None);
        assert_eq!(parse_zoho_timestamp("2024-0a-01T10:54:54+0200"), None);
        assert_eq!(parse_zoho_timestamp("2024-02-01T10:54:54*0200"), None);
        assert_eq!(
            parse_zoho_date("2024-02-01"),
            NaiveDate::from_ymd_opt(2024, 2, 1)
        );
        assert_eq!(
            parse_zoho_date("2024-02-01T10:54:54+0200"),
            NaiveDate::from_ymd_opt(2024, 2, 1)
        );
        assert_eq!(parse_zoho_date("2024-02-31"), None);
        assert_eq!(format_zoho_timestamp(expect), "2024-02-01T08:54:54+0000");
    }

    #[test]
    fn decimals_from_numbers_strings_and_blanks() {
        let v =
            json!({"a": "5.000000", "b": 5.0, "c": "", "d": 12, "e": "abc", "f": [1], "g": 1e-7});
        let f = Fields::new(EntityKind::Item, &v).unwrap();
        assert_eq!(f.opt_decimal("a").unwrap(), Some(Decimal::new(5, 0)));
        assert_eq!(f.opt_decimal("b").unwrap(), Some(Decimal::new(5, 0)));
        assert_eq!(f.opt_decimal("c").unwrap(), None);
        assert_eq!(f.opt_decimal("missing").unwrap(), None);
        assert_eq!(f.opt_decimal("d").unwrap(), Some(Decimal::new(12, 0)));
        assert_eq!(f.opt_decimal("g").unwrap(), Some(Decimal::new(1, 7)));
        let err = f.opt_decimal("e").unwrap_err();
        assert_eq!(err.field, "e");
        assert!(err.problem.contains("\"abc\""), "{}", err.problem);
        assert!(f.opt_decimal("f").unwrap_err().problem.contains("an array"));
    }

    #[test]
    fn ids_accept_strings_and_integers_only() {
        let v = json!({"s": "4815000000044208", "n": 4815000000044208u64, "e": "", "f": 1.5, "b": true});
        let f = Fields::new(EntityKind::Item, &v).unwrap();
        assert_eq!(f.id("s").unwrap(), "4815000000044208");
        assert_eq!(f.id("n").unwrap(), "4815000000044208");
        assert_eq!(f.opt_id("e").unwrap(), None);
        assert!(f.id("e").unwrap_err().problem.contains("required"));
        assert!(f.id("f").is_err());
        assert!(f.id("b").is_err());
    }

    #[test]
    fn nested_errors_carry_the_path() {
        let v = json!({"qty": "lots"});
        let f = Fields::nested(EntityKind::Item, &v, "locations[1]").unwrap();
        let err = f.opt_decimal("qty").unwrap_err();
        assert_eq!(err.field, "locations[1].qty");
        assert!(err.to_string().contains("`locations[1].qty`"), "{err}");
    }

    #[test]
    fn non_objects_are_rejected() {
        let err = Fields::new(EntityKind::Bill, &json!([1, 2])).err().unwrap();
        assert!(err.problem.contains("JSON object"));
    }
}
