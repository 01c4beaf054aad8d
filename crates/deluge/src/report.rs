//! Plain-text error reports: `file:line:col: message`, then the source line and a caret under
//! the offending column. No colours, so the output is stable for tests.

use crate::parser::ParseError;

/// The 1-based line and column (in characters) of byte `offset` in `src`. An offset past the
/// end, or inside a character, is clamped to the nearest character boundary before it.
pub fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(src.len());
    while !src.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &src[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = src[line_start..offset].chars().count() + 1;
    (line, col)
}

/// Renders `err` for `src` as `file:line:col: message`, the quoted source line and a caret
/// (one `^` per character of the span on that line, at least one).
pub fn report(src: &str, file_name: &str, err: &ParseError) -> String {
    let (line, col) = line_col(src, err.span.start);
    let text = src.lines().nth(line - 1).unwrap_or("");
    let text = text.strip_suffix('\r').unwrap_or(text);
    let width = line.to_string().len();
    let start = err.span.start.min(src.len());
    let end = err.span.end.clamp(start, src.len());
    let in_line = src.get(start..end).map_or(0, |s| s.split('\n').next().unwrap_or("").chars().count());
    let carets = "^".repeat(in_line.max(1));
    // Tabs before the column are kept so the caret lines up under tab-indented code.
    let pad: String = text.chars().take(col - 1).map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
    let gutter = " ".repeat(width);
    format!("{file_name}:{line}:{col}: error: {}\n{gutter} |\n{line} | {text}\n{gutter} | {pad}{carets}\n", err.message)
}
