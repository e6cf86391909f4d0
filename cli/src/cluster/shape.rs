//! The shape of a YAML (or JSON) text, read from the text before any parser runs: how deeply it
//! nests, and about how many values it holds.
//!
//! The YAML reader takes time quadratic in the depth of nested flow collections (`a: [[[...]]]`:
//! 100,000 levels, 0.2 MB, took 30 s before its recursion limit refused them), and memory of
//! about 160 bytes per value before the first is handed over (`a: [1,1,...]`, 60 MB: 5 GB and
//! 20 s), so both are checked first, in one linear pass. The depth is conservative: never below
//! the depth the parser builds, so that nothing deeper than the limit reaches the parser; where
//! the text is ambiguous to this scan, it counts more, never less. The values are counted by
//! their indicators (`- `, `key:`, `,`, brackets): an estimate, within a small factor.
//!
//! - Lines end where the YAML reader ends them: at `\n`, `\r`, U+0085, U+2028 and U+2029; a
//!   byte order mark starting a line is a column of indentation, as the reader skips it.
//! - Flow collections (`[`, `{`, all of JSON) are counted by their brackets outside quoted
//!   scalars and comments, from the first one at a node's place, and a `key: value` or `? `
//!   entry one more (in a flow sequence it is a mapping of its own; in a flow mapping it is not).
//! - Block collections are counted from the indentation: a line's `- `, `? `, `: ` and `key:`
//!   each open a collection at their column, one level below the nearest open one indented less
//!   (or, for a `- ` item, as much, under a `key:` awaiting its value). A `key:` inside a
//!   multi-line plain scalar counts as one more level.
//! - Quoted scalars (across lines), comments, block scalars (`|`, `>`: the lines indented as
//!   their first line or more) and directives are skipped: brackets in them count for nothing.

/// What the scan found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// The deepest nesting of collections, each document counted from zero.
    pub depth: usize,
    /// About how many values (keys, items, collections) the text holds, all documents together.
    pub values: usize,
}

/// The shape of `text`.
pub fn measure(text: &str) -> Shape {
    measure_within(text, Shape { depth: usize::MAX, values: usize::MAX })
}

/// The shape of `text`, or, as soon as a line takes it past `limit`, the shape so far: a text
/// over a limit is refused without reading the rest.
pub fn measure_within(text: &str, limit: Shape) -> Shape {
    let mut scan = Scan::default();
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut rest = text;
    while !rest.is_empty() {
        let end = rest.find(['\n', '\r', '\u{85}', '\u{2028}', '\u{2029}']).unwrap_or(rest.len());
        let line = &rest[..end];
        // The reader skips a byte order mark at the start of a line, as one column.
        match line.strip_prefix('\u{feff}') {
            Some(after) => scan.line(&format!(" {after}")),
            None => scan.line(line),
        }
        let mut next = rest[end..].chars();
        let first = next.next();
        if first == Some('\r') && next.as_str().starts_with('\n') {
            next.next();
        }
        rest = next.as_str();
        if scan.max > limit.depth || scan.values > limit.values {
            break;
        }
    }
    Shape { depth: scan.max, values: scan.values }
}

/// An open block collection: the column its entries start at, its depth, whether it is a
/// sequence, and (for a mapping) whether its last key awaits a value on later lines.
struct Open {
    column: usize,
    depth: usize,
    sequence: bool,
    awaits: bool,
}

/// A block scalar being skipped: the column of its owner (the key or item it is the value of,
/// -1 at the top of a document), and the indentation of its content once known.
struct BlockScalar {
    owner: isize,
    indent: Option<usize>,
}

/// The open brackets of a flow collection: for each, whether it is a sequence whose current
/// entry is a `key: value` pair (one level more: a mapping of its own, `[a: b]` is `[{a: b}]`).
struct Flow {
    base: usize,
    open: Vec<Bracket>,
    depth: usize,
}

struct Bracket {
    sequence: bool,
    pair: bool,
}

#[derive(Default)]
struct Scan {
    max: usize,
    values: usize,
    block: Vec<Open>,
    /// Inside a flow collection: the block depth it started at, and its open brackets.
    flow: Option<Flow>,
    /// Inside a plain scalar of a flow collection (which may go on to the next line): a quote
    /// there is part of it.
    flow_plain: bool,
    /// Inside a quoted scalar that goes on to the next line: its quote.
    quote: Option<char>,
    /// After a plain scalar in block context: lines indented more than this column go on with
    /// it (a quote or a bracket there is text), until a `: ` or a comment.
    plain: Option<isize>,
    block_scalar: Option<BlockScalar>,
}

impl Scan {
    fn line(&mut self, line: &str) {
        let indent = line.bytes().take_while(|&b| b == b' ').count();
        let blank = line[indent..].trim().is_empty();
        if let Some(scalar) = &mut self.block_scalar {
            // Content: blank lines, and lines indented as the first one (which must be indented
            // more than the owner); a document marker ends it whatever the indentation.
            let content = match scalar.indent {
                _ if blank => true,
                _ if indent == 0 && is_marker(line) => false,
                Some(at) => indent >= at,
                None if indent as isize > scalar.owner => {
                    scalar.indent = Some(indent);
                    true
                }
                None => false,
            };
            if content {
                return;
            }
            self.block_scalar = None;
        }
        if self.quote.is_some() || self.flow.is_some() {
            // Goes on with a quoted scalar or a flow collection.
            let depth = self.flow.as_ref().map_or(self.block_depth(), |flow| flow.base);
            self.scan_value(line, 0, depth, -1);
            return;
        }
        if let Some(owner) = self.plain {
            if blank {
                return;
            }
            self.plain = None;
            if indent as isize > owner && !(indent == 0 && is_marker(line)) {
                // Goes on with the scalar up to a comment (which ends it) or a `: ` (an error
                // the reader stops at; scanned as structure, to count more rather than less).
                match plain_end(&line[indent..]) {
                    None => {
                        self.plain = Some(owner);
                        return;
                    }
                    Some('#') => return,
                    Some(_) => {}
                }
            }
        }
        if blank || line[indent..].starts_with('#') {
            return;
        }
        if indent == 0 && (line.starts_with('%') || is_marker(line)) {
            // A directive, or a document's start or end: a new document nests from zero.
            self.block.clear();
            if let Some(rest) = line.strip_prefix("---") {
                self.scan_value(line, line.len() - rest.len(), 0, -1);
            }
            return;
        }
        let mut at = indent;
        let mut owner = -1;
        let mut first = true;
        // `- ` (an item; `- - ` nests), `? ` and `: ` (a complex key and its value) and `key:`
        // (a mapping entry), each at its column.
        loop {
            let rest = &line[at..];
            let indicator = |c: char| rest.strip_prefix(c).is_some_and(|r| r.is_empty() || r.starts_with([' ', '\t']));
            let item = indicator('-');
            let complex = indicator('?') || indicator(':');
            let key = if item || complex { None } else { key_end(rest) };
            if !item && !complex && key.is_none() {
                break;
            }
            let depth = self.enter(at, item, first);
            self.max = self.max.max(depth);
            // An item; a key and its value.
            self.values += if key.is_some() { 2 } else { 1 };
            first = false;
            owner = at as isize;
            let after = match key {
                Some(end) => at + end,
                None => at + 1,
            };
            if let Some(open) = self.block.last_mut() {
                open.awaits = !item && value_follows(&line[after..]);
            }
            at = after + line[after..].bytes().take_while(|&b| b == b' ' || b == b'\t').count();
            if key.is_some() {
                break;
            }
        }
        if first {
            // No indicator: a scalar or a flow collection, the value of what encloses it.
            while self.block.last().is_some_and(|open| open.column > indent) {
                self.block.pop();
            }
            owner = self.block.last().map_or(-1, |open| open.column as isize);
        }
        let depth = self.block_depth();
        self.scan_value(line, at, depth, owner);
    }

    /// The collection an item (`sequence`) or a key at `column` belongs to, opened if new; its
    /// depth. `first`: the line's first indicator, which closes what is indented more.
    fn enter(&mut self, column: usize, sequence: bool, first: bool) -> usize {
        if first {
            while let Some(top) = self.block.last() {
                if top.column == column && top.sequence == sequence {
                    return top.depth;
                }
                let child = top.column < column || (top.column == column && sequence && !top.sequence && top.awaits);
                if child {
                    break;
                }
                self.block.pop();
            }
        }
        let depth = self.block_depth() + 1;
        self.block.push(Open { column, depth, sequence, awaits: false });
        depth
    }

    fn block_depth(&self) -> usize {
        self.block.last().map_or(0, |open| open.depth)
    }

    /// Scans a value from `from` on: a flow collection or a quoted scalar opening there (or going
    /// on from an earlier line), a block scalar's header (`owner`: the column of the key or item
    /// it is the value of), or a plain scalar.
    fn scan_value(&mut self, line: &str, from: usize, mut depth: usize, owner: isize) {
        let mut chars = line[from..].chars().peekable();
        // Only at a node's place does a bracket or a quote open something in block context.
        let mut at_node = true;
        let mut previous = ' ';
        // A plain scalar in block context, open at the end of the line: it may go on.
        let mut plain = false;
        while let Some(c) = chars.next() {
            if let Some(quote) = self.quote {
                match c {
                    '\\' if quote == '"' => {
                        chars.next();
                    }
                    '\'' if quote == '\'' && chars.peek() == Some(&'\'') => {
                        chars.next();
                    }
                    c if c == quote => self.quote = None,
                    _ => {}
                }
                at_node = false;
                previous = c;
                continue;
            }
            let blank_after = chars.peek().is_none_or(|&n| n == ' ' || n == '\t');
            if c == '#' && matches!(previous, ' ' | '\t') {
                // A comment, which also ends a plain scalar.
                plain = false;
                break;
            }
            if matches!(c, ' ' | '\t') {
                previous = c;
                continue;
            }
            if self.flow.is_some() {
                self.flow_char(c, chars.peek().copied());
            } else {
                match c {
                    '"' | '\'' if at_node => self.quote = Some(c),
                    '[' | '{' if at_node => {
                        self.flow = Some(Flow { base: depth, open: Vec::new(), depth });
                        self.flow_plain = false;
                        self.flow_char(c, None);
                    }
                    '|' | '>' if at_node => {
                        // A block scalar; `|2`: its content indented that much more than the owner.
                        let explicit = chars.by_ref().take_while(|&c| c != ' ').find_map(|c| c.to_digit(10));
                        let indent = explicit.map(|d| owner.max(0) as usize + d as usize);
                        self.block_scalar = Some(BlockScalar { owner, indent });
                        plain = false;
                        break;
                    }
                    '&' | '!' if at_node => {
                        // An anchor or a tag: the node comes after it.
                        while chars.peek().is_some_and(|&c| c != ' ') {
                            chars.next();
                        }
                        previous = ' ';
                        continue;
                    }
                    // `: `, `- `, `? `: whatever comes next is a node one level down (a flow
                    // collection as a key), or an error the reader stops at.
                    ':' | '-' | '?' if blank_after => {
                        depth += 1;
                        self.max = self.max.max(depth);
                        at_node = true;
                        plain = false;
                        previous = ' ';
                        continue;
                    }
                    _ if at_node => plain = true,
                    _ => {}
                }
                at_node = false;
            }
            previous = c;
        }
        if plain && self.quote.is_none() && self.flow.is_none() {
            self.plain = Some(owner);
        }
    }

    /// One character inside a flow collection.
    fn flow_char(&mut self, c: char, next: Option<char>) {
        let Some(flow) = &mut self.flow else { return };
        let blank_next = next.is_none_or(|n| n == ' ' || n == '\t');
        match c {
            '[' | '{' => {
                flow.open.push(Bracket { sequence: c == '[', pair: false });
                self.values += 1;
                flow.depth += 1;
                self.max = self.max.max(flow.depth);
                self.flow_plain = false;
            }
            ']' | '}' => {
                if let Some(bracket) = flow.open.pop() {
                    flow.depth -= 1 + usize::from(bracket.pair);
                }
                if flow.open.is_empty() {
                    self.flow = None;
                }
                self.flow_plain = false;
            }
            ',' => {
                self.values += 1;
                if let Some(bracket) = flow.open.last_mut() {
                    flow.depth -= usize::from(std::mem::take(&mut bracket.pair));
                }
                self.flow_plain = false;
            }
            // `? `, or `:` after a quoted key (`"a":"b"`) or before a blank or a bracket: the
            // entry is a pair (a `:` inside a plain scalar otherwise: `http://x`).
            '?' | ':'
                if (c == '?' && !self.flow_plain && blank_next)
                    || (c == ':'
                        && (!self.flow_plain
                            || next.is_none_or(|n| matches!(n, ' ' | '\t' | ',' | '[' | ']' | '{' | '}')))) =>
            {
                if let Some(bracket) = flow.open.last_mut().filter(|b| b.sequence) {
                    if !bracket.pair {
                        bracket.pair = true;
                        flow.depth += 1;
                        self.max = self.max.max(flow.depth);
                    }
                }
                self.flow_plain = false;
            }
            '"' | '\'' if !self.flow_plain => self.quote = Some(c),
            '-' if !self.flow_plain && blank_next => {}
            _ => self.flow_plain = true,
        }
    }
}

/// Where a plain scalar's continuation line stops it: at a comment (`'#'`), at a `: ` (`':'`),
/// or not on this line (`None`).
fn plain_end(line: &str) -> Option<char> {
    let mut previous = ' ';
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '#' if previous == ' ' || previous == '\t' => return Some('#'),
            ':' if chars.peek().is_none_or(|&n| n == ' ' || n == '\t') => return Some(':'),
            _ => {}
        }
        previous = c;
    }
    None
}

/// Whether what follows a `key:` (or `? `, `: `) on its line leaves the value to later lines:
/// nothing, a comment, or only an anchor or a tag (`key: &name`).
fn value_follows(rest: &str) -> bool {
    let mut words = rest.split([' ', '\t']).filter(|w| !w.is_empty());
    loop {
        match words.next() {
            None => return true,
            Some(word) if word.starts_with('#') => return true,
            Some(word) if word.starts_with(['&', '!']) => continue,
            Some(_) => return false,
        }
    }
}

/// `---` or `...` alone or followed by a space: a document marker.
fn is_marker(line: &str) -> bool {
    (line.starts_with("---") || line.starts_with("...")) && matches!(line.as_bytes().get(3), None | Some(b' ' | b'\t'))
}

/// The end of a block mapping key at the start of `rest` (after its `:`), if the line holds one:
/// a plain key up to `: ` (or a `:` ending the line), a quoted key followed by `:`, or `: `
/// alone (a complex key's value, or an empty key).
fn key_end(rest: &str) -> Option<usize> {
    // An anchor or a tag on the key (`&a key:`, `!t : `): the key follows it, maybe empty.
    let mut start = 0;
    while rest[start..].starts_with(['&', '!']) {
        start += rest[start..].find([' ', '\t'])?;
        start += rest[start..].bytes().take_while(|&b| b == b' ' || b == b'\t').count();
    }
    key_after_properties(&rest[start..]).map(|end| start + end)
}

fn key_after_properties(rest: &str) -> Option<usize> {
    let bytes = rest.as_bytes();
    let after_key = match bytes.first()? {
        b'"' => quoted_end(rest, '"')?,
        b'\'' => quoted_end(rest, '\'')?,
        b'[' | b'{' | b'#' | b'|' | b'>' | b'&' | b'!' => return None,
        _ => {
            let mut previous = b' ';
            for (i, &b) in bytes.iter().enumerate() {
                if b == b'#' && (previous == b' ' || previous == b'\t') {
                    return None;
                }
                if b == b':' && matches!(bytes.get(i + 1), None | Some(b' ' | b'\t')) {
                    return Some(i + 1);
                }
                previous = b;
            }
            return None;
        }
    };
    let spaces = rest[after_key..].bytes().take_while(|&b| b == b' ').count();
    let colon = after_key + spaces;
    (bytes.get(colon) == Some(&b':') && matches!(bytes.get(colon + 1), None | Some(b' ' | b'\t'))).then_some(colon + 1)
}

/// Just past the closing quote of a quoted scalar starting `text`, when it closes on this line.
fn quoted_end(text: &str, quote: char) -> Option<usize> {
    let mut chars = text.char_indices().skip(1).peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' if quote == '"' => {
                chars.next();
            }
            '\'' if quote == '\'' && chars.peek().map(|&(_, c)| c) == Some('\'') => {
                chars.next();
            }
            c if c == quote => return Some(i + 1),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth(text: &str) -> usize {
        measure(text).depth
    }

    #[test]
    fn values_are_counted_by_their_indicators() {
        assert_eq!(measure("a: 1\nb: [1, 2, 3]\nc:\n- x\n- y\n").values, 2 + 2 + 3 + 2 + 2);
        assert_eq!(measure("{\"a\": [1, 2], \"b\": {}}").values, 5);
        assert_eq!(measure(&format!("a: [{}1]\n", "1,".repeat(1000))).values, 1003);
        // Quoted scalars and block scalars hold no values.
        assert_eq!(measure("a: \"- b: [1, 2]\"\nc: |\n  - x\n  - y\n").values, 4);
    }

    #[test]
    fn flow_collections_are_counted_exactly() {
        assert_eq!(depth("a: [[[x]]]\n"), 4);
        assert_eq!(depth(&format!("a: {}{}\n", "[".repeat(500), "]".repeat(500))), 501);
        // A `key: value` entry counts one more: in a flow sequence it is a mapping of its own.
        assert_eq!(depth("[a: [b]]"), 3);
        assert_eq!(depth("[[1], {a: [2]}]"), 3);
        assert_eq!(depth("{\"a\": {\"b\": [1, 2, {\"c\": \"[[[[\"}]}}"), 4);
        // Across lines, as JSON is written.
        assert_eq!(depth("{\n  \"a\": [\n    {\"b\": 1}\n  ]\n}\n"), 3);
    }

    #[test]
    fn brackets_in_scalars_comments_and_block_scalars_count_for_nothing() {
        assert_eq!(depth("a: \"[[[[\"\nb: '{{{{'\nc: x[y]{\n# [[[[\nd: 1 # [[[\n"), 1);
        assert_eq!(depth("a: |\n  [[[[\n  {{{{\nb: >-\n  ]]]]\n  x\nc: 1\n"), 1);
        assert_eq!(depth("- |\n  [[[[\n- x\n"), 1);
        assert_eq!(depth("a: 'it''s [\n  still ['\nb: [1]\n"), 2);
        assert_eq!(depth("a: \"x\\\" [\n  y\"\nb: 1\n"), 1);
        // A plain scalar's next lines are text, quotes and brackets too.
        assert_eq!(depth("a: x\n  \"y [[\n  ]]\nb: [1]\n"), 2);
        assert_eq!(depth("x\n\"---\n---\n[]"), 1);
        assert_eq!(depth("%YAML 1.2\n---\na: 1\n...\n--- [[1]]\n"), 2);
    }

    #[test]
    fn block_collections_are_counted_by_indentation() {
        assert_eq!(depth("a: 1\nb:\n  c: 2\n  d:\n    e: 3\nf: 4\n"), 3);
        // A sequence as indented as the key it belongs to is one level below it.
        assert_eq!(depth("a:\n- b:\n  - c:\n    - d\n"), 6);
        assert_eq!(depth("- - - a\n"), 3);
        assert_eq!(depth("- a: 1\n  b: [x]\n"), 3);
        assert_eq!(depth("a: &x [1]\nb: !!seq [2]\n"), 2);
        assert_eq!(depth("a: &x\n- b: 1\n"), 3);
        // Each document from zero.
        assert_eq!(depth("a:\n  b:\n    c: 1\n---\nd: 1\n"), 3);
    }

    /// Texts crafted to hide flow brackets from a careless scan, each with the brackets the
    /// YAML reader would open.
    #[test]
    fn hidden_brackets_are_found() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        for (text, at_least) in [
            // A flow mapping as a key: its value is a node too.
            (format!("{{a: 1}}: {}\n", deep(50)), 51),
            (format!("\"k\": {}\n", deep(50)), 51),
            // A quote inside a flow plain scalar opens nothing.
            (format!("[a \", {}, \"]\n", deep(50)), 51),
            (format!("[a\n\"x\", {}]\n", deep(50)), 51),
            // Line breaks the reader knows besides \n.
            (format!("a: 1\rb: {}\r", deep(50)), 51),
            (format!("a: 1{}b: {}\n", '\u{2028}', deep(50)), 51),
            (format!("a: 1{}b: {}\n", '\u{85}', deep(50)), 51),
            (format!("{}{}\n", '\u{feff}', deep(50)), 50),
            // A block scalar ends at a line indented less than its first line.
            (format!("a:\n  k: |\n      text\n    b: {}\n", deep(50)), 52),
            (format!("k: |2\n  text\n b: {}\n", deep(50)), 51),
            // A tab after the indicator.
            (format!("a:\t{}\n", deep(50)), 51),
        ] {
            assert!(depth(&text) >= at_least, "{text:?}: {}", depth(&text));
        }
    }

    #[test]
    fn a_text_over_a_limit_is_read_no_further() {
        let text = format!("a: [1]\nb: {}{}\nc:\n{}", "[".repeat(10), "]".repeat(10), "- x\n".repeat(1000));
        // Line 2 passes the depth: the scan stops after it.
        let limit = Shape { depth: 5, values: usize::MAX };
        assert_eq!(measure_within(&text, limit), Shape { depth: 11, values: 3 + 12 });
        // The 100th item's line passes the count.
        let limit = Shape { depth: usize::MAX, values: 100 };
        assert_eq!(measure_within(&text, limit).values, 101);
        assert_eq!(measure(&text).values, 1017);
    }

    #[test]
    fn a_megabyte_is_scanned_in_linear_time() {
        let text = format!("a: {}{}\n", "[".repeat(500_000), "]".repeat(500_000));
        let started = std::time::Instant::now();
        assert_eq!(depth(&text), 500_001);
        // Debug build on a shared machine: generous, but far below the parser's minutes.
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "{:?}", started.elapsed());
    }

    /// The estimate against the depth serde_yaml_ng builds, for the shapes kubectl and the
    /// CLI write: never below it.
    #[test]
    fn the_estimate_is_never_below_the_parsers_depth() {
        for file in [
            "envoyfilter/envoyfilter.yaml",
            "envoyfilter/wasmplugin.yaml",
            "envoyfilter/envoy.yaml",
            "envoyfilter/example-gateways.yaml",
            "cli/demo/gateways.yaml",
            "cli/tests/fixtures/gateway-api.yaml",
            "cli/tests/fixtures/two-gateways.json",
        ] {
            let text = std::fs::read_to_string(format!("{}/../{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
            let parsed: Vec<serde_json::Value> = serde_yaml_ng::Deserializer::from_str(&text)
                .map(|d| serde::Deserialize::deserialize(d).unwrap())
                .collect();
            let deepest = parsed.iter().map(real).max().unwrap_or(0);
            let estimate = depth(&text);
            assert!(estimate >= deepest && estimate <= deepest + 2, "{file}: estimate {estimate}, parser {deepest}");
        }
    }

    fn real(value: &serde_json::Value) -> usize {
        match value {
            serde_json::Value::Array(items) => 1 + items.iter().map(real).max().unwrap_or(0),
            serde_json::Value::Object(map) => 1 + map.values().map(real).max().unwrap_or(0),
            _ => 0,
        }
    }

    use proptest::strategy::Strategy;

    fn value() -> impl Strategy<Value = serde_json::Value> {
        crate::test_hostile::value(12)
    }

    /// Text made of YAML's own tokens in any order: most is not YAML; what the reader takes,
    /// it must not take deeper than the estimate.
    fn token_soup() -> impl proptest::strategy::Strategy<Value = String> {
        let tokens = vec![
            "[", "]", "{", "}", ", ", ",", ": ", ":", "- ", "-", "? ", "\n", "\n  ", "\n    ", "\n- ", "a", "b: ",
            "\"", "'", " #", "#", " ", "|", "|2", ">-", "&x ", "*x", "!t ", "---\n", "...\n", "\r", "\t", "\\",
            "\u{2028}", "\u{85}", "\n ", "\n   ", ":x", "x:", "\"a\"", "'b'", "{a: ", "[a: ", "\u{feff}",
        ];
        proptest::collection::vec(proptest::sample::select(tokens), 0..40).prop_map(|t| t.concat())
    }

    proptest::proptest! {
        // Failures are printed, never written into the source tree.
        #![proptest_config(proptest::test_runner::Config { failure_persistence: None, ..Default::default() })]
        #[test]
        fn never_below_the_depth_the_reader_takes_from_any_text(text in token_soup()) {
            let parsed: Result<Vec<serde_json::Value>, _> = serde_yaml_ng::Deserializer::from_str(&text)
                .map(serde::Deserialize::deserialize)
                .collect();
            if let Ok(documents) = parsed {
                let deepest = documents.iter().map(real).max().unwrap_or(0);
                proptest::prop_assert!(depth(&text) >= deepest, "{text:?}: {} < {deepest}", depth(&text));
            }
        }

        /// Whatever the values hold, the estimate of the YAML and JSON written for them is at
        /// least their depth.
        #[test]
        fn never_below_the_depth_of_what_serializers_write(value in value()) {
            let deepest = real(&value);
            let yaml = serde_yaml_ng::to_string(&value).unwrap();
            proptest::prop_assert!(depth(&yaml) >= deepest, "{yaml}");
            for json in [serde_json::to_string(&value).unwrap(), serde_json::to_string_pretty(&value).unwrap()] {
                proptest::prop_assert!(depth(&json) >= deepest, "{json}");
            }
        }
    }
}
