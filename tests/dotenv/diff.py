#!/usr/bin/python3
"""diff.py - dotenv.decode and the .env splicers against python-dotenv 0.21.

Usage: /usr/bin/python3 tests/dotenv/diff.py BUILD/tests/dotenv-lua

1. decode: a generated corpus (every quoting form, escapes, export,
   comments, multi-line values, CRLF and CR, UTF-8 and Unicode whitespace,
   a BOM, malformed lines) read by dotenv_values(stream=StringIO(text),
   interpolate=False) and by dotenv.decode: same keys, same order, same
   values (None <-> json null).
2. edits: every method on realistic commented files; python-dotenv's
   reading of the result is the intended one, and only the edited entry's
   lines differ.
3. round trip: tricky values written by set() read back by python-dotenv;
   values that cannot be written are refused.
Ends with "N passed, N failed".
"""
import difflib
import io
import json
import logging
import os
import random
import re
import subprocess
import sys

from dotenv import dotenv_values

logging.disable(logging.CRITICAL)  # python-dotenv warns on malformed lines
HERE = os.path.dirname(os.path.abspath(__file__))
RUNNER = sys.argv[1]
passed = failed = 0


def oracle(text):
    return list(dotenv_values(stream=io.StringIO(text), interpolate=False).items())


def run(jobs):
    p = subprocess.run([RUNNER, os.path.join(HERE, "driver.lua")],
                       input=json.dumps(jobs).encode(), capture_output=True, timeout=300)
    if p.returncode != 0:
        sys.exit("runner failed: " + p.stderr.decode(errors="replace"))
    return json.loads(p.stdout.decode(), object_pairs_hook=list)


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what)


# ---- 1. the decode corpus ---------------------------------------------------

HAND = [
    "", "\n", "   \n\t\n", "A=1", "A=1\n", "A=1\r\nB=2\r\n", "A=1\rB=2\r", "A=1\n\n\nB=2",
    "export A=1", "export  A=1", "exportA=1", "export=1", "export\tA=1", "export A", "export",
    "export #x", "export =1", "#c\nA=1", "  # c\nA=1", "A=1 # c", "A=1# c", "A=1 #c # d",
    "A= #c", "A=#c", "A=a  b  ", "A=  x", "A=\tx\t", "A=", "A=\n", "A= \n", "A", "A\nB=1",
    "A #c", "A junk", "A=1\nA", "A\nA=1", "A=1\nA=2", "A=1\nB=2\nA=3", "=1", "=\nA=1",
    "'A'=1", "'A B'=1", "''=1", "'A\nB'=1", "'A=1", "A B=1", "A=1 B=2",
    "A='x'", "A='x' # c", "A='x'#c", "A='x' junk\nB=1", "A='x", "A='x\ny'", "A='x\\'y'",
    "A='x\\\\y'", "A='x\\ny'", "A='x\\'", "A='x\\' y\nB='z'", "A='a\\'\nB=1",
    'A="x"', 'A="x\\ny"', 'A="x\\ty"', 'A="\\a\\b\\f\\r\\v"', 'A="x\\"y"', 'A="x\\\\"',
    'A="x\\\\\\"y"', 'A="x\\qy"', 'A="x\\u0041"', 'A="x', 'A="x\ny"\nB=2', 'A="x\\"',
    'A="x\\" # c\nB="y"', 'A="\'"', "A='\"'", 'A="x" "y"', 'A= "x"', 'A="x"  \n', "A=\"\"",
    "A=''", "A='''", 'A="""', "A=x'y", 'A=x"y', "A=x\\y", "A=x\\ny", "A=x=y", "A==", "A=$B",
    "A=${B}", "A='${B}'", "\ufeffA=1", "\ufeff#c\nA=1", "A=\u00e9t\u00e9", "\u00c9=1",
    "A=x\u00a0#c", "A=x\u00a0", "\u00a0A=1", "A\u3000=1", "A=x\u2028y", "A=\u2003x",
    "A=x\x0b#c", "A=x\x1c", "\x1cA=1", "A=x\x85", "A=x\ty # c", "A=1\r\n\r\n#c\r\nB", "A=\r",
    "A='\r\n'", 'A="\r\n"', "A='x'\r\nB=1", "A=1 \r\n", "#" * 3,
    "A=1\n  export B=2\n\tC=3", "A=1\\\nB=2",
]

KEYS = ["A", "KEY", "a.b", "x-y", "_u", "K9", "'Q K'", "\u00e9", "'K", "", "=", "A B"]
PRE = ["", "export ", "export\t", "  ", "\t", "\u00a0"]
SEPS = ["=", " = ", "= ", "=\t", "", " "]
VALS = ["", "v", "a b", " lead", "trail ", "x # c", "x#c", "#c", "'s'", "'s", "'a\\'b'",
        "'a\\\\b'", "'a\nb'", '"d"', '"d', '"a\\nb"', '"a\\"b"', '"a\\\\"', '"a\nb"', '"\\t\\z"',
        '"x" junk', "'x' # c", '"x"#c', "\u00e9", "a\u00a0", "$X", "${X}", "a=b", "a\\b",
        "'x\\'", '"x\\"', "\"'\"", "'\"'"]
POST = ["", " ", " # c", "\t#c", " junk"]
EOLS = ["\n", "\r\n", "\r"]


def random_text(rnd):
    lines = []
    for _ in range(rnd.randint(1, 6)):
        kind = rnd.random()
        if kind < 0.12:
            lines.append(rnd.choice(["# comment", "  #x", "#", ""]))
        elif kind < 0.18:
            lines.append(rnd.choice(["   ", "\t", "junk", "=x", "'", '"']))
        else:
            lines.append(rnd.choice(PRE) + rnd.choice(KEYS) + rnd.choice(SEPS) +
                         rnd.choice(VALS) + rnd.choice(POST))
    eol = rnd.choice(EOLS)
    text = eol.join(lines)
    if rnd.random() < 0.6:
        text += eol
    if rnd.random() < 0.05:
        text = "\ufeff" + text
    return text


def decode_suite():
    rnd = random.Random(20261202)
    corpus = HAND + [random_text(rnd) for _ in range(400)]
    results = run([{"op": "decode", "text": t} for t in corpus])
    for text, res in zip(corpus, results):
        res = dict(res)
        want = oracle(text)
        if not res["ok"]:
            check(False, "decode %r raised %s" % (text, res["err"]))
            continue
        got = [(k, v) for k, v in res["value"]] if res["value"] else []
        check(got == want, "decode %r: got %r, python-dotenv %r" % (text, got, want))


# ---- 2. edits on realistic files --------------------------------------------

FILES = {
    "plain": (
        "# Secrets of the daemon. Keep this file mode 0600.\n"
        "\n"
        "# Telegram bot\n"
        "TELEGRAM_BOT_TOKEN=123456:ABCdef\n"
        "TELEGRAM_CHAT_ID=-1001234567890  # the ops group\n"
        "\n"
        "# OpenAI\n"
        "export OPENAI_API_KEY='sk-abc def'\n"
        "REDIS_URL=\"redis://localhost:6379/0\" # local\n"
        "MOTD=\"line one\nline two\"\n"
        "EMPTY=\n"
        "FLAG\n"
        "LAST=end\n"),
    "crlf": "# crlf file\r\nA=1\r\n# about B\r\nB='two'\r\nC=\"3\"\r\n",
    "nofinal": "# no final newline\nA=1\nB=2",
    "export": "export A=1\nexport B=2\n",
}

EDITS = [
    # (file, method, args, expected change: ("set", k, v) / ("del", k) / ("ren", k, k2))
    ("plain", "set", [["TELEGRAM_BOT_TOKEN"], "999:xyz"], ("set", "TELEGRAM_BOT_TOKEN", "999:xyz")),
    ("plain", "set", [["TELEGRAM_CHAT_ID"], "-42"], ("set", "TELEGRAM_CHAT_ID", "-42")),
    ("plain", "set", [["TELEGRAM_CHAT_ID"], "has space"], ("set", "TELEGRAM_CHAT_ID", "has space")),
    ("plain", "set", [["OPENAI_API_KEY"], "sk-new"], ("set", "OPENAI_API_KEY", "sk-new")),
    ("plain", "set", [["OPENAI_API_KEY"], "it's"], ("set", "OPENAI_API_KEY", "it's")),
    ("plain", "set", [["REDIS_URL"], "redis://r:6379/1"], ("set", "REDIS_URL", "redis://r:6379/1")),
    ("plain", "set", [["MOTD"], "a\nb\nc"], ("set", "MOTD", "a\nb\nc")),
    ("plain", "set", [["EMPTY"], "now set"], ("set", "EMPTY", "now set")),
    ("plain", "set", [["FLAG"], "on"], ("set", "FLAG", "on")),
    ("plain", "set", [["NEW_KEY"], "x y"], ("set", "NEW_KEY", "x y")),
    ("crlf", "set", [["B"], "x\ny"], ("set", "B", "x\ny")),
    ("crlf", "set", [["D"], "4"], ("set", "D", "4")),
    ("nofinal", "set", [["C"], "3"], ("set", "C", "3")),
    ("nofinal", "set", [["B"], "20"], ("set", "B", "20")),
    ("export", "set", [["C"], "3"], ("set", "C", "3")),
    ("plain", "insert", [["NEW"], "1", {"after": "TELEGRAM_BOT_TOKEN"}], ("set", "NEW", "1")),
    ("plain", "insert", [["NEW"], "1", {"before": "OPENAI_API_KEY", "comment": "new one"}], ("set", "NEW", "1")),
    ("plain", "insert", [["NEW"], "1", {"comment": "at the end"}], ("set", "NEW", "1")),
    ("nofinal", "insert", [["NEW"], "1", {"after": "B"}], ("set", "NEW", "1")),
    ("crlf", "insert", [["NEW"], "a b", {"before": "B", "comment": "c"}], ("set", "NEW", "a b")),
    ("plain", "delete", [["TELEGRAM_BOT_TOKEN"]], ("del", "TELEGRAM_BOT_TOKEN")),
    ("plain", "delete", [["OPENAI_API_KEY"]], ("del", "OPENAI_API_KEY")),
    ("plain", "delete", [["MOTD"]], ("del", "MOTD")),
    ("plain", "delete", [["LAST"]], ("del", "LAST")),
    ("nofinal", "delete", [["B"]], ("del", "B")),
    ("crlf", "delete", [["B"]], ("del", "B")),
    ("plain", "rename", [["REDIS_URL"], "REDIS_DSN"], ("ren", "REDIS_URL", "REDIS_DSN")),
    ("plain", "rename", [["FLAG"], "FLAG2"], ("ren", "FLAG", "FLAG2")),
    ("crlf", "rename", [["C"], "CC"], ("ren", "C", "CC")),
]

REFUSALS = [
    ("plain", "set", [["A"], "${HOME}/x"], "${"),
    ("plain", "set", ["A.B", "x"], "flat"),
    ("plain", "set", [["LAST"], {"a": 1}], "string"),
    ("plain", "set", [["A"], "ends\\"], "backslash"),
    ("plain", "set", [["A"], 5], "string"),
    ("plain", "set", [["A"], True], "string"),
    ("plain", "set", [["A", "B"], "x"], "flat"),
    ("plain", "set", [["bad key"], "x"], "plain .env key"),
    ("plain", "insert", [["N"], "1", {"after": "NOPE"}], "no key"),
    ("plain", "insert", [["N"], "1", {"comment": "a\nb"}], "line break"),
    ("plain", "rename", [["LAST"], "EMPTY"], "exists"),
    ("plain", "move", [["LAST"], ["X"]], "flat"),
    ("plain", "insert", [["LAST"], "x"], "exists already"),
    ("plain", "append", [["LAST"], "x"], "sequence"),
    ("dup", "set", [["A"], "x"], "more than once"),
    ("dup", "delete", [["A"]], "more than once"),
]
FILES["dup"] = "A=1\nB=2\nA=3\n"


def intended(before, change):
    d = dict(before)
    if change[0] == "set":
        d[change[1]] = change[2]
    elif change[0] == "del":
        del d[change[1]]
    else:
        d = {(change[2] if k == change[1] else k): v for k, v in d.items()}
    return d


def changed_lines(a, b):
    sm = difflib.SequenceMatcher(a=a.splitlines(), b=b.splitlines(), autojunk=False)
    old, new = [], []
    for tag, i1, i2, j1, j2 in sm.get_opcodes():
        if tag != "equal":
            old += a.splitlines()[i1:i2]
            new += b.splitlines()[j1:j2]
    return old, new


def edit_suite():
    jobs = [{"op": "edit", "text": FILES[f], "method": m, "args": a} for f, m, a, _ in EDITS]
    jobs += [{"op": "edit", "text": FILES[f], "method": m, "args": a} for f, m, a, _ in REFUSALS]
    results = run(jobs)
    for (f, m, a, change), res in zip(EDITS, results[:len(EDITS)]):
        res = dict(res)
        what = "%s %s %r" % (f, m, a)
        if not res["ok"]:
            check(False, what + " raised " + res["err"])
            continue
        text = res["value"]
        before = dict(oracle(FILES[f]))
        check(dict(oracle(text)) == intended(before, change),
              what + ": python-dotenv reads %r" % dict(oracle(text)))
        old, new = changed_lines(FILES[f], text)
        key = change[1]
        vals = [v for v in (before.get(key), change[-1] if change[0] == "set" else None) if v]

        def entry_line(ln):
            # the key's own line, a comment, or a line of a multi-line value
            return (key in ln or change[0] == "ren" and change[2] in ln or ln.lstrip().startswith("#") or f == "nofinal"
                    or any(ln.strip("'\"") in v for v in vals))
        ok_old = all(entry_line(ln) for ln in old)
        ok_new = all(entry_line(ln) for ln in new)
        check(ok_old and ok_new, what + ": changed lines %r -> %r" % (old, new))
        if m == "delete":
            lines = FILES[f].splitlines()
            at = [i for i, ln in enumerate(lines)
                  if re.match(r"(export\s+)?%s\s*=" % re.escape(key), ln)][0]
            above = [ln for ln in lines[:at][::-1]]
            comments = []
            for ln in above:
                if not ln.startswith("#"):
                    break
                comments.append(ln)
            check(all(c in old for c in comments) and len(old) == len(comments) + 1 + (
                lines[at].count('"') == 1), what + ": removed %r, want the entry and %r" % (old, comments))
        if f == "nofinal":
            check(not text.endswith("\n"), what + ": gained a final newline: %r" % text)
        if f == "crlf":
            check("\n" not in text.replace("\r\n", ""), what + ": bare LF in %r" % text)
    for (f, m, a, reason), res in zip(REFUSALS, results[len(EDITS):]):
        res = dict(res)
        check(not res["ok"] and reason in res["err"] and res["value"] == FILES[f],
              "%s %s %r: want a refusal naming %r, text unchanged; got %r" % (f, m, a, reason, res))


# ---- 3. round trip of tricky values -------------------------------------------

TRICKY = ["plain", "", " lead", "trail ", "a b", "a#b", "a #b", "#x", "it's", 'say "hi"',
          "both ' and \"", "back\\slash", "\\n literal", "line\nbreak", "cr\rlf", "\ttab",
          "x=y", "$HOME", "$", "{}", "\u00e9t\u00e9", "\u00a0nbsp\u00a0", "a\u2028b", "'", '"',
          "''", "\\'", "\\\"", "a\\\\b", "\x0bvt", "#", "=", "export X=1"]


def roundtrip_suite():
    texts = ["KEY=old\n", "KEY='old'\n", 'KEY="old"  # c\n', "# c\nOTHER=1\n", "KEY=old # c\n"]
    jobs, want = [], []
    for t in texts:
        for v in TRICKY:
            jobs.append({"op": "edit", "text": t, "method": "set", "args": [["KEY"], v]})
            want.append((t, v))
    for (t, v), res in zip(want, run(jobs)):
        res = dict(res)
        if not res["ok"]:
            check(False, "set %r in %r raised %s" % (v, t, res["err"]))
            continue
        got = dict(oracle(res["value"]))
        check(got.get("KEY") == v, "set %r in %r wrote %r, python-dotenv reads %r"
              % (v, t, res["value"], got.get("KEY")))


decode_suite()
edit_suite()
roundtrip_suite()
print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
