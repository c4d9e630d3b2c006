//! `index.html`: one static page, inline CSS, no scripts, no network; charts are relative
//! links to the PNG and SVG files next to it.

use crate::doc::{anchor, escape, html_body, Block};

const CSS: &str = "\
body { font-family: 'DejaVu Sans', Verdana, sans-serif; margin: 2em auto; max-width: 1160px;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #566a87; padding-bottom: .2em; }
h2 { margin-top: 2.2em; border-bottom: 1px solid #ccc; padding-bottom: .15em; }
h3 { margin-top: 1.6em; }
table { border-collapse: collapse; margin: .6em 0 1.2em; font-size: .92em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; }
th { background: #eef1f5; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tbody tr:nth-child(even) { background: #fafafa; }
dl.facts { display: grid; grid-template-columns: max-content auto; gap: .15em 1em;
           font-size: .92em; }
dl.facts dt { font-weight: bold; }
dl.facts dd { margin: 0; word-break: break-word; }
p.warning { background: #fff4d6; border-left: 4px solid #e69f00; padding: .4em .8em; }
figure { margin: 1em 0 2em; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: .88em; color: #555; }
nav ul { columns: 2; }
";

/// The whole page: the blocks, with a contents list of the level-2 headings before the first.
pub fn page(title: &str, blocks: &[Block]) -> String {
    let first_h2 = blocks
        .iter()
        .position(|b| matches!(b, Block::Heading(2, _)))
        .unwrap_or(blocks.len());
    let (intro, sections) = blocks.split_at(first_h2);
    let contents: String = blocks
        .iter()
        .filter_map(|b| match b {
            Block::Heading(2, text) => Some(format!(
                "<li><a href=\"#{}\">{}</a></li>\n",
                anchor(text),
                escape(text)
            )),
            _ => None,
        })
        .collect();
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{title}</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n\
         {intro}<nav><ul>\n{contents}</ul></nav>\n{body}</body>\n</html>\n",
        title = escape(title),
        intro = html_body(intro),
        body = html_body(sections),
    )
}
