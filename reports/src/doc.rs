//! A tiny document model rendered twice, as Markdown (`report.md`, terminals) and as HTML
//! (`index.html`), so both always show the same figures. Text comes partly from run files
//! (`meta.json` notes, paths, mode names), so both renderings escape it: HTML fully
//! ([`escape`]), Markdown wherever a viewer would take it for HTML ([`escape_markdown`]).

use std::fmt::Write;

/// Column alignment: numbers right, names left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    pub header: Vec<String>,
    pub align: Vec<Align>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// A table whose first column is left-aligned and every other column right-aligned.
    pub fn numeric<S: Into<String>>(header: impl IntoIterator<Item = S>) -> Self {
        let header: Vec<String> = header.into_iter().map(Into::into).collect();
        let align = (0..header.len())
            .map(|i| if i == 0 { Align::Left } else { Align::Right })
            .collect();
        Table {
            header,
            align,
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    /// GitHub-flavoured Markdown, columns padded to line up in a terminal.
    pub fn markdown(&self) -> String {
        let escaped: Vec<Vec<String>> = std::iter::once(&self.header)
            .chain(&self.rows)
            .map(|r| {
                r.iter()
                    .map(|c| escape_markdown(c).replace('|', "\\|"))
                    .collect()
            })
            .collect();
        let width = |i: usize| {
            escaped
                .iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
                .max(3)
        };
        let widths: Vec<usize> = (0..self.header.len()).map(width).collect();
        let mut out = String::new();
        let line = |out: &mut String, cells: &[String]| {
            out.push('|');
            for (i, w) in widths.iter().enumerate() {
                let cell = cells.get(i).map_or("", String::as_str);
                let pad = w - cell.chars().count().min(*w);
                match self.align.get(i) {
                    Some(Align::Right) => write!(out, " {}{cell} |", " ".repeat(pad)),
                    _ => write!(out, " {cell}{} |", " ".repeat(pad)),
                }
                .expect("writing to a String cannot fail");
            }
            out.push('\n');
        };
        line(&mut out, &escaped[0]);
        out.push('|');
        for (i, w) in widths.iter().enumerate() {
            let dashes = "-".repeat(w - 1);
            match self.align.get(i) {
                Some(Align::Right) => write!(out, " {dashes}: |"),
                _ => write!(out, " {dashes}- |"),
            }
            .expect("writing to a String cannot fail");
        }
        out.push('\n');
        for row in &escaped[1..] {
            line(&mut out, row);
        }
        out
    }

    pub fn html(&self) -> String {
        let mut out = String::from("<table>\n<thead><tr>");
        for (i, h) in self.header.iter().enumerate() {
            write!(out, "<th{}>{}</th>", self.class(i), escape(h)).expect("String write");
        }
        out.push_str("</tr></thead>\n<tbody>\n");
        for row in &self.rows {
            out.push_str("<tr>");
            for (i, c) in row.iter().enumerate() {
                write!(out, "<td{}>{}</td>", self.class(i), escape(c)).expect("String write");
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</tbody>\n</table>\n");
        out
    }

    fn class(&self, column: usize) -> &'static str {
        match self.align.get(column) {
            Some(Align::Right) => " class=\"num\"",
            _ => "",
        }
    }
}

/// A chart as the document shows it: paths relative to the output folder.
#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    pub title: String,
    pub png: String,
    pub svg: String,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Block {
    /// Level 1 to 3.
    Heading(u8, String),
    Para(String),
    /// A problem with the measurement the reader must see (shown highlighted).
    Warning(String),
    /// `(label, value)` pairs.
    Facts(Vec<(String, String)>),
    Table(Table),
    Figure(Figure),
}

pub fn markdown(blocks: &[Block]) -> String {
    let mut out = String::new();
    for block in blocks {
        let md = escape_markdown;
        match block {
            Block::Heading(level, text) => {
                writeln!(out, "{} {}", "#".repeat(usize::from(*level)), md(text))
            }
            Block::Para(text) => writeln!(out, "{}", md(text)),
            Block::Warning(text) => writeln!(out, "> **Warning:** {}", md(text)),
            Block::Facts(facts) => facts
                .iter()
                .try_for_each(|(k, v)| writeln!(out, "- **{}:** {}", md(k), md(v))),
            Block::Table(t) => write!(out, "{}", t.markdown()),
            Block::Figure(f) => {
                writeln!(out, "![{}]({}) ([SVG]({}))", md(&f.title), f.png, f.svg)
            }
        }
        .expect("writing to a String cannot fail");
        out.push('\n');
    }
    out
}

/// The blocks as the body of an HTML page (see `crate::html` for the page around it).
pub fn html_body(blocks: &[Block]) -> String {
    let mut out = String::new();
    for block in blocks {
        match block {
            Block::Heading(level, text) => {
                let id = anchor(text);
                writeln!(out, "<h{level} id=\"{id}\">{}</h{level}>", escape(text))
            }
            Block::Para(text) => writeln!(out, "<p>{}</p>", escape(text)),
            Block::Warning(text) => {
                writeln!(
                    out,
                    "<p class=\"warning\"><b>Warning:</b> {}</p>",
                    escape(text)
                )
            }
            Block::Facts(facts) => {
                out.push_str("<dl class=\"facts\">\n");
                facts
                    .iter()
                    .try_for_each(|(k, v)| {
                        writeln!(out, "<dt>{}</dt><dd>{}</dd>", escape(k), escape(v))
                    })
                    .and_then(|()| writeln!(out, "</dl>"))
            }
            Block::Table(t) => write!(out, "{}", t.html()),
            Block::Figure(f) => writeln!(
                out,
                "<figure><a href=\"{png}\"><img src=\"{png}\" alt=\"{title}\"></a>\
                 <figcaption>{title} (<a href=\"{png}\">PNG</a>, <a href=\"{svg}\">SVG</a>)\
                 </figcaption></figure>",
                png = escape(&f.png),
                svg = escape(&f.svg),
                title = escape(&f.title),
            ),
        }
        .expect("writing to a String cannot fail");
    }
    out
}

/// An HTML id from a heading: lower-case letters, digits and dashes.
pub fn anchor(text: &str) -> String {
    let mut id = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            id.push(c.to_ascii_lowercase());
        } else if !id.ends_with('-') {
            id.push('-');
        }
    }
    id.trim_matches('-').to_string()
}

/// Escapes, with a backslash, every `<` that a Markdown viewer would read as the start of
/// raw HTML or an autolink (followed by a letter, `/`, `!` or `?`) and every `&` that could
/// start a character reference (followed by a letter, a digit or `#`). Other text stays as
/// written, so terminals show `a < b` unchanged.
pub fn escape_markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let next = chars.peek().copied().unwrap_or(' ');
        let opens_html = c == '<' && (next.is_ascii_alphabetic() || "/!?".contains(next));
        let opens_entity = c == '&' && (next.is_ascii_alphanumeric() || next == '#');
        if opens_html || opens_entity {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_table_pads_aligns_and_escapes() {
        let mut t = Table::numeric(["Mode", "ms"]);
        t.push(vec!["a|b".into(), "1.5".into()]);
        let md = t.markdown();
        assert_eq!(md, "| Mode |  ms |\n| ---- | --: |\n| a\\|b | 1.5 |\n");
    }

    #[test]
    fn markdown_escapes_what_a_viewer_would_take_for_html() {
        let hostile = "<script>alert(1)</script> &amp; <!-- x --> <https://e.x> a < b & c";
        let md = markdown(&[
            Block::Para(hostile.into()),
            Block::Facts(vec![("Note <b>".into(), hostile.into())]),
            Block::Heading(2, "<img src=x>".into()),
        ]);
        for tag in ["<script", "</script", "<!--", "<img", "<https"] {
            for (at, _) in md.match_indices(tag) {
                assert!(
                    at > 0 && md.as_bytes()[at - 1] == b'\\',
                    "{tag} unescaped: {md}"
                );
            }
        }
        assert!(
            md.contains("\\<script>alert(1)\\</script> \\&amp; \\<!-- x -->"),
            "{md}"
        );
        assert!(
            md.contains("a < b & c"),
            "plain comparisons stay readable: {md}"
        );
        let mut t = Table::numeric(["Mode"]);
        t.push(vec!["<i>q</i>".into()]);
        assert!(t.markdown().contains("\\<i>q\\</i>"), "{}", t.markdown());
    }

    #[test]
    fn html_escapes_text() {
        let body = html_body(&[Block::Para("<b> & \"x\"".into())]);
        assert_eq!(body, "<p>&lt;b&gt; &amp; &quot;x&quot;</p>\n");
        assert_eq!(
            anchor("Run 2026-11-27 (incomplete)"),
            "run-2026-11-27-incomplete"
        );
    }
}
