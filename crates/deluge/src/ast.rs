//! The Deluge syntax tree. Every node carries a [`Span`], a byte range into the source.
//! [`Program::to_sexpr`] prints a stable S-expression form used by the golden tests.

use std::fmt::Write as _;
use std::ops::Range;

/// A byte range into the source text.
pub type Span = Range<usize>;

/// A whole script: an optional typed function header and the statements of its body.
#[derive(Debug, Clone, PartialEq)]
pub struct Program {
    /// `string standalone.name(String a)` when the script has one.
    pub header: Option<Header>,
    /// The statements of the body (inside the header's braces, or the whole script).
    pub body: Vec<Stmt>,
    /// The whole source.
    pub span: Span,
}

/// A typed function header such as `map automation.sync(Int id)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// The return type as written (`void`, `string`, `map`, ...).
    pub return_type: Ident,
    /// The category prefix (`standalone`, `automation`, `button`), if any.
    pub category: Option<Ident>,
    /// The function name.
    pub name: Ident,
    /// The parameters in order.
    pub params: Vec<Param>,
    /// From the return type to the closing parenthesis.
    pub span: Span,
}

/// One typed parameter of a [`Header`].
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    /// The type as written (`String`, `Int`, ...).
    pub ty: Ident,
    /// The parameter name.
    pub name: Ident,
    /// The type and name.
    pub span: Span,
}

/// A name with its span.
#[derive(Debug, Clone, PartialEq)]
pub struct Ident {
    /// The name as written (case kept).
    pub name: String,
    /// Where it is.
    pub span: Span,
}

/// A braced sequence of statements.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    /// The statements.
    pub stmts: Vec<Stmt>,
    /// From `{` to `}`.
    pub span: Span,
}

/// A statement with its span.
#[derive(Debug, Clone, PartialEq)]
pub struct Stmt {
    /// What statement it is.
    pub kind: StmtKind,
    /// From its first token to its `;` or closing brace.
    pub span: Span,
}

/// The assignment operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssignOp {
    /// `=`
    Assign,
    /// `+=`
    AddAssign,
    /// `-=`
    SubAssign,
}

/// The kinds of statement.
#[derive(Debug, Clone, PartialEq)]
pub enum StmtKind {
    /// `target = value;`, `target += value;` or `target -= value;`.
    Assign {
        /// The assigned place (a name or a field).
        target: Expr,
        /// Which operator.
        op: AssignOp,
        /// The value.
        value: Expr,
    },
    /// An expression evaluated for its effect, such as `m.put("k", v);`.
    Expr(Expr),
    /// `info expr;`
    Info(Expr),
    /// `return;` or `return expr;`
    Return(Option<Expr>),
    /// `if (c) { } else if (c) { } else { }`
    If {
        /// Each condition with its block, the first `if` first.
        branches: Vec<(Expr, Block)>,
        /// The final `else` block.
        otherwise: Option<Block>,
    },
    /// `for each x in list { }` or, with `index`, `for each index i in list { }`.
    ForEach {
        /// True for `for each index`.
        index: bool,
        /// The loop variable.
        var: Ident,
        /// The iterated list.
        iter: Expr,
        /// The loop body.
        body: Block,
    },
    /// `break;`
    Break,
    /// `continue;`
    Continue,
    /// A bracketed task statement other than `invokeurl`, such as `sendmail [ to: ... ]`
    /// (linkrun refuses these when translating, naming the task).
    Task {
        /// The task's name as written (`sendmail`).
        name: Ident,
        /// `key: value` pairs; keys lower-cased.
        params: Vec<(Ident, Expr)>,
    },
    /// `try { } catch (e) { }`
    Try {
        /// The guarded block.
        body: Block,
        /// The name the error is bound to.
        var: Ident,
        /// The handler block.
        handler: Block,
    },
}

/// Unary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    /// `!`
    Not,
    /// `-`
    Neg,
}

/// Binary operators. `=` inside an expression parses as [`BinaryOp::Eq`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Rem,
    /// `==` (or `=` in a condition)
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `&&` or `and`
    And,
    /// `||` or `or`
    Or,
}

impl BinaryOp {
    /// The operator's canonical spelling.
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Rem => "%",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::And => "&&",
            BinaryOp::Or => "||",
        }
    }
}

/// An expression with its span.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    /// What expression it is.
    pub kind: ExprKind,
    /// Where it is.
    pub span: Span,
}

/// The kinds of expression.
#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    /// An integer literal.
    Int(i64),
    /// A decimal literal, as written (the later stage picks the representation).
    Decimal(String),
    /// A string literal with escapes resolved; `quote` is `'` or `"`. Date literals are
    /// single-quoted strings.
    Str {
        /// The text.
        value: String,
        /// The quote character used.
        quote: char,
    },
    /// `true` or `false`.
    Bool(bool),
    /// `null`.
    Null,
    /// A bare name.
    Var(String),
    /// `{"k": v, ...}`; `{}` is an empty map.
    Map(Vec<(Expr, Expr)>),
    /// `{a, b}` or `[a, b]`.
    List(Vec<Expr>),
    /// `object.name` without a call.
    Field {
        /// The object.
        object: Box<Expr>,
        /// The field name.
        name: Ident,
    },
    /// `name(args)`, a free function call.
    Call {
        /// The function name.
        func: Ident,
        /// The arguments.
        args: Vec<Expr>,
    },
    /// `receiver.name(args)`, including dotted built-ins like `zoho.crm.getRecordById(...)`.
    Method {
        /// The receiver.
        receiver: Box<Expr>,
        /// The method name.
        name: Ident,
        /// The arguments.
        args: Vec<Expr>,
    },
    /// `!e` or `-e`.
    Unary {
        /// The operator.
        op: UnaryOp,
        /// The operand.
        expr: Box<Expr>,
    },
    /// `a op b`.
    Binary {
        /// The operator.
        op: BinaryOp,
        /// Left operand.
        lhs: Box<Expr>,
        /// Right operand.
        rhs: Box<Expr>,
    },
    /// `if(cond, then, else)` as an expression.
    IfExpr {
        /// The condition.
        cond: Box<Expr>,
        /// The value when true.
        then: Box<Expr>,
        /// The value when false.
        otherwise: Box<Expr>,
    },
    /// `invokeurl [ key: value ... ]`; keys are kept lower-cased (`url`, `content-type`, ...).
    InvokeUrl(Vec<(Ident, Expr)>),
}

/// `s` as a double-quoted literal with `\"`, `\\`, `\n`, `\t`, `\r` and `\u{..}` escapes: the
/// S-expressions of the golden tests, and Rhai string literals in the translation.
pub(crate) fn quote_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Program {
    /// A stable S-expression rendering of the tree (no spans), one statement per line.
    pub fn to_sexpr(&self) -> String {
        let mut out = String::new();
        if let Some(h) = &self.header {
            let _ = write!(out, "(header {}", h.return_type.name);
            if let Some(c) = &h.category {
                let _ = write!(out, " {}.{}", c.name, h.name.name);
            } else {
                let _ = write!(out, " {}", h.name.name);
            }
            out.push_str(" (params");
            for p in &h.params {
                let _ = write!(out, " ({} {})", p.ty.name, p.name.name);
            }
            out.push_str("))\n");
        }
        for s in &self.body {
            s.write_sexpr(&mut out, 0);
        }
        out
    }
}

fn indent(out: &mut String, depth: usize) {
    for _ in 0..depth {
        out.push_str("  ");
    }
}

impl Block {
    fn write_sexpr(&self, out: &mut String, depth: usize) {
        indent(out, depth);
        out.push_str("(block\n");
        for s in &self.stmts {
            s.write_sexpr(out, depth + 1);
        }
        indent(out, depth);
        out.push_str(")\n");
    }
}

impl Stmt {
    /// Appends this statement's S-expression, indented two spaces per `depth`.
    pub fn write_sexpr(&self, out: &mut String, depth: usize) {
        indent(out, depth);
        match &self.kind {
            StmtKind::Assign { target, op, value } => {
                let op = match op {
                    AssignOp::Assign => "=",
                    AssignOp::AddAssign => "+=",
                    AssignOp::SubAssign => "-=",
                };
                let _ = writeln!(out, "({op} {} {})", target.to_sexpr(), value.to_sexpr());
            }
            StmtKind::Expr(e) => {
                let _ = writeln!(out, "(expr {})", e.to_sexpr());
            }
            StmtKind::Info(e) => {
                let _ = writeln!(out, "(info {})", e.to_sexpr());
            }
            StmtKind::Return(None) => out.push_str("(return)\n"),
            StmtKind::Return(Some(e)) => {
                let _ = writeln!(out, "(return {})", e.to_sexpr());
            }
            StmtKind::Break => out.push_str("(break)\n"),
            StmtKind::Continue => out.push_str("(continue)\n"),
            StmtKind::If { branches, otherwise } => {
                out.push_str("(if\n");
                for (cond, block) in branches {
                    indent(out, depth + 1);
                    let _ = writeln!(out, "(cond {}", cond.to_sexpr());
                    block.write_sexpr(out, depth + 2);
                    indent(out, depth + 1);
                    out.push_str(")\n");
                }
                if let Some(b) = otherwise {
                    indent(out, depth + 1);
                    out.push_str("(else\n");
                    b.write_sexpr(out, depth + 2);
                    indent(out, depth + 1);
                    out.push_str(")\n");
                }
                indent(out, depth);
                out.push_str(")\n");
            }
            StmtKind::ForEach { index, var, iter, body } => {
                let kw = if *index { "for-each-index" } else { "for-each" };
                let _ = writeln!(out, "({kw} {} {}", var.name, iter.to_sexpr());
                body.write_sexpr(out, depth + 1);
                indent(out, depth);
                out.push_str(")\n");
            }
            StmtKind::Task { name, params } => {
                let body: String = params.iter().map(|(k, v)| format!(" ({} {})", k.name, v.to_sexpr())).collect();
                let _ = writeln!(out, "(task {}{body})", name.name);
            }
            StmtKind::Try { body, var, handler } => {
                out.push_str("(try\n");
                body.write_sexpr(out, depth + 1);
                indent(out, depth + 1);
                let _ = writeln!(out, "(catch {}", var.name);
                handler.write_sexpr(out, depth + 2);
                indent(out, depth + 1);
                out.push_str(")\n");
                indent(out, depth);
                out.push_str(")\n");
            }
        }
    }
}

impl Expr {
    /// A one-line S-expression for this expression (no spans).
    pub fn to_sexpr(&self) -> String {
        let list =
            |items: &[Expr]| -> String { items.iter().map(|e| format!(" {}", e.to_sexpr())).collect::<String>() };
        match &self.kind {
            ExprKind::Int(i) => i.to_string(),
            ExprKind::Decimal(d) => format!("(decimal {d})"),
            ExprKind::Str { value, quote: '\'' } => format!("(sq {})", quote_str(value)),
            ExprKind::Str { value, .. } => quote_str(value),
            ExprKind::Bool(b) => b.to_string(),
            ExprKind::Null => "null".to_string(),
            ExprKind::Var(v) => v.clone(),
            ExprKind::Map(entries) => {
                let body: String =
                    entries.iter().map(|(k, v)| format!(" ({} {})", k.to_sexpr(), v.to_sexpr())).collect();
                format!("(map{body})")
            }
            ExprKind::List(items) => format!("(list{})", list(items)),
            ExprKind::Field { object, name } => {
                format!("(field {} {})", object.to_sexpr(), name.name)
            }
            ExprKind::Call { func, args } => format!("(call {}{})", func.name, list(args)),
            ExprKind::Method { receiver, name, args } => {
                format!("(method {} {}{})", receiver.to_sexpr(), name.name, list(args))
            }
            ExprKind::Unary { op, expr } => {
                let op = match op {
                    UnaryOp::Not => "!",
                    UnaryOp::Neg => "neg",
                };
                format!("({op} {})", expr.to_sexpr())
            }
            ExprKind::Binary { op, lhs, rhs } => {
                format!("({} {} {})", op.symbol(), lhs.to_sexpr(), rhs.to_sexpr())
            }
            ExprKind::IfExpr { cond, then, otherwise } => {
                format!("(if-expr {} {} {})", cond.to_sexpr(), then.to_sexpr(), otherwise.to_sexpr())
            }
            ExprKind::InvokeUrl(params) => {
                let body: String = params.iter().map(|(k, v)| format!(" ({} {})", k.name, v.to_sexpr())).collect();
                format!("(invokeurl{body})")
            }
        }
    }
}
