"""The code's layers point one way, checked on the sources as they are.

Modules are proto/, each folder of src/, actors/ and cmd/. proto/ is the bottom (formats and
the message catalogue: it includes nothing of the others), src/ holds the libraries (never an
actor or a command), actors/ never a command; and no two modules include each other, directly
or round a circle. No actor or library sleeps to wait (nanosleep, usleep, sleep): back-pressure
and waits go through the runtime (mailboxes, timers, io_uring); only the command-line tools
may."""
import os
import re
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
SLEEP = re.compile(r"\b(nanosleep|usleep|sleep)\s*\(")


def sources():
    out = subprocess.run(["git", "ls-files", "*.c", "*.h"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.split()
    return [f for f in out if f.split("/")[0] in ("proto", "src", "actors", "cmd")]


def module(path):
    parts = path.split("/")
    if parts[0] == "src" and len(parts) > 2:
        return "/".join(parts[:2])
    return parts[0]


def includes():
    for f in sources():
        with open(os.path.join(ROOT, f), errors="replace") as fh:
            for target in INCLUDE.findall(fh.read()):
                yield f, target


LOWER = {"proto": {"proto"}, "src": {"proto", "src"}, "actors": {"proto", "src", "actors"},
         "cmd": {"proto", "src", "actors", "cmd"}}


def test_each_layer_includes_only_what_is_below_it():
    wrong = [(f, t) for f, t in includes() if t.split("/")[0] not in LOWER[f.split("/")[0]]]
    assert wrong == [], wrong


def test_no_two_modules_include_each_other_round_a_circle():
    graph = {}
    for f, t in includes():
        a, b = module(f), module(t)
        if a != b:
            graph.setdefault(a, set()).add(b)
    circles = []
    for a, outs in graph.items():
        for b in outs:
            seen, todo = set(), [b]
            while todo:
                x = todo.pop()
                if x == a:
                    circles.append((a, b))
                    break
                if x not in seen:
                    seen.add(x)
                    todo.extend(graph.get(x, ()))
    assert circles == [], circles
    # The check sees edges at all (a parse that found none would pass anything).
    assert "proto" in graph.get("actors", set())


def test_nothing_but_the_commands_sleeps_to_wait():
    found = []
    for f in sources():
        if f.startswith("cmd/"):
            continue
        with open(os.path.join(ROOT, f), errors="replace") as fh:
            # Comments may speak of it (blanked, their lines kept for the line numbers).
            text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), fh.read(),
                          flags=re.S)
        for n, line in enumerate(text.splitlines(), 1):
            if SLEEP.search(line.split("//")[0]):
                found.append(f"{f}:{n}: {line.strip()}")
    assert found == [], found
