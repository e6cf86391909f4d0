//! The check sni-guard asks Envoy to run first on every request: a CEL expression, created
//! once per plugin with Envoy's `expr_create` foreign function and evaluated per request with
//! `expr_evaluate`, whose evaluation succeeds exactly when the request's `:authority` is, byte
//! for byte, the SNI of its connection.
//!
//! Why: reading the SNI and `:authority` through the ABI takes two host calls, and for each
//! value Envoy calls back into the module to allocate it; those crossings are most of what a
//! proxy-wasm filter costs Envoy (see README, "Performance"). Evaluated without a result buffer,
//! the expression answers through its status alone: one host call, nothing returned. That
//! covers the usual request, for the very name the client opened its connection with. Every
//! other outcome (another name, a port, other letter case, no `:authority`, a host without CEL)
//! sends the request through the full check, which passes identical names too
//! (`verdict::check`), so the answer never depends on which path was taken.
//!
//! The texts are Envoy's CEL: `request.host` is `:authority` (HTTP/1's `Host`) and is an error
//! when absent; `connection.requested_server_name` is "" without SNI. `1/0` is the error that
//! makes a false comparison fail.

use crate::config::OnMissingSni;

/// Succeeds when `:authority` equals the SNI; fails otherwise. On a connection without SNI it
/// succeeds only for an empty `:authority`, which `on_missing_sni: allow` passes anyway.
pub const SAME_NAME: &str = "request.host == connection.requested_server_name || 1/0 == 0";

/// `SAME_NAME` that also fails on a connection without SNI, which `on_missing_sni: reject`
/// refuses even with an empty `:authority`. The extra test costs about 2,300 instructions per
/// request in Envoy 1.40 (about 12% of the Lua snippet's cost, measured with callgrind), so it
/// is used only where it changes an answer.
pub const SAME_NAME_AND_SNI: &str =
    "connection.requested_server_name != \"\" && request.host == connection.requested_server_name || 1/0 == 0";

/// The expression a plugin with this `on_missing_sni` asks Envoy to evaluate.
pub fn same_name_expression(on_missing_sni: OnMissingSni) -> &'static str {
    match on_missing_sni {
        OnMissingSni::Allow => SAME_NAME,
        OnMissingSni::Reject => SAME_NAME_AND_SNI,
    }
}

/// What Envoy's evaluation of `expression` answers for a request: `Some(true)` for success,
/// `Some(false)` for failure, `None` for an expression that is not one of the above. The
/// contract the tests hold sni-guard to, and how their fake hosts play Envoy's part.
pub fn succeeds(expression: &str, sni: Option<&[u8]>, authority: Option<&[u8]>) -> Option<bool> {
    let sni = sni.unwrap_or_default();
    let same = authority == Some(sni);
    match expression {
        SAME_NAME => Some(same),
        SAME_NAME_AND_SNI => Some(same && !sni.is_empty()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;
    use crate::verdict::check;

    /// Whenever Envoy's check succeeds, the full check passes the request too: skipping it on
    /// success changes no answer.
    #[test]
    fn success_implies_the_full_check_passes() {
        let names: [Option<&str>; 9] = [
            None,
            Some(""),
            Some("a.example.com"),
            Some("A.EXAMPLE.COM"),
            Some("::1"),
            Some("[::1]:8443"),
            Some("a b"),
            Some("a.example.com:443"),
            Some("é.example"),
        ];
        for config in [r#"{}"#, r#"{"on_missing_sni":"reject"}"#, r#"{"servers":[{"hosts":["b.example.com"]}]}"#] {
            let settings = Settings::from_json(config.as_bytes()).unwrap();
            let expression = same_name_expression(settings.on_missing_sni);
            for sni in names {
                for authority in names {
                    let (sni, authority) = (sni.map(str::as_bytes), authority.map(str::as_bytes));
                    if succeeds(expression, sni, authority) == Some(true) {
                        assert_eq!(check(&settings, sni, authority), Ok(()), "{config} {sni:?} {authority:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn fails_for_anything_but_the_same_name() {
        let a = Some(&b"a.example.com"[..]);
        assert_eq!(succeeds(SAME_NAME, a, a), Some(true));
        assert_eq!(succeeds(SAME_NAME, a, Some(b"A.example.com")), Some(false));
        assert_eq!(succeeds(SAME_NAME, a, Some(b"a.example.com:443")), Some(false));
        assert_eq!(succeeds(SAME_NAME, a, None), Some(false));
        assert_eq!(succeeds(SAME_NAME, None, Some(b"")), Some(true));
        assert_eq!(succeeds(SAME_NAME_AND_SNI, None, Some(b"")), Some(false));
        assert_eq!(succeeds(SAME_NAME_AND_SNI, a, a), Some(true));
        assert_eq!(succeeds("true", a, a), None);
    }
}
