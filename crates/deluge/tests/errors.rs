//! Error reports asserted as exact text, plus `line_col` and span checks.

use deluge::ast::{ExprKind, StmtKind};

fn report_of(src: &str) -> String {
    match deluge::parse(src) {
        Ok(p) => panic!("expected an error, parsed {}", p.to_sexpr()),
        Err(errs) => errs.iter().map(|e| deluge::report(src, "fn.dg", e)).collect(),
    }
}

#[test]
fn unterminated_string_points_at_opening_quote() {
    let src = "a = 1;\nb = 'dd-MMM-yyyy;\n";
    assert_eq!(
        report_of(src),
        "fn.dg:2:5: error: unterminated string literal\n  |\n2 | b = 'dd-MMM-yyyy;\n  |     ^\n"
    );
}

#[test]
fn missing_semicolon_points_after_previous_token() {
    let src = "void standalone.f()\n{\n\tfor each r in rows\n\t{\n\t\tx = r.get(\"a\")\n\t}\n}\n";
    assert_eq!(
        report_of(src),
        "fn.dg:5:17: error: expected `;`, found `}`\n  |\n5 | \t\tx = r.get(\"a\")\n  | \t\t              ^\n"
    );
}

#[test]
fn unexpected_token_lists_expected() {
    let src = "m = {\"a\": 1, \"b\" 2};";
    assert_eq!(
        report_of(src),
        "fn.dg:1:18: error: unexpected `2`, expected one of `!=`, `%`, `&&`, `*`, `+`, `-`, `.`, `/`, `:`, `<=`, `<`, `==`, `=`, `>=`, `>`, `||`\n  |\n1 | m = {\"a\": 1, \"b\" 2};\n  |                  ^\n"
    );
}

#[test]
fn broken_argument_list_reported_where_it_breaks() {
    let report = report_of("x = foo(1, 2;\n");
    assert!(report.starts_with("fn.dg:1:13: error: unexpected `;`"), "{report}");
}

#[test]
fn lexical_errors() {
    assert_eq!(
        report_of("x = 99999999999999999999;"),
        "fn.dg:1:5: error: integer literal `99999999999999999999` does not fit in 64 bits\n  |\n1 | x = 99999999999999999999;\n  |     ^^^^^^^^^^^^^^^^^^^^\n"
    );
    assert!(report_of("x = 1; /* open\n").starts_with("fn.dg:1:8: error: unterminated block comment"));
    assert!(report_of("x = 1 # 2;").starts_with("fn.dg:1:7: error: unexpected character `#`"));
}

#[test]
fn line_col_counts_lines_and_chars() {
    let src = "ab\ncé d\n";
    assert_eq!(deluge::line_col(src, 0), (1, 1));
    assert_eq!(deluge::line_col(src, 3), (2, 1));
    assert_eq!(deluge::line_col(src, 6), (2, 3));
    assert_eq!(deluge::line_col(src, 5), (2, 2)); // inside `é`: clamped
    assert_eq!(deluge::line_col(src, 100), (3, 1));
}

#[test]
fn spans_cover_nodes() {
    let src = "resp = zoho.crm.getRecordById(\"Leads\", 4876876000012345678);";
    let p = deluge::parse(src).expect("parses");
    let stmt = &p.body[0];
    assert_eq!(stmt.span, 0..src.len());
    let StmtKind::Assign { target, value, .. } = &stmt.kind else {
        panic!("not an assignment");
    };
    assert_eq!(&src[target.span.clone()], "resp");
    assert_eq!(&src[value.span.clone()], &src[7..src.len() - 1]);
    let ExprKind::Method { args, .. } = &value.kind else {
        panic!("not a method call");
    };
    assert_eq!(args[1].kind, ExprKind::Int(4876876000012345678));
    assert_eq!(&src[args[1].span.clone()], "4876876000012345678");
}

#[test]
fn keywords_are_case_insensitive() {
    let a = deluge::parse("IF (x) { INFO x; } ELSE { Return NULL; }").expect("parses");
    let b = deluge::parse("if (x) { info x; } else { return null; }").expect("parses");
    assert_eq!(a.to_sexpr(), b.to_sexpr());
}

#[test]
fn empty_braces_are_a_map() {
    let p = deluge::parse("m = {}; l = {1}; n = [];").expect("parses");
    assert_eq!(p.to_sexpr(), "(= m (map))\n(= l (list 1))\n(= n (list))\n");
}

#[test]
fn index_is_contextual() {
    let p = deluge::parse("index = 0;\nfor each index in l { index += 1; }\nfor each INDEX i in l { info i; }")
        .expect("parses");
    assert_eq!(
        p.to_sexpr(),
        "(= index 0)\n(for-each index l\n  (block\n    (+= index 1)\n  )\n)\n\
         (for-each-index i l\n  (block\n    (info i)\n  )\n)\n"
    );
}

#[test]
fn nesting_and_chains_past_the_limits_are_refused_not_recursed_into() {
    let deep = format!("x = {}1{};", "(".repeat(100_000), ")".repeat(100_000));
    let report = report_of(&deep);
    assert!(report.starts_with("fn.dg:1:69: error: brackets nested more than 64 levels deep"), "{report}");
    let long = format!("x = 1{};", " + 1".repeat(100_000));
    let report = report_of(&long);
    assert!(report.contains("chains more than 256 operators"), "{report}");
    let calls = format!("x = m{};", ".get(0)".repeat(100_000));
    assert!(report_of(&calls).contains("chains more than 256 operators"));
    // Within the limits, it parses.
    let ok = format!("x = {}1{};\ny = 1{};", "(".repeat(64), ")".repeat(64), " + 1".repeat(200));
    assert!(deluge::parse(&ok).is_ok());
}
