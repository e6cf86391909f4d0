//! Requests a client or a proxy in front could send: each gets a defined answer, never a trap.

use wasm_test_harness::{LogLevel, Outcome, Plugin};

const SERVERS: &str = r#"{"servers":[{"hosts":["a.example.com"]},{"hosts":["b.example.com"]}]}"#;

fn send(plugin: &mut Plugin, sni: Option<&[u8]>, authority: Option<&[u8]>) -> Outcome {
    let mut request = plugin.request();
    if let Some(sni) = sni {
        request = request.sni(sni);
    }
    if let Some(authority) = authority {
        request = request.authority(authority);
    }
    request.send().unwrap_or_else(|e| panic!("sni {sni:?} authority {authority:?}: {e}"))
}

#[test]
fn missing_or_empty_values() {
    for config in ["", SERVERS] {
        let mut plugin = super::load(config);
        assert_eq!(send(&mut plugin, Some(b"a.example.com"), None).status(), Some(421), "missing :authority");
        assert!(send(&mut plugin, Some(b""), Some(b"b.example.com")).passed(), "empty SNI is no SNI");
        assert!(send(&mut plugin, None, None).passed(), "nothing at all");
        assert_eq!(send(&mut plugin, Some(b"a.example.com"), Some(b"")).status(), Some(421), "empty :authority");
    }
}

#[test]
fn huge_values_are_misdirected_and_logged_cut() {
    let mut plugin = super::load_at(SERVERS, LogLevel::Debug);
    let huge = "a".repeat(1 << 20);
    let outcome = send(&mut plugin, Some(b"a.example.com"), Some(huge.as_bytes()));
    assert_eq!(outcome.status(), Some(421));
    let line = outcome.logs.iter().find(|l| l.message.contains("answering 421")).expect("a debug line");
    assert!(line.message.len() < 1024, "the log line is cut: {} bytes", line.message.len());
    assert!(
        line.message.contains("...") && line.message.contains("the authority is longer than 255 bytes"),
        "{}",
        line.message
    );
    let outcome = send(&mut plugin, Some(huge.as_bytes()), Some(b"a.example.com"));
    assert_eq!(outcome.status(), Some(421), "a huge SNI is no server's");
}

#[test]
fn non_utf8_bytes_in_the_sni_property_or_the_authority() {
    for config in ["", SERVERS] {
        let mut plugin = super::load_at(config, LogLevel::Debug);
        let outcome = send(&mut plugin, Some(b"\xff\xfe.example.com"), Some(b"a.example.com"));
        assert_eq!(outcome.status(), Some(421), "{config}: {outcome:?}");
        assert!(outcome.logged("sni=\"\u{fffd}\u{fffd}.example.com\""), "{:?}", outcome.logs);
        let outcome = send(&mut plugin, Some(b"a.example.com"), Some(b"a\xff.example.com"));
        assert_eq!(outcome.status(), Some(421), "{config}");
        let outcome = send(&mut plugin, Some(b"a.example.com"), Some(b"a.example.com\0"));
        assert_eq!(outcome.status(), Some(421), "a NUL byte");
        // Identical bytes are the name the connection was opened for, host name or not.
        let outcome = send(&mut plugin, Some(b"\xff"), Some(b"\xff"));
        assert!(outcome.passed(), "{config}: identical \\xff");
        let outcome = send(&mut plugin, Some(b"\xff"), Some(b"\xfe"));
        assert_eq!(outcome.status(), Some(421), "{config}: \\xfe is not a host");
    }
}

#[test]
fn protocol_property_missing_or_odd() {
    let mut plugin = super::load("");
    let outcome = plugin
        .request()
        .sni("a.example.com")
        .authority("b.example.com")
        .without_property(wasm_test_harness::PROTOCOL)
        .send()
        .unwrap();
    let reply = outcome.local_response.expect("421");
    assert_eq!(reply.header("connection"), None, "unknown protocol: no connection: close");
    let outcome =
        plugin.request().sni("a.example.com").authority("b.example.com").protocol("\u{0}\u{ff}").send().unwrap();
    assert_eq!(outcome.status(), Some(421));
}

#[test]
fn repeated_authority_uses_the_first_value() {
    let mut plugin = super::load("");
    let outcome = plugin
        .request()
        .sni("a.example.com")
        .authority("a.example.com")
        .add_header(":authority", "b.example.com")
        .send()
        .unwrap();
    assert!(outcome.passed(), "{outcome:?}");
}
