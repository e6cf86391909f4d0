//! Text as the CLI shows it: wrapped to the terminal's width, paths shown whatever bytes they
//! hold, and every string from the input escaped wherever it is printed (a terminal, a comment,
//! JSON, YAML): what a tenant writes in a name can clear no screen, end no comment line and fake
//! no line of the report.

use std::borrow::Cow;
use std::fmt;
use std::path::Path;

use serde::Serialize;

/// The widest line the text report writes.
pub const WIDTH: usize = 100;

/// A space the wrapping never breaks at (between a host and its server's `[n]`).
pub const KEEP: char = '\u{1f}';

/// `text` in lines of at most `WIDTH` columns, the first starting with `first`, the others
/// with `indent`; words are never split (a word longer than a line gets a line of its own), nor
/// is a `command in backquotes`, so that it can be copied whole.
pub fn wrap(first: &str, indent: &str, text: &str) -> String {
    let mut in_code = false;
    // Whatever a caller left unescaped is escaped here (its own KEEP aside): no line break or
    // control character from a value reaches the output, so a comment line ends where wrapping
    // ends it.
    let text: String = escape_but_keep(text)
        .chars()
        .map(|c| {
            in_code ^= c == '`';
            if c == ' ' && in_code {
                KEEP
            } else {
                c
            }
        })
        .collect();
    let mut out = String::new();
    let mut line = first.to_owned();
    let mut empty = true;
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let width = line.chars().count() + usize::from(!empty) + word.chars().count();
        if !empty && width > WIDTH {
            out.push_str(line.trim_end());
            out.push('\n');
            line = indent.to_owned();
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    out.push_str(line.trim_end());
    out.push('\n');
    out.replace(KEEP, " ")
}

/// A path as messages show it: escaped (`escape`) when it is UTF-8, quoted with escapes
/// otherwise (a replacement character would hide which bytes the name has).
pub fn shown(path: &Path) -> String {
    match path.to_str() {
        Some(text) => escape(text).into_owned(),
        None => format!("{path:?}"),
    }
}

/// Characters that must not reach a terminal or a file as they are: control characters (C0,
/// DEL, C1: ESC starts terminal sequences, CR rewrites a line, BEL rings), the Unicode line and
/// paragraph separators, and the invisible formatting characters (bidirectional overrides such
/// as U+202E reorder what is shown, zero-width ones hide text), and U+FFFE and U+FFFF, which
/// a YAML reader refuses.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{ad}'
                | '\u{61c}'
                | '\u{180e}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{206f}'
                | '\u{feff}'
                | '\u{fff9}'..='\u{fffb}'
                | '\u{fffe}'
                | '\u{ffff}'
        )
}

/// `text` with each unsafe character (`is_unsafe`) written as an escape: `\n`, `\r`, `\t`, or
/// `\u{1b}`. Nothing else changes (a backslash stays one), so escaping twice changes nothing.
pub fn escape(text: &str) -> Cow<'_, str> {
    escape_where(text, is_unsafe)
}

/// `escape`, but the wrapping's own `KEEP` stays.
fn escape_but_keep(text: &str) -> Cow<'_, str> {
    escape_where(text, |c| c != KEEP && is_unsafe(c))
}

fn escape_where(text: &str, unsafe_char: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !text.chars().any(&unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' if unsafe_char(c) => out.push_str("\\n"),
            '\r' if unsafe_char(c) => out.push_str("\\r"),
            '\t' if unsafe_char(c) => out.push_str("\\t"),
            c if unsafe_char(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A string from the input, escaped when formatted (`format!("Secret {}", Shown(name))`).
#[derive(Debug, Clone, Copy)]
pub struct Shown<'a>(pub &'a str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&escape(self.0))
    }
}

/// A certificate's names are listed up to this many in text (the report, `merge`'s comments),
/// then counted: a certificate naming 2,000 hosts, presented by 2,000 servers, would otherwise be
/// 4,000,000 names of text. `--output json` lists them all, once per certificate.
pub const NAMES_SHOWN: usize = 10;

/// The first `most` of `items`, escaped and joined with ", ", then how many more there are
/// (`a, b and 3 more names`, `what` being `names`): only what is shown is escaped.
pub fn first_of(items: &[String], most: usize, what: &str) -> String {
    let shown: Vec<String> = items.iter().take(most).map(|i| Shown(i).to_string()).collect();
    match items.len().saturating_sub(most) {
        0 => shown.join(", "),
        more => format!("{} and {more} more {what}", shown.join(", ")),
    }
}

/// JSON as the CLI prints it (indented), with every unsafe character in a string written as a
/// `\uXXXX` escape: serde_json escapes control characters but writes U+202E and its like as
/// they are. A JSON reader gets the same strings back.
pub fn json_pretty<T: Serialize + ?Sized>(value: &T) -> Result<String, serde_json::Error> {
    let mut out = Vec::new();
    let mut serializer =
        serde_json::Serializer::with_formatter(&mut out, Escaping(serde_json::ser::PrettyFormatter::new()));
    value.serialize(&mut serializer)?;
    // The formatter writes only what serde_json hands it and ASCII escapes: UTF-8 throughout.
    Ok(String::from_utf8(out).unwrap_or_default())
}

/// One string as a JSON string literal, escaped as `json_pretty` escapes strings: also a YAML
/// double-quoted scalar of the same value.
pub fn json_string(text: &str) -> String {
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, Escaping(serde_json::ser::CompactFormatter));
    match text.serialize(&mut serializer) {
        Ok(()) => String::from_utf8(out).unwrap_or_default(),
        // Serialising a string into memory cannot fail.
        Err(_) => String::from("\"\""),
    }
}

/// A serde_json formatter that also escapes unsafe characters (`is_unsafe`) in strings.
struct Escaping<F>(F);

impl<F: serde_json::ser::Formatter> serde_json::ser::Formatter for Escaping<F> {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut rest = fragment;
        while let Some(at) = rest.find(is_unsafe) {
            writer.write_all(&rest.as_bytes()[..at])?;
            let c = rest[at..].chars().next().unwrap_or(' ');
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                write!(writer, "\\u{:04x}", unit)?;
            }
            rest = &rest[at + c.len_utf8()..];
        }
        writer.write_all(rest.as_bytes())
    }

    // The rest as the wrapped formatter writes it.
    fn begin_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W, first: bool) -> std::io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + std::io::Write>(&mut self, w: &mut W, first: bool) -> std::io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn end_object_key<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_object_key(w)
    }
    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_object_value(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_characters_are_escaped_and_nothing_else() {
        assert_eq!(escape("shop.example.com"), "shop.example.com");
        assert!(matches!(escape("plain"), Cow::Borrowed(_)));
        assert_eq!(escape("a\nb\rc\td"), "a\\nb\\rc\\td");
        assert_eq!(escape("\u{1b}[2J\u{7}\u{7f}\u{9b}"), "\\u{1b}[2J\\u{7}\\u{7f}\\u{9b}");
        assert_eq!(escape("moc.elpmaxe\u{202e}"), "moc.elpmaxe\\u{202e}");
        assert_eq!(escape("a\u{2028}b\u{feff}"), "a\\u{2028}b\\u{feff}");
        // Letters of every script, and a backslash, stay.
        assert_eq!(escape("bücher.例え.test \\ é"), "bücher.例え.test \\ é");
        // Twice is once.
        assert_eq!(escape(&escape("x\u{1b}y")), escape("x\u{1b}y"));
        assert_eq!(format!("Secret {}", Shown("a\nb")), "Secret a\\nb");
    }

    #[test]
    fn the_first_few_are_escaped_and_the_rest_counted() {
        let names: Vec<String> = ["a.test", "b\u{1b}.test", "c.test"].iter().map(|s| s.to_string()).collect();
        assert_eq!(first_of(&names, 2, "names"), "a.test, b\\u{1b}.test and 1 more names");
        assert_eq!(first_of(&names, 3, "names"), "a.test, b\\u{1b}.test, c.test");
        assert_eq!(first_of(&names[..0], 3, "names"), "");
    }

    #[test]
    fn a_wrapped_line_never_breaks_inside_a_value() {
        let text = wrap("# ", "# ", "credentialName shared\n---\nkind: ClusterRoleBinding\n#");
        assert_eq!(text, "# credentialName shared\\n---\\nkind: ClusterRoleBinding\\n#\n");
        assert!(text.lines().all(|line| line.starts_with("# ")));
    }

    #[test]
    fn json_escapes_what_serde_json_leaves() {
        let value = serde_json::json!({"name": "a\u{202e}b\u{1b}c\u{85}\u{2028}😀", "n": [1, null]});
        let text = json_pretty(&value).unwrap();
        assert!(text.contains(r#""a\u202eb\u001bc\u0085\u2028😀""#), "{text}");
        assert!(!text.chars().any(|c| is_unsafe(c) && c != '\n'), "{text}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&text).unwrap(), value);
        assert_eq!(json_string("x\u{202e}\""), r#""x\u202e\"""#);
    }
}
