//! Randomised robustness: the decision logic never panics, whatever bytes arrive as SNI,
//! `:authority` or configuration, and its answers keep their invariants. A panic in the module
//! aborts the VM for every request on that worker, so this runs a few hundred thousand inputs
//! built from the characters that matter to the parser.

use sni_guard::cel::SameNameTest;
use sni_guard::config::{PluginConfig, Settings};
use sni_guard::host_name::{authority_host, is_dotted_name, HostKey};
use sni_guard::verdict::check;

/// xorshift64*: deterministic, no dependency, different sequence per seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn bytes(&mut self) -> Vec<u8> {
        const PIECES: &[&[u8]] = &[
            b"a",
            b"B",
            b"example",
            b".",
            b":",
            b"[",
            b"]",
            b"::1",
            b"*",
            b"-",
            b"_",
            b"443",
            b"99999",
            b" ",
            b"\0",
            b"\xff",
            b"\xc3\xa9",
            b"com",
            b"/",
            b"%",
            b"xn--",
        ];
        let len = match self.below(20) {
            0 => 200 + self.below(200), // long values, beyond the 255-byte limit
            _ => self.below(12),
        };
        let mut out = Vec::new();
        for _ in 0..len {
            out.extend_from_slice(PIECES[self.below(PIECES.len())]);
        }
        if self.below(10) == 0 {
            out.extend(std::iter::repeat_n(b'x', self.below(80)));
        }
        out
    }
}

#[test]
fn decision_never_panics_and_equal_names_pass() {
    let configs = [
        Settings::default(),
        Settings::from_json(br#"{"servers":[{"hosts":["a"]},{"hosts":["*.example","b.example"]},{"hosts":["*"]}],"on_missing_sni":"reject"}"#)
            .unwrap(),
        Settings::from_json(br#"{"servers":[{"hosts":["a"]},{"hosts":["*.example","b.example"]},{"hosts":["x","*.x"]}]}"#)
            .unwrap(),
    ];
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut equal_names_checked = 0;
    for i in 0..200_000 {
        let sni = rng.bytes();
        // Every other input: an authority that names the SNI's host in another spelling (case,
        // trailing dot, port), so the "same name passes" property is exercised, not just hoped for.
        let authority = if i % 2 == 0 { rng.bytes() } else { respell(&mut rng, &sni) };
        for settings in &configs {
            let verdict = check(settings, Some(&sni), Some(&authority));
            let _ = check(settings, None, Some(&authority));
            let _ = check(settings, Some(&sni), None);
            // A well-formed authority whose host is the SNI itself always passes, unless the
            // SNI ends with '.' and there are servers: Envoy matches `server_names` literally,
            // so that connection is not in the name's server's chain.
            let literal_sni = !sni.ends_with(b".") || settings.servers.is_empty();
            if let Ok(host) = authority_host(&authority) {
                if literal_sni
                    && !sni.is_empty()
                    && HostKey::fold(host).is_some()
                    && HostKey::fold(&sni) == HostKey::fold(host)
                {
                    equal_names_checked += 1;
                    assert_eq!(
                        verdict,
                        Ok(()),
                        "sni={:?} authority={:?}",
                        String::from_utf8_lossy(&sni),
                        String::from_utf8_lossy(&authority)
                    );
                }
            }
        }
    }
    assert!(equal_names_checked > 10_000, "only {equal_names_checked} inputs exercised the equal-names property");
}

/// Why `SameNameTest::HostName` may settle a request early where there is a catch-all server or
/// a server below another's wildcard: for a dotted name (labels of letters, digits, '-' and '_',
/// whatever their length), the chain Envoy picks by SNI is the server the same text belongs to
/// as a host. Dotted names from labels that are servers' names, their parts, and random ones.
#[test]
fn a_dotted_sni_is_in_the_chain_of_its_hosts_server() {
    let configs = [
        r#"{"servers":[{"hosts":["a.example.com"]},{"hosts":["*.example.com","b.example.org"]},{"hosts":["*"]}]}"#,
        r#"{"servers":[{"hosts":["*.example.com"]},{"hosts":["*.b.example.com"]},{"hosts":["x.b.example.com","*.x.b.example.com"]}]}"#,
        r#"{"servers":[{"hosts":["*.com"]},{"hosts":["example.com"]},{"hosts":["*.a.example.com"]},{"hosts":["*"]}]}"#,
    ];
    const LABELS: &[&str] = &["a", "b", "x", "example", "EXAMPLE", "com", "org", "x-y", "_", "ab1", "B"];
    let mut rng = Rng(0x5eed_1234_abcd_0003);
    let mut checked = 0;
    for config in configs {
        let settings = Settings::from_json(config.as_bytes()).unwrap();
        assert_eq!(settings.same_name, SameNameTest::HostName, "{config}");
        for _ in 0..50_000 {
            let labels = 1 + rng.below(6);
            let mut name = Vec::new();
            for i in 0..labels {
                if i > 0 {
                    name.push(b'.');
                }
                match rng.below(12) {
                    0 => name.extend(std::iter::repeat_n(b'y', 60 + rng.below(10))),
                    _ => name.extend_from_slice(LABELS[rng.below(LABELS.len())].as_bytes()),
                }
            }
            assert!(is_dotted_name(&name));
            let lower = name.to_ascii_lowercase();
            assert_eq!(
                settings.servers.server_for_sni(&name),
                settings.servers.server_of(&lower),
                "{config}: {:?}",
                String::from_utf8_lossy(&name)
            );
            assert_eq!(check(&settings, Some(&name), Some(&name)), Ok(()));
            checked += 1;
        }
    }
    assert_eq!(checked, 150_000);
}

/// `name` in another spelling that names the same host: letters' case flipped at random, maybe
/// a trailing dot, maybe a port.
fn respell(rng: &mut Rng, name: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> =
        name.iter().map(|&b| if rng.below(2) == 0 { b.to_ascii_uppercase() } else { b.to_ascii_lowercase() }).collect();
    if rng.below(3) == 0 && !out.ends_with(b".") {
        out.push(b'.');
    }
    if rng.below(3) == 0 {
        out.extend_from_slice(format!(":{}", rng.below(65536)).as_bytes());
    }
    out
}

#[test]
fn configuration_parser_never_panics() {
    let mut rng = Rng(0x5eed_1234_abcd_0002);
    let fields = [
        r#""servers""#,
        r#""hosts""#,
        r#""mode""#,
        r#""dry_run""#,
        r#""exempt_paths""#,
        r#""on_missing_sni""#,
        r#""response_body""#,
    ];
    let tokens = [
        "{",
        "}",
        "[",
        "]",
        ":",
        ",",
        "\"*.a\"",
        "\"a.*.b\"",
        "\"ns/x\"",
        "null",
        "1",
        "\"\"",
        "true",
        "\"enforce\"",
        "\"reject\"",
    ];
    for i in 0..50_000 {
        let mut json = String::new();
        if i % 4 == 0 {
            json.push_str(VALID[rng.below(VALID.len())]);
        }
        // Every eighth input is a valid configuration alone.
        let tokens_after = if i % 8 == 0 { 0 } else { rng.below(24) };
        for _ in 0..tokens_after {
            if rng.below(3) == 0 {
                json.push_str(fields[rng.below(fields.len())]);
            } else {
                json.push_str(tokens[rng.below(tokens.len())]);
            }
        }
        let _ = Settings::from_json(json.as_bytes());
        let _ = Settings::from_json(&rng.bytes());
    }
}

/// Valid configurations, some of them completed or broken by the tokens after them.
const VALID: &[&str] = &[
    r#"{"servers":[{"hosts":["a.example.com","*.b.example.com"]},{"hosts":["ns/c"]}],"mode":"dry_run"}"#,
    r#"{"on_missing_sni":"reject","exempt_paths":["/x"],"response_body":"no"}"#,
    r#"{"response_body":null}"#,
    "{}",
];

/// The filter's reader (src/json.rs and `PluginConfig::parse`) against serde's derived reader
/// (serde_json), on generated configurations: structurally valid ones with random white space,
/// escapes, field order and value types, a third of them then broken by one byte. Whatever the
/// filter accepts, serde accepts and reads the same; whatever serde accepts and the filter
/// refuses is one of the two documented cases (a struct read from a list, a unit variant read
/// from a map).
#[test]
fn filter_reader_agrees_with_serde() {
    let mut rng = Rng(0x5eed_1234_abcd_0003);
    let (mut both, mut neither, mut serde_only) = (0, 0, 0);
    for _ in 0..60_000 {
        let mut json = config_json(&mut rng).into_bytes();
        if rng.below(3) == 0 && !json.is_empty() {
            let at = rng.below(json.len());
            match rng.below(3) {
                0 => json[at] = b"{}[]\":,\\u0aZ \xff"[rng.below(14)],
                1 => drop(json.remove(at)),
                _ => json.insert(at, b"\"{[,\\"[rng.below(5)]),
            }
        }
        let ours = PluginConfig::parse(&json);
        let theirs = serde_json::from_slice::<PluginConfig>(&json);
        let shown = String::from_utf8_lossy(&json);
        match (ours, theirs) {
            (Ok(ours), Ok(theirs)) => {
                assert_eq!(ours, theirs, "{shown}");
                both += 1;
            }
            (Ok(_), Err(e)) => panic!("{shown}: accepted by the filter, refused by serde: {e}"),
            (Err(e), Ok(_)) => {
                assert!(
                    e.problem.to_string().contains("invalid type: a list")
                        || e.problem.to_string().contains("invalid type: an object"),
                    "{shown}: refused by the filter ({e}), accepted by serde, and not a documented difference"
                );
                serde_only += 1;
            }
            (Err(_), Err(_)) => neither += 1,
        }
    }
    assert!(
        both > 10_000 && neither > 5_000 && serde_only > 100,
        "both {both}, neither {neither}, serde only {serde_only}"
    );
}

fn space(rng: &mut Rng) -> &'static str {
    [" ", "", "\n  ", "\t", "\r\n", ""][rng.below(6)]
}

/// `text` as a JSON string, each character written plainly or as an escape.
fn json_string(rng: &mut Rng, text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match (c, rng.below(4)) {
            ('"', _) => out.push_str("\\\""),
            ('\\', _) => out.push_str("\\\\"),
            ('/', 0) => out.push_str("\\/"),
            (c, 0) => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            (c, _) => out.push(c),
        }
    }
    out.push('"');
    out
}

fn config_json(rng: &mut Rng) -> String {
    const HOSTS: &[&str] = &["a.example.com", "*.b.example.com", "ns/c.example.com", "é.example", "x😀", "", "a/b\"c"];
    const WORDS: &[&str] = &["enforce", "dry_run", "allow", "reject", "bogus", "/.well-known/", "421 \\ /"];
    let mut fields: Vec<String> = Vec::new();
    let string = |rng: &mut Rng, pool: &[&str]| {
        let text = pool[rng.below(pool.len())];
        json_string(rng, text)
    };
    let list = |rng: &mut Rng, pool: &[&str]| {
        let items: Vec<String> = (0..rng.below(4)).map(|_| string(rng, pool)).collect();
        format!("[{}]", items.join(&format!(",{}", space(rng))))
    };
    let odd_value = |rng: &mut Rng| ["null", "1", "-0.5e3", "true", "{}", "[]"][rng.below(6)].to_string();
    for _ in 0..rng.below(6) {
        let (key, value) = match rng.below(7) {
            0 => ("servers", {
                let servers: Vec<String> = (0..rng.below(3))
                    .map(|_| match rng.below(8) {
                        0 => format!("[{}]", list(rng, HOSTS)), // serde reads a struct from a list
                        1 => "{}".to_string(),
                        _ => format!("{{{}\"hosts\"{}:{}}}", space(rng), space(rng), list(rng, HOSTS)),
                    })
                    .collect();
                format!("[{}]", servers.join(","))
            }),
            1 => (
                "mode",
                if rng.below(6) == 0 { format!("{{\"{}\":null}}", WORDS[rng.below(2)]) } else { string(rng, WORDS) },
            ),
            2 => ("on_missing_sni", string(rng, WORDS)),
            3 => ("exempt_paths", list(rng, WORDS)),
            4 => ("response_body", if rng.below(4) == 0 { "null".into() } else { string(rng, WORDS) }),
            5 => (["sever", "hosts", "Mode"][rng.below(3)], string(rng, WORDS)),
            _ => (["servers", "mode", "exempt_paths", "response_body"][rng.below(4)], odd_value(rng)),
        };
        fields.push(format!("{}{}{}:{}{}", space(rng), json_string(rng, key), space(rng), space(rng), value));
    }
    format!("{}{{{}}}{}", space(rng), fields.join(","), space(rng))
}
