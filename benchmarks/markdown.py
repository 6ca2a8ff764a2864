"""`python -m benchmarks.markdown FIGURES.json`: the figures of a run as markdown tables for the docs."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmarks.harness import fmt


def render(document: dict) -> str:
    lines = [
        f"`{document['command']}` (commit {document['machine']['commit']}, "
        f"load average at the end {document['machine']['load_average_at_end']})",
        "",
    ]
    for name, report in document["benchmarks"].items():
        lines += [
            f"**{name}**",
            "",
            "| figure | median | min - max | n | unit |",
            "| --- | ---: | ---: | ---: | --- |",
        ]
        for figure, s in report["figures"].items():
            spread = f"{fmt(s['min'])} - {fmt(s['max'])}"
            lines.append(f"| {figure} | {fmt(s['median'])} | {spread} | {s['n']} | {s['unit']} |")
        for target in report["targets"]:
            verdict = "met" if target["met"] else "**not met**"
            lines.append(
                f"\nTarget `{target['figure']}` <= {target['at_most']}: "
                f"{fmt(target['median'])}, {verdict}."
            )
        lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    for path in argv if argv is not None else sys.argv[1:]:
        print(render(json.loads(Path(path).read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
