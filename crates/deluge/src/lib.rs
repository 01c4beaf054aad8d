//! Front end for Zoho Deluge scripts: a lexer ([`lexer`]), a parser ([`parser`]) building the
//! AST in [`ast`], plain-text error reports ([`report`]) and the translation to Rhai
//! ([`to_rhai`]) that linkrun runs and `linkrun port` writes.
//!
//! ```
//! let program = deluge::parse("x = 1;\ninfo x;").expect("parses");
//! assert_eq!(program.body.len(), 2);
//! ```

pub mod ast;
pub mod lexer;
pub mod parser;
pub mod report;
pub mod to_rhai;

pub use ast::Program;
pub use parser::{ParseError, parse};
pub use report::{line_col, report};
pub use to_rhai::{Translation, translate};
