//! Markdown escapes: every value from the plan (names, ARNs, messages, diffs) goes through one of
//! these, so a crafted value cannot close its code span or fence, open an HTML comment, break a
//! table row or a Mermaid label, and so cannot hide what follows it in report.md.

use std::fmt::Write;

/// A Markdown table: a header row of `columns`, then a row of cells each (already escaped).
pub(super) fn table<const N: usize>(
    out: &mut String,
    columns: [&str; N],
    rows: impl IntoIterator<Item = [String; N]>,
) {
    let _ = writeln!(out, "| {} |\n|{}", columns.join(" | "), "---|".repeat(N));
    for row in rows {
        let _ = writeln!(out, "| {} |", row.join(" | "));
    }
}

/// Characters no report value is shown with: controls (a newline would end a table row) become
/// `\u00XX`, as on the terminal.
fn one_line(text: &str) -> String {
    super::terminal_safe(text)
        .replace('\n', "\\u000a")
        .replace('\t', " ")
}

/// Text shown as text: every Markdown and HTML character escaped with a backslash (CommonMark
/// shows the character itself), so no value becomes a link, an HTML comment or a table cell.
pub(super) fn prose(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in one_line(text).chars() {
        if matches!(
            c,
            '\\' | '`'
                | '*'
                | '_'
                | '['
                | ']'
                | '<'
                | '>'
                | '|'
                | '~'
                | '&'
                | '!'
                | '#'
                | '{'
                | '}'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// An inline code span that nothing in `text` can close: its backtick fence is longer than any
/// run of backticks inside.
pub(super) fn code(text: &str) -> String {
    let text = one_line(text);
    let fence = "`".repeat(longest_run(&text, '`') + 1);
    let pad = if text.starts_with('`') || text.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{text}{pad}{fence}")
}

/// [`code`] inside a table row: GitHub ends a cell at any `|`, in a code span too, unless escaped.
pub(super) fn cell_code(text: &str) -> String {
    code(text).replace('|', "\\|")
}

/// A fenced block that nothing in `body` can close.
pub(super) fn fenced(info: &str, body: &str) -> String {
    let fence = "`".repeat((longest_run(body, '`') + 1).max(3));
    let body = super::terminal_safe(body);
    let newline = if body.ends_with('\n') { "" } else { "\n" };
    format!("{fence}{info}\n{body}{newline}{fence}\n")
}

/// A Mermaid node label: quotes, backticks and angle brackets as Mermaid's entity codes.
pub(super) fn mermaid(text: &str) -> String {
    one_line(text)
        .replace('"', "#quot;")
        .replace('`', "#96;")
        .replace('<', "#lt;")
        .replace('>', "#gt;")
}

fn longest_run(text: &str, c: char) -> usize {
    let (mut longest, mut current) = (0, 0);
    for found in text.chars() {
        current = if found == c { current + 1 } else { 0 };
        longest = longest.max(current);
    }
    longest
}
