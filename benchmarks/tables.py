"""Results tables in README.md and docs/*.md, each between two markers that name the command producing it:

    <!-- table: python benchmarks/fidelity_table.py -->
    ...the table, exactly as that command prints it...
    <!-- end of table -->

The command's ``--write FILE`` replaces the text between the markers in FILE (``write``), so a table is never
edited by hand; ``tests/test_results_tables.py`` reruns the commands and compares (``compare``). A table timed
on the machine that ran it (a speed benchmark) is marked ``<!-- machine-dependent table: COMMAND -->`` instead:
it names its command but is not compared. Within a table, the cells of a ``seconds`` column are run times,
shown but not compared either. Shared by the benchmark scripts (run them from the project root).
"""

from __future__ import annotations

import dataclasses
import os
import re

__all__ = ["END", "Region", "regions", "replace", "write", "write_each", "compare", "begin_marker",
           "MACHINE_DEPENDENT_COLUMNS"]

BEGIN_RE = re.compile(r"^<!-- (machine-dependent )?table: (.+?) -->[ \t]*$", re.M)
END = "<!-- end of table -->"
END_RE = re.compile(r"^" + re.escape(END) + r"[ \t]*$", re.M)

#: Column headers whose cells are times on the machine that ran the table: not compared.
MACHINE_DEPENDENT_COLUMNS = ("seconds",)


@dataclasses.dataclass(frozen=True)
class Region:
    command: str            # the command named by the begin marker
    text: str               # what lies between the two marker lines, without their newlines
    machine_dependent: bool
    line: int               # 1-based line of the begin marker


def begin_marker(command: str, machine_dependent: bool = False) -> str:
    return f"<!-- {'machine-dependent ' if machine_dependent else ''}table: {command} -->"


def regions(doc: str) -> list[Region]:
    """The table regions of ``doc`` in order; ValueError for a begin marker without its end marker, a nested
    begin marker, an end marker without a begin marker, or a command named twice in ``doc``."""
    found, pos = [], 0
    for m in BEGIN_RE.finditer(doc):
        if m.start() < pos:
            raise ValueError(f"line {doc.count(chr(10), 0, m.start()) + 1}: table marker inside another table")
        line = doc.count("\n", 0, m.start()) + 1
        end_m = END_RE.search(doc, m.end())
        if end_m is None:
            raise ValueError(f"line {line}: {m.group(0)} has no {END}")
        end = end_m.start()
        nested = BEGIN_RE.search(doc, m.end(), end)
        if nested:
            raise ValueError(f"line {line}: {m.group(0)} has no {END} before the next table marker")
        found.append(Region(m.group(2), doc[m.end():end].strip("\n"), bool(m.group(1)), line))
        pos = end + len(END)
    ends = len(END_RE.findall(doc))
    if ends != len(found):
        raise ValueError(f"{ends} {END} markers for {len(found)} table markers")
    commands = [r.command for r in found]
    for c in set(commands):
        if commands.count(c) > 1:
            raise ValueError(f"two tables name the command {c!r}")
    return found


def replace(doc: str, command: str, text: str) -> str:
    """``doc`` with the table region of ``command`` holding ``text`` (ValueError if it has no such region)."""
    regions(doc)  # well-formed
    begin = begin_marker(command)
    start = doc.find(begin + "\n")
    if start < 0:
        raise ValueError(f"no {begin} ... {END} markers")
    body = start + len(begin) + 1
    end = END_RE.search(doc, body).start()
    return doc[:body] + text.strip("\n") + "\n" + doc[end:]


def write(path: str, command: str, text: str) -> None:
    """Replace the table region of ``command`` in the file ``path`` by ``text``."""
    with open(path) as f:
        doc = f.read()
    try:
        new = replace(doc, command, text)
    except ValueError as e:
        raise SystemExit(f"{path}: {e}") from None
    if new != doc:
        with open(path, "w") as f:
            f.write(new)
    print(f"# wrote the table of {command!r} into {path}", flush=True)


def write_each(paths, command: str, text: str, readme: str | None = None) -> None:
    """``write`` into every file of ``paths``: ``readme`` (if given) into a file named README.md, ``text``
    into the others."""
    for path in paths or ():
        write(path, command, readme if readme is not None and os.path.basename(path) == "README.md" else text)


def _masked(text: str) -> list[str]:
    """The lines of ``text`` with the cells of the machine-dependent columns of each Markdown table blanked."""
    out, hidden = [], set()
    for line in text.splitlines():
        line = line.rstrip()
        if not line.startswith("|"):
            hidden = set()
            out.append(line)
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if not hidden and all(set(c) <= set("-: ") for c in cells):
            out.append(line)
            continue
        if any(c in MACHINE_DEPENDENT_COLUMNS for c in cells):
            hidden = {i for i, c in enumerate(cells) if c in MACHINE_DEPENDENT_COLUMNS}
            out.append(line)
            continue
        out.append("| " + " | ".join("(time)" if i in hidden else c for i, c in enumerate(cells)) + " |")
    return out


def compare(committed: str, produced: str) -> list[str]:
    """The differences between a committed table and what its command produces now, one line each
    (``"line 3: committed '...' but produced '...'"``); empty when they agree. Cells under a ``seconds``
    header are not compared; everything else is, character for character (trailing spaces aside)."""
    a, b = _masked(committed.strip("\n")), _masked(produced.strip("\n"))
    diffs = [f"line {i + 1}: committed {x!r} but produced {y!r}"
             for i, (x, y) in enumerate(zip(a, b)) if x != y]
    if len(a) != len(b):
        diffs.append(f"committed {len(a)} lines but produced {len(b)}")
    return diffs
