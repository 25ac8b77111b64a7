"""Report sections -> text: one self-contained HTML page, and Markdown with relative image links.

The HTML page has its CSS inline and every PNG embedded as a base64 ``data:`` URI, so the single file can be
mailed or opened offline; it links to nothing outside itself. The Markdown links each PNG by its path relative
to the folder the Markdown is written to.
"""

from __future__ import annotations

import base64
import html
import os
import re
from collections.abc import Sequence
from pathlib import Path

from hotswap_harness.report.sections import DASH, Section, Skipped, Table

_NUMERIC = re.compile(r"^[−+-]?[\d,]*\.?\d+(\s?%|×)?$|^\d+–\d+ %$")

CSS = """
:root { --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --head: #eef1f4; --paper: #fff4d6; --zebra: #f8f9fa; }
* { box-sizing: border-box; }
body { margin: 0; background: #fff; color: var(--ink);
       font: 14px/1.45 -apple-system, "Segoe UI", "DejaVu Sans", "Liberation Sans", Arial, sans-serif; }
main { max-width: 1360px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 36px 0 8px; padding-top: 12px; border-top: 2px solid var(--line); }
.sub { color: var(--muted); margin: 0 0 16px; }
nav ol { columns: 2; margin: 8px 0 0; padding-left: 22px; }
nav a { color: #0b57d0; text-decoration: none; }
.file { color: var(--muted); font-size: 12px; font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; }
pre.cmd { background: #f6f8fa; border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; margin: 8px 0;
          font: 13px/1.4 "DejaVu Sans Mono", Menlo, Consolas, monospace; white-space: pre-wrap; }
.tbl { overflow-x: auto; margin: 10px 0 4px; }
table { border-collapse: collapse; font-size: 13px; font-variant-numeric: tabular-nums; }
.caption { color: var(--muted); margin: 0 0 4px; font-size: 12.5px; }
th, td { border: 1px solid var(--line); padding: 3px 8px; white-space: nowrap; }
th { background: var(--head); font-weight: 600; text-align: center; white-space: normal; vertical-align: bottom; }
.side { display: flex; flex-wrap: wrap; gap: 8px 28px; align-items: flex-start; }
td.num { text-align: right; }
tbody tr:nth-child(even) td { background: var(--zebra); }
th.paper { background: #f6e3a8; }
td.paper, tbody tr:nth-child(even) td.paper { background: var(--paper); }
ul.notes { margin: 8px 0; padding-left: 20px; color: #333; }
ul.notes li { margin: 2px 0; }
figure { margin: 12px 0 0; }
figure img { max-width: min(100%, 1300px); height: auto; border: 1px solid var(--line); border-radius: 4px; }
.skipped li { color: var(--muted); }
"""


def anchor(key: str) -> str:
    """An HTML id for a section: ``full/demo.json`` -> ``full-demo-json``."""
    return re.sub(r"[^a-z0-9]+", "-", key.lower()).strip("-")


def _numeric_columns(table: Table) -> set[int]:
    cols = set()
    for j in range(1, len(table.header)):
        cells = [r[j] for r in table.rows if j < len(r) and r[j] not in ("", DASH)]
        if cells and all(_NUMERIC.match(c) for c in cells):
            cols.add(j)
    return cols


def png_data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


# --- HTML


def _html_table(table: Table) -> str:
    e = html.escape
    numeric = _numeric_columns(table)

    def cls(j: int) -> str:
        names = (["num"] if j in numeric else []) + (["paper"] if j in table.paper_columns else [])
        return f' class="{" ".join(names)}"' if names else ""

    head = "".join(f'<th{" class=paper" if j in table.paper_columns else ""}>{e(h)}</th>'
                   for j, h in enumerate(table.header))
    body = "".join("<tr>" + "".join(f"<td{cls(j)}>{e(c)}</td>" for j, c in enumerate(row)) + "</tr>\n"
                   for row in table.rows)
    caption = f'<p class="caption">{e(table.caption)}</p>' if table.caption else ""
    return f'<div class="tbl">{caption}<table><thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody></table></div>'


def _html_tables(tables: Sequence[Table]) -> list[str]:
    """Each table's HTML; consecutive compact tables go side by side in one flex row."""
    out: list[str] = []
    group: list[str] = []
    for t in tables:
        if t.compact:
            group.append(_html_table(t))
            continue
        if group:
            out.append('<div class="side">' + "".join(group) + "</div>")
            group = []
        out.append(_html_table(t))
    if group:
        out.append('<div class="side">' + "".join(group) + "</div>")
    return out


def _html_section(s: Section) -> str:
    e = html.escape
    parts = [f'<section id="{anchor(s.key)}">', f"<h2>{e(s.title)}</h2>", f'<div class="file">{e(s.key)}</div>']
    if s.command:
        parts.append(f'<pre class="cmd">{e(s.command)}</pre>')
    parts += _html_tables(s.tables)
    if s.notes:
        parts.append('<ul class="notes">' + "".join(f"<li>{e(n)}</li>" for n in s.notes) + "</ul>")
    if s.image is not None and Path(s.image).is_file():
        parts.append(f'<figure><img alt="{e(s.title)}" src="{png_data_uri(s.image)}"></figure>')
    parts.append("</section>")
    return "\n".join(parts)


def render_html(sections: Sequence[Section], skipped: Sequence[Skipped], *, title: str = "hotswap results",
                subtitle: str = "") -> str:
    """One self-contained page: inline CSS, a table of contents, every section, the files left out."""
    e = html.escape
    toc = "".join(f'<li><a href="#{anchor(s.key)}">{e(s.title)}</a></li>' for s in sections)
    left_out = ""
    if skipped:
        left_out = ('<h2 id="not-included">Not included</h2><ul class="skipped">'
                    + "".join(f"<li><b>{e(k.key)}</b>: {e(k.reason)}</li>" for k in skipped) + "</ul>")
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n<title>{e(title)}</title>\n'
            f"<style>{CSS}</style>\n</head>\n<body>\n<main>\n<h1>{e(title)}</h1>\n"
            + (f'<p class="sub">{e(subtitle)}</p>\n' if subtitle else "")
            + f"<nav><ol>{toc}</ol></nav>\n"
            + "\n".join(_html_section(s) for s in sections)
            + f"\n{left_out}\n</main>\n</body>\n</html>\n")


# --- Markdown


def _md_cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _md_table(table: Table) -> str:
    numeric = _numeric_columns(table)
    lines = [f"*{_md_cell(table.caption)}*", ""] if table.caption else []
    lines.append("| " + " | ".join(_md_cell(h) for h in table.header) + " |")
    lines.append("|" + "|".join("---:" if j in numeric else "---" for j in range(len(table.header))) + "|")
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in table.rows]
    return "\n".join(lines)


def _md_section(s: Section, out_dir: Path) -> str:
    parts = [f"## {s.title}", f"`{s.key}`"]
    if s.command:
        parts.append(f"```sh\n{s.command}\n```")
    parts += [_md_table(t) for t in s.tables]
    if s.notes:
        parts.append("\n".join(f"- {n}" for n in s.notes))
    if s.image is not None:
        rel = Path(os.path.relpath(Path(s.image).resolve(), Path(out_dir).resolve())).as_posix()
        parts.append(f"![{s.title}]({rel})")
    return "\n\n".join(parts)


def render_markdown(sections: Sequence[Section], skipped: Sequence[Skipped], out_dir: Path, *,
                    title: str = "hotswap results", subtitle: str = "") -> str:
    """The same content as Markdown; images are linked relative to ``out_dir``, where the file is written."""
    parts = [f"# {title}"]
    if subtitle:
        parts.append(subtitle)
    parts.append("\n".join(f"{i}. [{s.title}](#{anchor(s.key)})" for i, s in enumerate(sections, 1)))
    parts += [f'<a id="{anchor(s.key)}"></a>\n\n' + _md_section(s, out_dir) for s in sections]
    if skipped:
        parts.append("## Not included\n\n" + "\n".join(f"- `{k.key}`: {k.reason}" for k in skipped))
    return "\n\n".join(parts) + "\n"
