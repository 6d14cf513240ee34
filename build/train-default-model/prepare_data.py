"""Dump the King James Bible (Debian package bible-kjv) into one chapter per line; Revelation is held out.

usage: prepare_data.py <out-dir>
Writes train.txt and heldout.txt (verses of a chapter joined by single spaces, references stripped).
"""
import os
import re
import subprocess
import sys

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
raw = subprocess.run(["bible", "-f", "Gen1:1-Rev22:21"], check=True, capture_output=True, text=True).stdout
verse = re.compile(r"^(\d?[A-Za-z]+)(\d+):(\d+) (.*)$")
chapters = []  # (book, chapter, [verses])
for line in raw.splitlines():
    m = verse.match(line)
    if not m:
        if line.strip():
            raise SystemExit(f"unexpected line: {line!r}")
        continue
    book, chapter, _, text = m.groups()
    if not chapters or chapters[-1][0] != book or chapters[-1][1] != chapter:
        chapters.append((book, chapter, []))
    chapters[-1][2].append(text.strip())

with open(os.path.join(out, "train.txt"), "w", encoding="utf-8") as train, \
        open(os.path.join(out, "heldout.txt"), "w", encoding="utf-8") as heldout:
    for book, _, verses in chapters:
        (heldout if book == "Rev" else train).write(" ".join(verses) + "\n")

n_rev = sum(1 for b, _, _ in chapters if b == "Rev")
print(f"{len(chapters)} chapters, {n_rev} held out (Revelation)")
