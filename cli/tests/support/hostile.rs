//! Hostile strings and values for the property tests: characters from all of Unicode (control
//! characters, line separators, bidirectional overrides...) mixed with the pieces YAML is made
//! of (`---`, `#`, quotes, indicators, line breaks), and JSON values built of them.

#![allow(dead_code)]

use proptest::prelude::*;

/// A string of up to `pieces` pieces, each any character or a piece of YAML.
pub fn string(pieces: usize) -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        any::<char>().prop_map(String::from),
        proptest::sample::select(vec![
            "---",
            "...",
            "#",
            " #",
            "'",
            "\"",
            "\n",
            "\r\n",
            "\r",
            ": ",
            ":",
            "- ",
            "? ",
            "|",
            ">",
            "&a",
            "*a",
            "!t",
            "!!str",
            "%YAML",
            "{",
            "}",
            "[",
            "]",
            ",",
            "\\",
            "\t",
            " ",
            "  ",
            "key: [",
            "yes",
            "null",
            "1e3",
            "0x1F",
            "~",
            "<<",
            "\u{85}",
            "\u{2028}",
            "\u{feff}",
            "\u{202e}",
            "\u{1b}[2J",
            "\u{7}",
            "kind: ClusterRoleBinding\nmetadata: {name: pwn}",
            "a.example.com",
        ])
        .prop_map(str::to_owned),
    ];
    proptest::collection::vec(piece, 0..pieces).prop_map(|p| p.concat())
}

/// A JSON value up to `depth` levels deep, its strings and keys hostile.
pub fn value(depth: u32) -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(serde_json::Value::from),
        string(10).prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(depth, 64, 5, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(serde_json::Value::Array),
            proptest::collection::vec((string(10), inner), 0..5)
                .prop_map(|entries| serde_json::Value::Object(entries.into_iter().collect())),
        ]
    })
}
