//! A small, strict JSON reader for the plugin configuration.
//!
//! serde_json with serde's derived readers made up about 60% of the module (the module without
//! them: 56 KB of 134 KB). The configuration is a handful of strings and lists read once per
//! plugin, so this reader trades generality for size: it builds a `Value` tree (RFC 8259, with
//! numbers kept as their text since no field takes one) and `config_json.rs` maps it to fields with
//! errors that name the field. Never panics; nesting is bounded.

use std::fmt;

/// Deeper nesting than any valid configuration has (4 levels) is refused, so a hostile
/// configuration cannot exhaust the stack.
const MAX_DEPTH: usize = 32;
/// More members than any configuration object has (5 fields) are refused, which also keeps the
/// duplicate-key check (a scan of the members so far) from going quadratic on a huge object.
const MAX_MEMBERS: usize = 64;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// The number's text, validated against the JSON grammar.
    Number(String),
    String(String),
    Array(Vec<Value>),
    /// Members in document order; duplicate keys are refused while reading.
    Object(Vec<(String, Value)>),
}

impl Value {
    /// How the value is named in "invalid type" errors, serde-style.
    pub fn describe(&self) -> String {
        match self {
            Value::Null => "null".into(),
            Value::Bool(b) => format!("boolean `{b}`"),
            Value::Number(n) => format!("number {n}"),
            Value::String(s) => format!("string {s:?}"),
            Value::Array(_) => "a list".into(),
            Value::Object(_) => "an object".into(),
        }
    }
}

/// A syntax error with its position (1-based line and column, counting bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub message: String,
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at line {} column {}", self.message, self.line, self.column)
    }
}

/// Reads one JSON document (surrounding white space allowed, nothing else after it).
pub fn parse(text: &[u8]) -> Result<Value, SyntaxError> {
    let mut reader = Reader { text, at: 0 };
    let value = reader.value(0)?;
    reader.skip_space();
    if reader.at < text.len() {
        return Err(reader.error("trailing characters"));
    }
    Ok(value)
}

struct Reader<'a> {
    text: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn error(&self, message: &str) -> SyntaxError {
        let before = &self.text[..self.at.min(self.text.len())];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let column = before.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
        SyntaxError { message: message.into(), line, column }
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    fn skip_space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn expect_word(&mut self, word: &[u8], value: Value) -> Result<Value, SyntaxError> {
        if self.text[self.at..].starts_with(word) {
            self.at += word.len();
            Ok(value)
        } else {
            Err(self.error("expected a value"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, SyntaxError> {
        if depth > MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        self.skip_space();
        match self.peek() {
            None => Err(self.error("EOF while parsing a value")),
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => self.string().map(Value::String),
            Some(b't') => self.expect_word(b"true", Value::Bool(true)),
            Some(b'f') => self.expect_word(b"false", Value::Bool(false)),
            Some(b'n') => self.expect_word(b"null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.error("expected a value")),
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value, SyntaxError> {
        self.at += 1; // '{'
        let mut members: Vec<(String, Value)> = Vec::new();
        self.skip_space();
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(Value::Object(members));
        }
        loop {
            self.skip_space();
            if self.peek() != Some(b'"') {
                return Err(self.error(if self.peek().is_none() {
                    "EOF while parsing an object"
                } else {
                    "expected a key in quotes"
                }));
            }
            let key_at = self.at;
            let key = self.string()?;
            if members.iter().any(|(k, _)| *k == key) {
                self.at = key_at;
                return Err(self.error(&format!("duplicate field `{key}`")));
            }
            if members.len() == MAX_MEMBERS {
                self.at = key_at;
                return Err(self.error("too many members in one object"));
            }
            self.skip_space();
            if self.peek() != Some(b':') {
                return Err(self.error(if self.peek().is_none() {
                    "EOF while parsing an object"
                } else {
                    "expected ':'"
                }));
            }
            self.at += 1;
            let value = self.value(depth + 1)?;
            members.push((key, value));
            self.skip_space();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    return Ok(Value::Object(members));
                }
                None => return Err(self.error("EOF while parsing an object")),
                Some(_) => return Err(self.error("expected ',' or '}'")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value, SyntaxError> {
        self.at += 1; // '['
        let mut items = Vec::new();
        self.skip_space();
        if self.peek() == Some(b']') {
            self.at += 1;
            return Ok(Value::Array(items));
        }
        loop {
            items.push(self.value(depth + 1)?);
            self.skip_space();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b']') => {
                    self.at += 1;
                    return Ok(Value::Array(items));
                }
                None => return Err(self.error("EOF while parsing a list")),
                Some(_) => return Err(self.error("expected ',' or ']'")),
            }
        }
    }

    fn number(&mut self) -> Result<Value, SyntaxError> {
        let start = self.at;
        let digits = |r: &mut Self| {
            let from = r.at;
            while matches!(r.peek(), Some(b'0'..=b'9')) {
                r.at += 1;
            }
            r.at > from
        };
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        if self.peek() == Some(b'0') {
            self.at += 1;
        } else if !digits(self) {
            return Err(self.error("invalid number"));
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            if !digits(self) {
                return Err(self.error("invalid number"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if !digits(self) {
                return Err(self.error("invalid number"));
            }
        }
        // Only ASCII digits and signs were consumed.
        Ok(Value::Number(String::from_utf8_lossy(&self.text[start..self.at]).into_owned()))
    }

    fn string(&mut self) -> Result<String, SyntaxError> {
        let start = self.at;
        self.at += 1; // '"'
        let mut out: Vec<u8> = Vec::new();
        loop {
            let Some(b) = self.peek() else {
                return Err(self.error("EOF while parsing a string"));
            };
            self.at += 1;
            match b {
                b'"' => break,
                b'\\' => self.escape(&mut out)?,
                0x00..=0x1f => {
                    self.at -= 1;
                    return Err(self.error("control character in a string"));
                }
                _ => out.push(b),
            }
        }
        String::from_utf8(out).map_err(|_| {
            self.at = start;
            self.error("invalid UTF-8 in the string starting here")
        })
    }

    fn escape(&mut self, out: &mut Vec<u8>) -> Result<(), SyntaxError> {
        let Some(b) = self.peek() else {
            return Err(self.error("EOF while parsing a string"));
        };
        let escape_at = self.at - 1; // the backslash
        self.at += 1;
        let simple = match b {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let c = self.unicode_escape()?;
                let mut buf = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                return Ok(());
            }
            _ => {
                self.at = escape_at;
                return Err(self.error("invalid escape"));
            }
        };
        out.push(simple);
        Ok(())
    }

    /// After `\u`: four hex digits, or a surrogate pair `\uD8xx\uDCxx`.
    fn unicode_escape(&mut self) -> Result<char, SyntaxError> {
        let escape_at = self.at - 2; // the backslash of `\u`
        let first = self.hex4()?;
        let code = if (0xD800..0xDC00).contains(&first) {
            if !self.text[self.at..].starts_with(b"\\u") {
                self.at = escape_at;
                return Err(self.error("unpaired surrogate in \\u escape"));
            }
            self.at += 2;
            let second = self.hex4()?;
            if !(0xDC00..0xE000).contains(&second) {
                self.at = escape_at;
                return Err(self.error("unpaired surrogate in \\u escape"));
            }
            0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
        } else {
            first
        };
        char::from_u32(code).ok_or_else(|| {
            self.at = escape_at;
            self.error("invalid \\u escape (a lone surrogate)")
        })
    }

    fn hex4(&mut self) -> Result<u32, SyntaxError> {
        let mut code = 0;
        for _ in 0..4 {
            let digit =
                self.peek().and_then(|b| (b as char).to_digit(16)).ok_or_else(|| self.error("invalid \\u escape"))?;
            code = code * 16 + digit;
            self.at += 1;
        }
        Ok(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Value {
        parse(text.as_bytes()).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn err(text: &[u8]) -> SyntaxError {
        parse(text).expect_err(&String::from_utf8_lossy(text))
    }

    #[test]
    fn reads_the_json_grammar() {
        assert_eq!(ok(" {} "), Value::Object(vec![]));
        assert_eq!(ok("[]"), Value::Array(vec![]));
        assert_eq!(
            ok(r#"{"a": [true, false, null, -1.5e3, 0, "x"]}"#),
            Value::Object(vec![(
                "a".into(),
                Value::Array(vec![
                    Value::Bool(true),
                    Value::Bool(false),
                    Value::Null,
                    Value::Number("-1.5e3".into()),
                    Value::Number("0".into()),
                    Value::String("x".into())
                ])
            )])
        );
        assert_eq!(ok(r#""\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00""#), Value::String("\"\\/\u{8}\u{c}\n\r\té😀".into()));
    }

    #[test]
    fn refuses_what_is_not_json() {
        for (text, message) in [
            (&b""[..], "EOF while parsing a value"),
            (b"{\"mode\":\"dry_run\"", "EOF while parsing an object"),
            (b"{\"a\" 1}", "expected ':'"),
            (b"{a: 1}", "expected a key in quotes"),
            (b"[1 2]", "expected ',' or ']'"),
            (b"[1,]", "expected a value"),
            (b"01", "trailing characters"),
            (b"1.", "invalid number"),
            (b"-", "invalid number"),
            (b"tru", "expected a value"),
            (b"\"a\nb\"", "control character"),
            (b"\"\\x\"", "invalid escape"),
            (b"\"\\ud800\"", "unpaired surrogate"),
            (b"\"\\u12\"", "invalid \\u escape"),
            (b"\"\xff\"", "invalid UTF-8"),
            (b"{\"a\":1,\"a\":2}", "duplicate field `a`"),
            (b"{} x", "trailing characters"),
        ] {
            let e = err(text);
            assert!(e.message.contains(message), "{:?}: {e}", String::from_utf8_lossy(text));
        }
        let deep = "[".repeat(100) + &"]".repeat(100);
        assert_eq!(err(deep.as_bytes()).message, "nested too deeply");
        let wide = format!("{{{}}}", (0..65).map(|i| format!("\"k{i}\":0")).collect::<Vec<_>>().join(","));
        assert_eq!(err(wide.as_bytes()).message, "too many members in one object");
        assert!(parse(
            format!("{{{}}}", (0..64).map(|i| format!("\"k{i}\":0")).collect::<Vec<_>>().join(",")).as_bytes()
        )
        .is_ok());
    }

    #[test]
    fn positions_count_lines_and_columns() {
        let e = err(b"{\n  \"a\": tru\n}");
        assert_eq!((e.line, e.column), (2, 8));
        // Errors inside a string point at the escape or at the string's start.
        assert_eq!(err(b"[\"ab\\x\"]").column, 5);
        assert_eq!(err(b"[\"\\udc00\"]").column, 3);
        assert_eq!(err(b"[\"a\xff\"]").column, 2);
    }
}
