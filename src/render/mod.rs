//! Human and machine renderings of results. Text goes to a `String`; the caller writes it.

pub mod diff;
pub mod evidence;
mod md;
pub mod owners;
pub mod plan;
pub mod report;
mod report_detail;
mod report_graph;
mod report_pages;
pub mod scan;
mod yaml;

use std::borrow::Cow;

/// Whether a character can change what a terminal or an editor shows instead of being shown:
/// C0 and C1 controls and DEL (escape sequences), and the bidirectional overrides and isolates
/// (text that reads differently than it is).
pub fn is_hiding(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every [`is_hiding`] character written as a `\u00XX` escape: what reaches the
/// terminal is what the input held, and JSON output stays JSON (the escape is JSON's own).
pub fn terminal_safe(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_hiding) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if is_hiding(c) {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Formats rows as left-aligned columns separated by two spaces, the header underlined.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        format!("  {}\n", padded.join("  ").trim_end())
    };
    let mut out = line(header.to_vec());
    out.push_str(&line(
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str)
            .collect(),
    ));
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_output_shows_escapes_instead_of_running_them() {
        assert_eq!(terminal_safe("plain\ttext\n"), "plain\ttext\n");
        assert_eq!(
            terminal_safe("arn:aws\u{1b}[8m:iam"),
            "arn:aws\\u001b[8m:iam"
        );
        assert_eq!(
            terminal_safe("a\rb\u{9b}c\u{202e}d"),
            "a\\u000db\\u009bc\\u202ed"
        );
        // The escape is JSON's: a JSON document stays valid and means the same.
        let json = serde_json::to_string(&"x\u{9b}\u{7f}").unwrap();
        let safe = terminal_safe(&json);
        assert!(!safe.chars().any(is_hiding));
        assert_eq!(
            serde_json::from_str::<String>(&safe).unwrap(),
            "x\u{9b}\u{7f}"
        );
    }
}
