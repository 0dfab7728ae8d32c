//! `Datum`: a native (host-free) value — what native operators produce and what an
//! execution's results are turned into before they become a reply.
//!
//! Also owns Python-compatible text rendering of numbers (`str()` of int/float), so native
//! operators can stringify without calling into the host. Depends on nothing.

/// A native value.
#[derive(Debug, Clone, PartialEq)]
pub enum Datum {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// UTF-8 text.
    Str(String),
    /// Bytes that are not (known to be) UTF-8.
    Bytes(Vec<u8>),
    List(Vec<Datum>),
    /// A dict with text keys, e.g. `{'key': k, 'value': v}` records.
    Map(Vec<(String, Datum)>),
}

impl Datum {
    /// Bytes from Redis: `Str` when they are UTF-8, else `Bytes` (never altered).
    pub fn text_or_bytes(b: Vec<u8>) -> Datum {
        match String::from_utf8(b) {
            Ok(s) => Datum::Str(s),
            Err(e) => Datum::Bytes(e.into_bytes()),
        }
    }

    /// `str(x)` as Python would print this value.
    pub fn py_str(&self) -> String {
        match self {
            Datum::Null => "None".to_owned(),
            Datum::Bool(true) => "True".to_owned(),
            Datum::Bool(false) => "False".to_owned(),
            Datum::Int(i) => i.to_string(),
            Datum::Float(f) => py_float_repr(*f),
            Datum::Str(s) => s.clone(),
            Datum::Bytes(b) => py_bytes_repr(b),
            Datum::List(items) => {
                let inner: Vec<String> = items.iter().map(Datum::py_repr).collect();
                format!("[{}]", inner.join(", "))
            }
            Datum::Map(items) => {
                let inner: Vec<String> = items
                    .iter()
                    .map(|(k, v)| format!("{}: {}", py_str_repr(k), v.py_repr()))
                    .collect();
                format!("{{{}}}", inner.join(", "))
            }
        }
    }

    /// `repr(x)` as Python would print this value (strings quoted).
    pub fn py_repr(&self) -> String {
        match self {
            Datum::Str(s) => py_str_repr(s),
            other => other.py_str(),
        }
    }
}

/// Python's `repr()` of a float: shortest round-trip digits, `.0` for integral values,
/// scientific notation when the exponent is < -4 or >= 16.
pub fn py_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.to_owned();
    }
    // `{:e}` gives the shortest round-trip digits, e.g. "4.95e1".
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let sign = if negative { "-" } else { "" };
    if !(-4..16).contains(&exp) {
        let (head, tail) = digits.split_at(1);
        let frac = if tail.is_empty() {
            String::new()
        } else {
            format!(".{tail}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{head}{frac}e{esign}{:02}", exp.abs());
    }
    let point = exp + 1; // digits before the decimal point
    let body = if point <= 0 {
        format!("0.{}{}", "0".repeat((-point) as usize), digits)
    } else if point as usize >= digits.len() {
        format!("{}{}.0", digits, "0".repeat(point as usize - digits.len()))
    } else {
        let (a, b) = digits.split_at(point as usize);
        format!("{a}.{b}")
    };
    format!("{sign}{body}")
}

/// Python's `repr()` of a str: single quotes unless the text holds a single quote and no
/// double quote.
pub fn py_str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Python's `repr()` of a bytes object: `b'...'`, printable ASCII as is, the rest escaped.
pub fn py_bytes_repr(b: &[u8]) -> String {
    let quote = if b.contains(&b'\'') && !b.contains(&b'"') {
        b'"'
    } else {
        b'\''
    };
    let mut out = String::with_capacity(b.len() + 3);
    out.push('b');
    out.push(quote as char);
    for &c in b {
        match c {
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c as char);
            }
            0x20..=0x7e => out.push(c as char),
            c => out.push_str(&format!("\\x{c:02x}")),
        }
    }
    out.push(quote as char);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_print_as_python_does() {
        assert_eq!(py_bytes_repr(b"a\xff\x00'\\"), r#"b"a\xff\x00'\\""#);
        assert_eq!(py_bytes_repr(b"x\n"), r"b'x\n'");
        assert_eq!(
            Datum::List(vec![
                Datum::text_or_bytes(b"\xfe".to_vec()),
                Datum::text_or_bytes(b"t".to_vec())
            ])
            .py_str(),
            r"[b'\xfe', 't']"
        );
    }

    #[test]
    fn float_repr_matches_python() {
        let cases = [
            (49.5, "49.5"),
            (42.0, "42.0"),
            (0.1, "0.1"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (123456789012345.0, "123456789012345.0"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5, "-2.5"),
            (44.6, "44.6"),
            (1.0 / 3.0, "0.3333333333333333"),
        ];
        for (f, want) in cases {
            assert_eq!(py_float_repr(f), want, "{f}");
        }
    }

    #[test]
    fn str_repr_quotes_like_python() {
        assert_eq!(py_str_repr("a"), "'a'");
        assert_eq!(py_str_repr("it's"), "\"it's\"");
        assert_eq!(py_str_repr("a\nb"), "'a\\nb'");
    }

    #[test]
    fn list_str_uses_item_reprs() {
        let d = Datum::List(vec![Datum::Str("a".into()), Datum::Int(2)]);
        assert_eq!(d.py_str(), "['a', 2]");
    }
}
