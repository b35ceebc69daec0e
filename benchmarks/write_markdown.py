"""Write BENCHMARKS.md's table of figures from benchmarks/results/*.json (the only source of numbers).

    python benchmarks/write_markdown.py

Replaces the text between the markers ``<!-- results:begin -->`` and ``<!-- results:end -->``.
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


def table() -> str:
    rows = ["| metric | value | unit | command | commit | date | machine | notes |", "|---|---|---|---|---|---|---|---|"]
    for path in sorted((ROOT / "benchmarks" / "results").glob("*.json")):
        for r in json.loads(path.read_text()):
            value = f"{r['value']:.4g}" if isinstance(r["value"], float) else str(r["value"])
            rows.append(f"| `{r['metric']}` | **{value}** | {r['unit']} | `{r['command']}` | {r['commit']} | "
                        f"{r['date'][:10]} | {r['machine']} | {r['notes']} |")
    return "\n".join(rows) + "\n"


def main() -> None:
    path = ROOT / "BENCHMARKS.md"
    text = path.read_text()
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    path.write_text(text[:start] + "\n" + table() + text[end:])


if __name__ == "__main__":
    main()
