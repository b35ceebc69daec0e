"""Write BENCHMARKS.md's tables from benchmarks/results/*.json (the only source of numbers).

    python benchmarks/write_markdown.py

Replaces the text between the markers ``<!-- results:begin -->`` and ``<!-- results:end -->`` (every figure)
between ``<!-- goals:begin -->`` and ``<!-- goals:end -->`` (the issues' goals against those figures,
:mod:`goals`) and between ``<!-- ptb:begin -->`` and ``<!-- ptb:end -->`` (issue 3's PTB table,
:func:`ptb_table.markdown_table`).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import goals  # noqa: E402
import ptb_table  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
GOALS_BEGIN, GOALS_END = "<!-- goals:begin -->", "<!-- goals:end -->"
PTB_BEGIN, PTB_END = "<!-- ptb:begin -->", "<!-- ptb:end -->"


def table() -> str:
    rows = ["| metric | value | unit | command | commit | date | machine | notes |", "|---|---|---|---|---|---|---|---|"]
    cell = goals.cell  # a bar inside a cell (p(x|c), q(z|x)) would end it
    for r in goals.records():
        rows.append(f"| `{r['metric']}` | **{goals.number(r['value'])}** | {cell(r['unit'])} | `{r['command']}` | "
                    f"{r['commit']} | {r['date'][:10]} | {cell(r['machine'])} | {cell(r['notes'])} |")
    return "\n".join(rows) + "\n"


def replace_between(text: str, begin: str, end: str, content: str) -> str:
    start, stop = text.index(begin) + len(begin), text.index(end)
    return text[:start] + "\n" + content + text[stop:]


def render(text: str) -> str:
    """``text`` (BENCHMARKS.md) with its tables written anew from the results files; the prose is kept."""
    text = replace_between(text, BEGIN, END, table())
    text = replace_between(text, PTB_BEGIN, PTB_END, ptb_table.markdown_table(goals.load_results()))
    return replace_between(text, GOALS_BEGIN, GOALS_END, goals.table())


def main() -> None:
    path = ROOT / "BENCHMARKS.md"
    path.write_text(render(path.read_text()))


if __name__ == "__main__":
    main()
