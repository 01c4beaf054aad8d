//! The Deluge parser, built with `chumsky` over the tokens of [`crate::lexer`]. [`parse`] is
//! the entry point: a script is either a typed function header with a braced body, or a bare
//! sequence of statements.

// chumsky 0.9's `select!` expands to closures returning `Result<_, Simple<Token>>`, which
// clippy finds large; the error type is chumsky's, so the lint is silenced here.
#![allow(clippy::result_large_err)]

use crate::ast::*;
use crate::lexer::{Token, lex};
use chumsky::Stream;
use chumsky::error::SimpleReason;
use chumsky::prelude::*;

/// A lexical or syntax error with the byte range it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Where the problem is.
    pub span: Span,
    /// What is wrong, in one line.
    pub message: String,
}

impl ParseError {
    /// An error at `span` with `message`.
    pub fn new(span: Span, message: impl Into<String>) -> Self {
        ParseError { span, message: message.into() }
    }
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (at byte {})", self.message, self.span.start)
    }
}

impl std::error::Error for ParseError {}

type E = Simple<Token>;

fn ident() -> impl Parser<Token, Ident, Error = E> + Clone {
    select! { |span| Token::Ident(name) => Ident { name, span } }.labelled("identifier")
}

fn bx(e: Expr) -> Box<Expr> {
    Box::new(e)
}

fn expr() -> impl Parser<Token, Expr, Error = E> + Clone {
    recursive(|expr| {
        let args = expr
            .clone()
            .separated_by(just(Token::Comma))
            .allow_trailing()
            .delimited_by(just(Token::LParen), just(Token::RParen));

        let literal = select! {
            Token::Int(i) => ExprKind::Int(i),
            Token::Decimal(d) => ExprKind::Decimal(d),
            Token::DqString(s) => ExprKind::Str { value: s, quote: '"' },
            Token::SqString(s) => ExprKind::Str { value: s, quote: '\'' },
            Token::True => ExprKind::Bool(true),
            Token::False => ExprKind::Bool(false),
            Token::Null => ExprKind::Null,
        }
        .labelled("literal");

        // A name, or a call when `(` follows: one parser, so a broken argument list is
        // reported where it breaks rather than backtracked over.
        let name_or_call = ident().then(args.clone().or_not()).map(|(func, args)| match args {
            Some(args) => ExprKind::Call { func, args },
            None => ExprKind::Var(func.name),
        });

        let if_expr = just(Token::If)
            .ignore_then(
                expr.clone()
                    .then_ignore(just(Token::Comma))
                    .then(expr.clone())
                    .then_ignore(just(Token::Comma))
                    .then(expr.clone())
                    .delimited_by(just(Token::LParen), just(Token::RParen)),
            )
            .map(|((c, t), o)| ExprKind::IfExpr { cond: bx(c), then: bx(t), otherwise: bx(o) });

        let map_entries = expr
            .clone()
            .then_ignore(just(Token::Colon))
            .then(expr.clone())
            .separated_by(just(Token::Comma))
            .at_least(1)
            .allow_trailing()
            .map(ExprKind::Map);
        let list_items = expr.clone().separated_by(just(Token::Comma)).at_least(1).allow_trailing().map(ExprKind::List);
        let braced = choice((map_entries, list_items))
            .or_not()
            .map(|k| k.unwrap_or(ExprKind::Map(Vec::new())))
            .delimited_by(just(Token::LBrace), just(Token::RBrace));
        let bracketed = expr
            .clone()
            .separated_by(just(Token::Comma))
            .allow_trailing()
            .map(ExprKind::List)
            .delimited_by(just(Token::LBracket), just(Token::RBracket));

        let invoke = just(Token::InvokeUrl).ignore_then(task_params(expr.clone())).map(ExprKind::InvokeUrl);

        let atom = choice((literal, if_expr, invoke, name_or_call, braced, bracketed))
            .map_with_span(|kind, span| Expr { kind, span })
            .or(expr
                .clone()
                .delimited_by(just(Token::LParen), just(Token::RParen))
                .map_with_span(|e: Expr, span| Expr { kind: e.kind, span }));

        let postfix = atom
            .then(
                just(Token::Dot)
                    .ignore_then(ident())
                    .then(args.or_not())
                    .map_with_span(|x, span: Span| (x, span))
                    .repeated(),
            )
            .foldl(|obj, ((name, args), span)| {
                let span = obj.span.start..span.end;
                let kind = match args {
                    Some(args) => ExprKind::Method { receiver: bx(obj), name, args },
                    None => ExprKind::Field { object: bx(obj), name },
                };
                Expr { kind, span }
            })
            .boxed();

        let unary = just(Token::Bang)
            .to(UnaryOp::Not)
            .or(just(Token::Minus).to(UnaryOp::Neg))
            .map_with_span(|op, span: Span| (op, span))
            .repeated()
            .then(postfix)
            .foldr(|(op, span), e| Expr { span: span.start..e.span.end, kind: ExprKind::Unary { op, expr: bx(e) } })
            .boxed();

        fn binary(
            lower: impl Parser<Token, Expr, Error = E> + Clone,
            ops: impl Parser<Token, BinaryOp, Error = E> + Clone,
        ) -> impl Parser<Token, Expr, Error = E> + Clone {
            lower.clone().then(ops.then(lower).repeated()).foldl(|lhs, (op, rhs)| Expr {
                span: lhs.span.start..rhs.span.end,
                kind: ExprKind::Binary { op, lhs: bx(lhs), rhs: bx(rhs) },
            })
        }

        let product = binary(
            unary,
            choice((
                just(Token::Star).to(BinaryOp::Mul),
                just(Token::Slash).to(BinaryOp::Div),
                just(Token::Percent).to(BinaryOp::Rem),
            )),
        )
        .boxed();
        let sum = binary(product, choice((just(Token::Plus).to(BinaryOp::Add), just(Token::Minus).to(BinaryOp::Sub))))
            .boxed();
        let compare = binary(
            sum,
            choice((
                just(Token::EqEq).to(BinaryOp::Eq),
                just(Token::Eq).to(BinaryOp::Eq),
                just(Token::NotEq).to(BinaryOp::Ne),
                just(Token::Le).to(BinaryOp::Le),
                just(Token::Ge).to(BinaryOp::Ge),
                just(Token::Lt).to(BinaryOp::Lt),
                just(Token::Gt).to(BinaryOp::Gt),
            )),
        )
        .boxed();
        let and = binary(compare, just(Token::AndAnd).to(BinaryOp::And)).boxed();
        binary(and, just(Token::OrOr).to(BinaryOp::Or)).boxed()
    })
    .labelled("expression")
}

/// The `[ key: value ... ]` part of `invokeurl` and other task statements; keys lower-cased.
fn task_params(
    expr: impl Parser<Token, Expr, Error = E> + Clone,
) -> impl Parser<Token, Vec<(Ident, Expr)>, Error = E> + Clone {
    let key = select! {
        |span| Token::Ident(name) => Ident { name: name.to_ascii_lowercase(), span },
        Token::KeyName(name) => Ident { name, span },
    }
    .labelled("task key");
    key.then_ignore(just(Token::Colon)).then(expr).repeated().delimited_by(just(Token::LBracket), just(Token::RBracket))
}

fn stmts() -> impl Parser<Token, Vec<Stmt>, Error = E> + Clone {
    recursive(|stmts: Recursive<Token, Vec<Stmt>, E>| {
        let expr = expr();
        let block = stmts
            .delimited_by(just(Token::LBrace), just(Token::RBrace))
            .map_with_span(|stmts, span| Block { stmts, span })
            .boxed();
        let semi = just(Token::Semi);

        let assign_op = choice((
            just(Token::Eq).to(AssignOp::Assign),
            just(Token::PlusEq).to(AssignOp::AddAssign),
            just(Token::MinusEq).to(AssignOp::SubAssign),
        ));
        // The target is a postfix-only expression: a name or a field. Parsing it as a full
        // expression would read `x = 1` as an equality.
        let target = ident()
            .map(|i| Expr { span: i.span.clone(), kind: ExprKind::Var(i.name) })
            .then(just(Token::Dot).ignore_then(ident()).repeated())
            .foldl(|obj, name| Expr {
                span: obj.span.start..name.span.end,
                kind: ExprKind::Field { object: bx(obj), name },
            });
        let assign = target
            .then(assign_op)
            .then(expr.clone())
            .then_ignore(semi.clone())
            .map(|((target, op), value)| StmtKind::Assign { target, op, value });

        let info = just(Token::Info).ignore_then(expr.clone()).then_ignore(semi.clone()).map(StmtKind::Info);
        let ret =
            just(Token::Return).ignore_then(expr.clone().or_not()).then_ignore(semi.clone()).map(StmtKind::Return);
        let brk = just(Token::Break).then_ignore(semi.clone()).to(StmtKind::Break);
        let cont = just(Token::Continue).then_ignore(semi.clone()).to(StmtKind::Continue);

        let cond = expr.clone().delimited_by(just(Token::LParen), just(Token::RParen));
        let if_stmt = just(Token::If)
            .ignore_then(cond.clone())
            .then(block.clone())
            .then(
                just(Token::Else).ignore_then(just(Token::If)).ignore_then(cond.clone()).then(block.clone()).repeated(),
            )
            .then(just(Token::Else).ignore_then(block.clone()).or_not())
            .map(|((first, rest), otherwise)| {
                let mut branches = vec![first];
                branches.extend(rest);
                StmtKind::If { branches, otherwise }
            });

        let for_each = just(Token::For)
            .ignore_then(just(Token::Each))
            .ignore_then(
                // `index` is contextual: `for each index i in l`, but `for each index in l`
                // loops over `l` with a variable named `index`.
                ident()
                    .try_map(|i, span| {
                        if i.name.eq_ignore_ascii_case("index") {
                            Ok(())
                        } else {
                            Err(Simple::custom(span, "expected `index`"))
                        }
                    })
                    .ignore_then(ident())
                    .map(|v| (true, v))
                    .or(ident().map(|v| (false, v))),
            )
            .then_ignore(just(Token::In))
            .then(expr.clone())
            .then(block.clone())
            .map(|(((index, var), iter), body)| StmtKind::ForEach { index, var, iter, body });

        let try_stmt = just(Token::Try)
            .ignore_then(block.clone())
            .then_ignore(just(Token::Catch))
            .then(ident().delimited_by(just(Token::LParen), just(Token::RParen)))
            .then(block)
            .map(|((body, var), handler)| StmtKind::Try { body, var, handler });

        // `sendmail [ ... ]` and the like: a name directly followed by `[` (Deluge has no
        // indexing, so nothing else starts this way); the `;` after `]` is optional.
        let task = ident()
            .then(task_params(expr.clone()))
            .then_ignore(semi.clone().or_not())
            .map(|(name, params)| StmtKind::Task { name, params });
        let expr_stmt = expr.then_ignore(semi).map(StmtKind::Expr);

        choice((if_stmt, for_each, try_stmt, info, ret, brk, cont, task, assign, expr_stmt))
            .map_with_span(|kind, span| Stmt { kind, span })
            .repeated()
    })
}

/// True when the tokens open with a typed header: `type [category.]name(`.
fn starts_with_header(tokens: &[(Token, Span)]) -> bool {
    let kinds: Vec<&Token> = tokens.iter().take(5).map(|(t, _)| t).collect();
    matches!(
        kinds.as_slice(),
        [Token::Ident(_), Token::Ident(_), Token::LParen, ..]
            | [Token::Ident(_), Token::Ident(_), Token::Dot, Token::Ident(_), Token::LParen]
    )
}

fn program(len: usize, has_header: bool) -> impl Parser<Token, Program, Error = E> {
    let param = ident().then(ident()).map_with_span(|(ty, name), span| Param { ty, name, span });
    let header = ident()
        .then(ident().then_ignore(just(Token::Dot)).or_not())
        .then(ident())
        .then(param.separated_by(just(Token::Comma)).delimited_by(just(Token::LParen), just(Token::RParen)))
        .map_with_span(|(((return_type, category), name), params), span| Header {
            return_type,
            category,
            name,
            params,
            span,
        });
    let with_header =
        header.then(stmts().delimited_by(just(Token::LBrace), just(Token::RBrace))).map(|(h, body)| (Some(h), body));
    let bare = stmts().map(|body| (None, body));
    let body = if has_header { with_header.boxed() } else { bare.boxed() };
    body.then_ignore(end()).map(move |(header, body)| Program { header, body, span: 0..len })
}

fn describe(tok: Option<&Token>) -> String {
    match tok {
        None => "end of input".to_string(),
        Some(Token::DqString(_) | Token::SqString(_)) => "a string".to_string(),
        Some(t) => format!("`{t}`"),
    }
}

fn convert(err: E, tokens: &[(Token, Span)]) -> ParseError {
    let found = describe(err.found());
    if let SimpleReason::Custom(msg) = err.reason() {
        return ParseError::new(err.span(), msg.clone());
    }
    if let SimpleReason::Unclosed { span, delimiter } = err.reason() {
        return ParseError::new(span.clone(), format!("unclosed `{delimiter}`"));
    }
    let mut expected: Vec<String> = err
        .expected()
        .map(|t| match t {
            None => "end of input".to_string(),
            Some(t @ (Token::Ident(_) | Token::KeyName(_))) => format!("identifier `{t}`"),
            Some(t) => format!("`{t}`"),
        })
        .collect();
    expected.sort();
    expected.dedup();
    if expected.iter().any(|e| e == "`;`") {
        // A missing `;` is reported right after the token it should follow.
        let start = err.span().start;
        let prev_end = tokens.iter().rev().find(|(_, s)| s.end <= start).map(|(_, s)| s.end);
        if let Some(end) = prev_end {
            return ParseError::new(end..end, format!("expected `;`, found {found}"));
        }
    }
    let msg = match expected.len() {
        0 => format!("unexpected {found}"),
        1 => format!("unexpected {found}, expected {}", expected[0]),
        _ => format!("unexpected {found}, expected one of {}", expected.join(", ")),
    };
    ParseError::new(err.span(), msg)
}

/// Parses a Deluge script: a typed function header with a braced body, or bare statements.
///
/// Before parsing, the token stream is checked against [`MAX_NESTING`] and [`MAX_CHAIN`], so that
/// no input makes the parser, the translation or dropping the tree recurse without bound.
pub fn parse(src: &str) -> Result<Program, Vec<ParseError>> {
    let tokens = lex(src)?;
    check_shape(&tokens).map_err(|e| vec![e])?;
    let len = src.len();
    let stream = Stream::from_iter(len..len, tokens.clone().into_iter());
    program(len, starts_with_header(&tokens))
        .parse(stream)
        .map_err(|errs| errs.into_iter().map(|e| convert(e, &tokens)).collect())
}

/// The deepest nesting of `(`, `[` and `{` a script may have (real functions stay under ten).
pub const MAX_NESTING: usize = 64;

/// The most operators and `.` links one expression may chain at one nesting level
/// (`a + b + ...`, `x.get(0).get(1)...`); the script engine refuses deeper expressions anyway.
pub const MAX_CHAIN: usize = 256;

/// Refuses token streams nested deeper than [`MAX_NESTING`] or chaining more than [`MAX_CHAIN`]
/// operators, naming where.
fn check_shape(tokens: &[(Token, Span)]) -> Result<(), ParseError> {
    let mut depth = 0usize;
    let mut chain = 0usize;
    for (tok, span) in tokens {
        match tok {
            Token::LParen | Token::LBracket | Token::LBrace => {
                depth += 1;
                // `{` opens a block or a map: a new expression. `(` and `[` do not end the
                // chain they are in (`x.get(0).get(1)...` is one chain).
                if *tok == Token::LBrace {
                    chain = 0;
                }
                if depth > MAX_NESTING {
                    return Err(ParseError::new(
                        span.clone(),
                        format!(
                            "brackets nested more than {MAX_NESTING} levels deep: split the expression into variables"
                        ),
                    ));
                }
            }
            Token::RParen | Token::RBracket => depth = depth.saturating_sub(1),
            Token::RBrace => {
                depth = depth.saturating_sub(1);
                chain = 0;
            }
            Token::Semi | Token::Comma | Token::Colon => chain = 0,
            Token::Plus
            | Token::Minus
            | Token::Star
            | Token::Slash
            | Token::Percent
            | Token::EqEq
            | Token::NotEq
            | Token::Le
            | Token::Ge
            | Token::Lt
            | Token::Gt
            | Token::Eq
            | Token::AndAnd
            | Token::OrOr
            | Token::Bang
            | Token::Dot => {
                chain += 1;
                if chain > MAX_CHAIN {
                    return Err(ParseError::new(
                        span.clone(),
                        format!("an expression chains more than {MAX_CHAIN} operators: split it into variables"),
                    ));
                }
            }
            _ => {}
        }
    }
    Ok(())
}
