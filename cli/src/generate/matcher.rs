//! Envoy's same-name matcher in front of the filter (the EnvoyFilter form and plain Envoy): an
//! `ExtensionWithMatcher` whose CEL matcher skips sni-guard for a request whose `:authority` is
//! exactly the SNI, without a call into Wasm.
//!
//! Envoy 1.40 takes the CEL expression there only parsed (`cel_expr_parsed`; it refuses
//! `cel_expr_string`), so this module writes, for each of the filter's tests
//! (`sni_guard::cel::SameNameTest`), the parsed form of its text: the tree
//! `e2e/support/matcher.py` `parsed(text)` builds, node ids numbered from 1 in pre-order (a
//! node, then its call target, then its arguments). A test in `cli/tests/matcher.rs` checks the
//! two agree for every text.

use serde::Serialize;
use serde_json::Value;
use sni_guard::cel::{SameNameTest, DOTTED_NAME_REGEX};

pub const EXTENSION_WITH_MATCHER: &str = "type.googleapis.com/envoy.extensions.common.matching.v3.ExtensionWithMatcher";
pub const CEL_INPUT: &str = "type.googleapis.com/xds.type.matcher.v3.HttpAttributesCelMatchInput";
pub const CEL_MATCHER: &str = "type.googleapis.com/xds.type.matcher.v3.CelMatcher";
pub const SKIP_FILTER: &str = "type.googleapis.com/envoy.extensions.filters.common.matcher.action.v3.SkipFilter";

/// One node of a parsed CEL expression (`google.api.expr.v1alpha1.Expr`), as Envoy reads it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Expr {
    pub id: u32,
    #[serde(flatten)]
    pub kind: ExprKind,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExprKind {
    IdentExpr {
        name: &'static str,
    },
    SelectExpr {
        operand: Box<Expr>,
        field: &'static str,
    },
    ConstExpr {
        string_value: &'static str,
    },
    CallExpr {
        function: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        target: Option<Box<Expr>>,
        args: Vec<Expr>,
    },
}

/// The tree before numbering.
enum Node {
    Select(&'static str, &'static str),
    Str(&'static str),
    Call(&'static str, Option<Box<Node>>, Vec<Node>),
}

fn call(function: &'static str, args: Vec<Node>) -> Node {
    Node::Call(function, None, args)
}

fn tree(test: SameNameTest) -> Node {
    let same_name =
        || call("_==_", vec![Node::Select("request", "host"), Node::Select("connection", "requested_server_name")]);
    let no_trailing_dot = || {
        call("!_", vec![Node::Call("endsWith", Some(Box::new(Node::Select("request", "host"))), vec![Node::Str(".")])])
    };
    match test {
        // request.host == connection.requested_server_name
        SameNameTest::Plain => same_name(),
        // ... && !request.host.endsWith('.')
        SameNameTest::NoTrailingDot => call("_&&_", vec![same_name(), no_trailing_dot()]),
        // connection.requested_server_name != '' && (the one above), as matcher.py groups it
        SameNameTest::WithSni => call(
            "_&&_",
            vec![
                call("_!=_", vec![Node::Select("connection", "requested_server_name"), Node::Str("")]),
                call("_&&_", vec![same_name(), no_trailing_dot()]),
            ],
        ),
        // request.host == connection.requested_server_name && request.host.matches('...')
        SameNameTest::HostName => call(
            "_&&_",
            vec![
                same_name(),
                Node::Call(
                    "matches",
                    Some(Box::new(Node::Select("request", "host"))),
                    vec![Node::Str(DOTTED_NAME_REGEX)],
                ),
            ],
        ),
    }
}

fn number(node: Node, next: &mut u32) -> Expr {
    *next += 1;
    let id = *next;
    let kind = match node {
        Node::Select(operand, field) => {
            *next += 1;
            let operand = Expr { id: *next, kind: ExprKind::IdentExpr { name: operand } };
            ExprKind::SelectExpr { operand: Box::new(operand), field }
        }
        Node::Str(value) => ExprKind::ConstExpr { string_value: value },
        Node::Call(function, target, args) => {
            let target = target.map(|t| Box::new(number(*t, next)));
            let args = args.into_iter().map(|a| number(a, next)).collect();
            ExprKind::CallExpr { function, target, args }
        }
    };
    Expr { id, kind }
}

/// The parsed expression of `test`'s text, as `cel_expr_parsed.expr`.
pub fn parsed_expr(test: SameNameTest) -> Expr {
    number(tree(test), &mut 0)
}

/// The whole `cel_expr_parsed` value (`{"expr": ...}`), as JSON, for comparing with what a
/// deployed matcher holds.
pub fn parsed_value(test: SameNameTest) -> Value {
    serde_json::json!({ "expr": parsed_expr(test) })
}

/// `xds_matcher` of the `ExtensionWithMatcher`: one CEL matcher whose match skips the filter.
#[derive(Debug, Serialize)]
pub struct XdsMatcher {
    matcher_list: MatcherList,
}

#[derive(Debug, Serialize)]
struct MatcherList {
    matchers: [FieldMatcher; 1],
}

#[derive(Debug, Serialize)]
struct FieldMatcher {
    predicate: Predicate,
    on_match: OnMatch,
}

#[derive(Debug, Serialize)]
struct Predicate {
    single_predicate: SinglePredicate,
}

#[derive(Debug, Serialize)]
struct SinglePredicate {
    input: Typed<Empty>,
    custom_match: Typed<CelMatcher>,
}

#[derive(Debug, Serialize)]
struct OnMatch {
    action: Typed<Empty>,
}

/// `{name, typed_config: {"@type": ..., ...}}`.
#[derive(Debug, Serialize)]
struct Typed<T> {
    name: &'static str,
    typed_config: TypedConfig<T>,
}

#[derive(Debug, Serialize)]
struct TypedConfig<T> {
    #[serde(rename = "@type")]
    type_url: &'static str,
    #[serde(flatten)]
    body: T,
}

#[derive(Debug, Serialize)]
struct Empty {}

#[derive(Debug, Serialize)]
struct CelMatcher {
    description: &'static str,
    expr_match: ExprMatch,
}

#[derive(Debug, Serialize)]
struct ExprMatch {
    cel_expr_parsed: ParsedExpr,
}

#[derive(Debug, Serialize)]
struct ParsedExpr {
    expr: Expr,
}

/// The matcher that skips sni-guard when `test` holds; its `description` is the test's text.
pub fn xds_matcher(test: SameNameTest) -> XdsMatcher {
    XdsMatcher {
        matcher_list: MatcherList {
            matchers: [FieldMatcher {
                predicate: Predicate {
                    single_predicate: SinglePredicate {
                        input: Typed {
                            name: "request-attributes",
                            typed_config: TypedConfig { type_url: CEL_INPUT, body: Empty {} },
                        },
                        custom_match: Typed {
                            name: "same-name",
                            typed_config: TypedConfig {
                                type_url: CEL_MATCHER,
                                body: CelMatcher {
                                    description: test.text(),
                                    expr_match: ExprMatch { cel_expr_parsed: ParsedExpr { expr: parsed_expr(test) } },
                                },
                            },
                        },
                    },
                },
                on_match: OnMatch {
                    action: Typed {
                        name: "skip-sni-guard",
                        typed_config: TypedConfig { type_url: SKIP_FILTER, body: Empty {} },
                    },
                },
            }],
        },
    }
}

/// What is wrong with a deployed `xds_matcher` in front of a filter whose configuration names
/// `test` in `same_name_matcher`: empty when it is sni-guard's matcher for that test (one CEL
/// matcher on the request's attributes, the parsed expression of `test`'s text, skipping the
/// filter on a match).
pub fn problems(xds_matcher: &Value, test: SameNameTest) -> Vec<String> {
    let mut problems = Vec::new();
    let matchers = xds_matcher.pointer("/matcher_list/matchers").and_then(Value::as_array);
    let Some([matcher]) = matchers.map(Vec::as_slice) else {
        return vec!["xds_matcher: expected matcher_list.matchers with one matcher, sni-guard's same-name test".into()];
    };
    let predicate = matcher.pointer("/predicate/single_predicate");
    let type_at = |pointer: &str| predicate.and_then(|p| p.pointer(pointer)).and_then(Value::as_str);
    if type_at("/input/typed_config/@type") != Some(CEL_INPUT) {
        problems.push(format!("the matcher's input is not {CEL_INPUT}"));
    }
    if type_at("/custom_match/typed_config/@type") != Some(CEL_MATCHER) {
        problems.push(format!("the matcher's custom_match is not {CEL_MATCHER}"));
    }
    match predicate.and_then(|p| p.pointer("/custom_match/typed_config/expr_match/cel_expr_parsed")) {
        Some(parsed) if *parsed == parsed_value(test) => {}
        Some(parsed) => {
            let named = SameNameTest::ALL.into_iter().find(|t| *parsed == parsed_value(*t));
            problems.push(match named {
                Some(other) => format!(
                    "the matcher's parsed expression is {:?}, not {:?} as same_name_matcher says",
                    other.text(),
                    test.text()
                ),
                None => format!(
                    "the matcher's parsed expression is none of sni-guard's same-name tests; for {:?} it is \
                     what `sni-guard config --kind envoyfilter` writes",
                    test.text()
                ),
            });
        }
        None => problems.push("the matcher has no expr_match.cel_expr_parsed (Envoy 1.40 takes no CEL text)".into()),
    }
    if let Some(description) = predicate.and_then(|p| p.pointer("/custom_match/typed_config/description")) {
        if description.as_str() != Some(test.text()) {
            problems.push(format!("the matcher's description is {description}, not {:?}", test.text()));
        }
    }
    if matcher.pointer("/on_match/action/typed_config/@type").and_then(Value::as_str) != Some(SKIP_FILTER) {
        problems.push(format!("the matcher's action is not {SKIP_FILTER}"));
    }
    if xds_matcher.get("on_no_match").is_some() {
        problems
            .push("xds_matcher has on_no_match: every request the test does not settle must reach the filter".into());
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_numbered_in_pre_order() {
        let value = serde_json::to_value(parsed_expr(SameNameTest::Plain)).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"id": 1, "call_expr": {"function": "_==_", "args": [
                {"id": 2, "select_expr": {"operand": {"id": 3, "ident_expr": {"name": "request"}}, "field": "host"}},
                {"id": 4, "select_expr": {"operand": {"id": 5, "ident_expr": {"name": "connection"}},
                                          "field": "requested_server_name"}}]}})
        );
        let no_dot = serde_json::to_value(parsed_expr(SameNameTest::NoTrailingDot)).unwrap();
        // `_&&_` is 1, its `_==_` 2 to 6; `!_` 7, its `endsWith` 8, the call's target (request.host)
        // 9 and 10, then '.' 11.
        assert_eq!(no_dot.pointer("/call_expr/args/1/id"), Some(&Value::from(7)));
        let ends_with = no_dot.pointer("/call_expr/args/1/call_expr/args/0").unwrap();
        assert_eq!(ends_with["id"], 8);
        assert_eq!(ends_with.pointer("/call_expr/target/id"), Some(&Value::from(9)));
        assert_eq!(
            ends_with.pointer("/call_expr/args/0"),
            Some(&serde_json::json!({"id": 11, "const_expr": {"string_value": "."}}))
        );
    }

    #[test]
    fn a_deployed_matcher_is_checked_against_the_named_test() {
        for test in SameNameTest::ALL {
            let written = serde_json::to_value(xds_matcher(test)).unwrap();
            assert_eq!(problems(&written, test), Vec::<String>::new(), "{test:?}");
        }
        let plain = serde_json::to_value(xds_matcher(SameNameTest::Plain)).unwrap();
        let found = problems(&plain, SameNameTest::NoTrailingDot);
        assert!(
            found
                .iter()
                .any(|p| p.contains("parsed expression is \"request.host == connection.requested_server_name\"")),
            "{found:?}"
        );
        let mut edited = plain.clone();
        edited["matcher_list"]["matchers"][0]["predicate"]["single_predicate"]["custom_match"]["typed_config"]
            ["expr_match"]["cel_expr_parsed"]["expr"]["id"] = Value::from(9);
        let found = problems(&edited, SameNameTest::Plain);
        assert!(found.iter().any(|p| p.contains("none of sni-guard's same-name tests")), "{found:?}");
        assert_eq!(problems(&serde_json::json!({}), SameNameTest::Plain).len(), 1);
    }
}
