#!/usr/bin/env python3
"""Makes the charts' embedded font: a subset of Noto Sans CJK SC (SIL Open Font License 1.1) with
ASCII, the marks the charts draw, and every character of the chart strings (`[chart]` of both
catalogues) and of the issue-type labels, so the digest's PNG charts draw Chinese without system
fonts. `make chart-font` runs it (fontTools, and Debian's fonts-noto-cjk for the source font);
the feedback-lambda test `the_chart_font_has_every_character_the_charts_draw` says when it is due.

Usage: subset-chart-font.py [source.ttc] [out.otf]
"""
import pathlib
import subprocess
import sys
import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[2]
SOURCE = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"
OUT = pathlib.Path(sys.argv[2] if len(sys.argv) > 2 else ROOT / "shared/lambda/assets/NotoSansSC-chart-subset.otf")


def strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


chars = {chr(c) for c in range(0x20, 0x7F)} | set("¥–—→↑↓★·%，、：（）")
for name in ("zh-CN", "en"):
    catalogue = tomllib.loads((ROOT / f"shared/domain/locales/{name}.toml").read_text("utf-8"))
    for s in strings(catalogue.get("chart", {})):
        chars |= set(s)
taxonomy = tomllib.loads((ROOT / "shared/domain/rules/issue_types.toml").read_text("utf-8"))
for issue in taxonomy.get("issue_type", []):
    for key in ("zh", "en"):
        chars |= set(issue.get(key, ""))
text = "".join(sorted(chars))
# Index 2 of the collection is Noto Sans CJK SC (Simplified Chinese glyph forms).
subprocess.run(
    [sys.executable, "-m", "fontTools.subset", SOURCE, "--font-number=2", f"--text={text}",
     f"--output-file={OUT}", "--layout-features=kern", "--no-hinting", "--desubroutinize",
     "--name-IDs=0,1,2,3,4,5,6,13,14", "--name-legacy"],
    check=True,
)
print(f"{OUT}: {OUT.stat().st_size} bytes, {len(chars)} characters")
