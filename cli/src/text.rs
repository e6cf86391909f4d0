//! Text as the CLI shows it: wrapped to the terminal's width, paths shown whatever bytes they
//! hold.

use std::path::Path;

/// The widest line the text report writes.
pub const WIDTH: usize = 100;

/// A space the wrapping never breaks at (between a host and its server's `[n]`).
pub const KEEP: char = '\u{1f}';

/// `text` in lines of at most `WIDTH` columns, the first starting with `first`, the others
/// with `indent`; words are never split (a word longer than a line gets a line of its own), nor
/// is a `command in backquotes`, so that it can be copied whole.
pub fn wrap(first: &str, indent: &str, text: &str) -> String {
    let mut in_code = false;
    let text: String = text
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

/// A path as messages show it: as is when it is UTF-8, quoted with escapes otherwise (a
/// replacement character would hide which bytes the name has).
pub fn shown(path: &Path) -> String {
    match path.to_str() {
        Some(text) => text.to_owned(),
        None => format!("{path:?}"),
    }
}
