#!/usr/bin/env python3
# man/mkman.py: writes a man page from its template and the program's own --help, so that the options the page lists are the ones the program takes.
"""mkman.py PROGRAM TEMPLATE > PAGE

The template is roff with one line "@OPTIONS@"; it becomes the program's
--help text, an .SS heading for each unindented line ending in ":" and a
.TP entry for each indented line starting with "-" (its continuation lines
joined to it). Other --help lines (the usage lines, free text) are left
out: the template says those in its own words.
"""

import re
import subprocess
import sys


def roff(s):
    """Text escaped for roff: backslashes, leading dots and quotes, dashes."""
    s = s.replace("\\", "\\e").replace("-", "\\-")
    if s.startswith(".") or s.startswith("'"):
        s = "\\&" + s
    return s


def options(help_text):
    out, entry = [], None

    def flush():
        if entry is not None:
            opt, desc = entry
            out.append(".TP")
            out.append("\\fB" + roff(opt) + "\\fR")
            out.append(roff(" ".join(desc).strip()) or ".")
    started = False
    for line in help_text.splitlines():
        if not line.strip():
            continue
        m = re.match(r"^  +(-\S.*?)(?:\s{2,}(\S.*))?$", line)
        if m:
            flush()
            entry = (m.group(1).strip(), [m.group(2) or ""])
            started = True
            continue
        if re.match(r"^\S.*:$", line):
            flush()
            entry = None
            if line[:-1].lower() != "options":
                out.append(".SS " + roff(line[:-1].split(" (")[0]))
            started = True
            continue
        if started and line.startswith("  ") and entry is not None:
            entry[1].append(line.strip())
            continue
        flush()
        entry = None
    flush()
    return "\n".join(out)


def main():
    prog, template = sys.argv[1], sys.argv[2]
    r = subprocess.run([prog, "--help"], capture_output=True, text=True)
    text = r.stdout or r.stderr
    with open(template) as f:
        page = f.read()
    sys.stdout.write(page.replace("@OPTIONS@\n", options(text) + "\n"))


if __name__ == "__main__":
    main()
