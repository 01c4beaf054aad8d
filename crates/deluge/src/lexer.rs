//! The Deluge lexer, built with `logos`. Keywords are case-insensitive; `//` line comments,
//! `/* */` block comments and whitespace are skipped. [`lex`] turns a source into spanned
//! tokens or lexical errors (unterminated strings and comments, bad characters, integers out
//! of the `i64` range). `index` is not a keyword (it is a common variable name): the parser
//! recognises it after `for each`.

use crate::ast::Span;
use crate::parser::ParseError;
use logos::Logos;
use std::fmt;

fn unescape(lex: &mut logos::Lexer<Token>) -> String {
    let s = lex.slice();
    let inner = &s[1..s.len() - 1];
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(c @ ('"' | '\'' | '\\')) => out.push(c),
            Some(c) => {
                out.push('\\');
                out.push(c);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// A Deluge token.
#[derive(Logos, Debug, Clone, PartialEq, Eq, Hash)]
#[logos(skip r"[ \t\r\n\f]+")]
#[logos(skip r"//[^\n]*")]
#[logos(skip r"/\*([^*]|\*+[^*/])*\*+/")]
pub enum Token {
    /// `if`
    #[token("if", ignore(ascii_case))]
    If,
    /// `else`
    #[token("else", ignore(ascii_case))]
    Else,
    /// `for`
    #[token("for", ignore(ascii_case))]
    For,
    /// `each`
    #[token("each", ignore(ascii_case))]
    Each,
    /// `in`
    #[token("in", ignore(ascii_case))]
    In,
    /// `return`
    #[token("return", ignore(ascii_case))]
    Return,
    /// `info`
    #[token("info", ignore(ascii_case))]
    Info,
    /// `break`
    #[token("break", ignore(ascii_case))]
    Break,
    /// `continue`
    #[token("continue", ignore(ascii_case))]
    Continue,
    /// `try`
    #[token("try", ignore(ascii_case))]
    Try,
    /// `catch`
    #[token("catch", ignore(ascii_case))]
    Catch,
    /// `invokeurl`
    #[token("invokeurl", ignore(ascii_case))]
    InvokeUrl,
    /// `true`
    #[token("true", ignore(ascii_case))]
    True,
    /// `false`
    #[token("false", ignore(ascii_case))]
    False,
    /// `null`
    #[token("null", ignore(ascii_case))]
    Null,
    /// `&&` or `and`
    #[token("&&")]
    #[token("and", ignore(ascii_case))]
    AndAnd,
    /// `||` or `or`
    #[token("||")]
    #[token("or", ignore(ascii_case))]
    OrOr,
    /// An identifier (case kept).
    #[regex(r"[A-Za-z_][A-Za-z0-9_]*", |lex| lex.slice().to_string())]
    Ident(String),
    /// A hyphenated `invokeurl` key (`content-type`, `response-format`), lower-cased.
    #[token("content-type", |lex| lex.slice().to_ascii_lowercase(), ignore(ascii_case))]
    #[token("response-format", |lex| lex.slice().to_ascii_lowercase(), ignore(ascii_case))]
    KeyName(String),
    /// An integer literal.
    #[regex(r"[0-9]+", |lex| lex.slice().parse::<i64>().ok())]
    Int(i64),
    /// A decimal literal, as written.
    #[regex(r"[0-9]+\.[0-9]+", |lex| lex.slice().to_string())]
    Decimal(String),
    /// A double-quoted string, escapes resolved.
    #[regex(r#""([^"\\]|\\.)*""#, unescape)]
    DqString(String),
    /// A single-quoted string (also date literals), escapes resolved.
    #[regex(r#"'([^'\\]|\\.)*'"#, unescape)]
    SqString(String),
    /// A string with no closing quote (always an error).
    #[regex(r#""([^"\\]|\\.)*"#)]
    #[regex(r#"'([^'\\]|\\.)*"#)]
    UnterminatedString,
    /// A `/*` comment with no closing `*/` (always an error).
    #[regex(r"/\*([^*]|\*+[^*/])*\**")]
    UnterminatedComment,
    /// `+=`
    #[token("+=")]
    PlusEq,
    /// `-=`
    #[token("-=")]
    MinusEq,
    /// `==`
    #[token("==")]
    EqEq,
    /// `!=`
    #[token("!=")]
    NotEq,
    /// `<=`
    #[token("<=")]
    Le,
    /// `>=`
    #[token(">=")]
    Ge,
    /// `<`
    #[token("<")]
    Lt,
    /// `>`
    #[token(">")]
    Gt,
    /// `=`
    #[token("=")]
    Eq,
    /// `+`
    #[token("+")]
    Plus,
    /// `-`
    #[token("-")]
    Minus,
    /// `*`
    #[token("*")]
    Star,
    /// `/`
    #[token("/")]
    Slash,
    /// `%`
    #[token("%")]
    Percent,
    /// `!`
    #[token("!")]
    Bang,
    /// `(`
    #[token("(")]
    LParen,
    /// `)`
    #[token(")")]
    RParen,
    /// `{`
    #[token("{")]
    LBrace,
    /// `}`
    #[token("}")]
    RBrace,
    /// `[`
    #[token("[")]
    LBracket,
    /// `]`
    #[token("]")]
    RBracket,
    /// `,`
    #[token(",")]
    Comma,
    /// `;`
    #[token(";")]
    Semi,
    /// `:`
    #[token(":")]
    Colon,
    /// `.`
    #[token(".")]
    Dot,
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Token::If => "if",
            Token::Else => "else",
            Token::For => "for",
            Token::Each => "each",
            Token::In => "in",
            Token::Return => "return",
            Token::Info => "info",
            Token::Break => "break",
            Token::Continue => "continue",
            Token::Try => "try",
            Token::Catch => "catch",
            Token::InvokeUrl => "invokeurl",
            Token::True => "true",
            Token::False => "false",
            Token::Null => "null",
            Token::AndAnd => "&&",
            Token::OrOr => "||",
            Token::Ident(s) | Token::KeyName(s) => return write!(f, "{s}"),
            Token::Int(i) => return write!(f, "{i}"),
            Token::Decimal(d) => return write!(f, "{d}"),
            Token::DqString(_) | Token::SqString(_) => "string",
            Token::UnterminatedString => "unterminated string",
            Token::UnterminatedComment => "unterminated comment",
            Token::PlusEq => "+=",
            Token::MinusEq => "-=",
            Token::EqEq => "==",
            Token::NotEq => "!=",
            Token::Le => "<=",
            Token::Ge => ">=",
            Token::Lt => "<",
            Token::Gt => ">",
            Token::Eq => "=",
            Token::Plus => "+",
            Token::Minus => "-",
            Token::Star => "*",
            Token::Slash => "/",
            Token::Percent => "%",
            Token::Bang => "!",
            Token::LParen => "(",
            Token::RParen => ")",
            Token::LBrace => "{",
            Token::RBrace => "}",
            Token::LBracket => "[",
            Token::RBracket => "]",
            Token::Comma => ",",
            Token::Semi => ";",
            Token::Colon => ":",
            Token::Dot => ".",
        };
        f.write_str(s)
    }
}

/// Splits `src` into spanned tokens, or returns every lexical error found.
pub fn lex(src: &str) -> Result<Vec<(Token, Span)>, Vec<ParseError>> {
    let mut tokens = Vec::new();
    let mut errors = Vec::new();
    for (tok, span) in Token::lexer(src).spanned() {
        match tok {
            Ok(Token::UnterminatedString) => {
                errors.push(ParseError::new(span.start..span.start + 1, "unterminated string literal"))
            }
            Ok(Token::UnterminatedComment) => {
                errors.push(ParseError::new(span.start..span.start + 2, "unterminated block comment"))
            }
            Ok(t) => tokens.push((t, span)),
            Err(()) => {
                let text = &src[span.clone()];
                let msg = if text.starts_with(|c: char| c.is_ascii_digit()) {
                    format!("integer literal `{text}` does not fit in 64 bits")
                } else {
                    format!("unexpected character `{text}`")
                };
                errors.push(ParseError::new(span, msg));
            }
        }
    }
    if errors.is_empty() { Ok(tokens) } else { Err(errors) }
}
