#!/usr/bin/python3
"""Differential suite of the YAML editor, with PyYAML as the oracle.

For every case (an edit, or a sequence of edits, on a commented config
file, in every variant of the file: as written, CRLF, without a final
newline, with a byte order mark) the driver runs lua/yaml_edit.lua's
splicer and this script checks that
  (a) PyYAML's safe_load of the result equals the original data with
      exactly the intended change (key order included);
  (b) a line diff against the original removes or rewrites only lines of
      the entries the edit touched (located with PyYAML's own composer),
      in as many places as the edit touches, and keeps the line endings
      and the final newline as they were;
and that every refusal case raises with a reason and writes nothing.
Usage: oracle.py DRIVER. Ends with "N passed, N failed".
"""
import copy
import difflib
import json
import os
import subprocess
import sys
import tempfile

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIGS = os.path.join(HERE, "configs")
DRIVER = sys.argv[1]


# ---- the intended data --------------------------------------------------------

def get(data, path):
    for key in path:
        data = data[key - 1] if isinstance(key, int) else data[key]
    return data


def has(data, path):
    try:
        get(data, path)
        return True
    except (KeyError, IndexError, TypeError):
        return False


def parent_of(data, path, create=False):
    node = data
    for key in path[:-1]:
        if isinstance(key, int):
            node = node[key - 1]
        else:
            if key not in node and create:
                node[key] = {}
            node = node[key]
    return node


def put_at(mapping, key, value, after=None, before=None):
    items = list(mapping.items())
    if after is not None:
        at = [k for k, _ in items].index(after) + 1
    elif before is not None:
        at = [k for k, _ in items].index(before)
    else:
        at = len(items)
    items.insert(at, (key, value))
    mapping.clear()
    mapping.update(items)


def apply(data, method, args):
    data = copy.deepcopy(data)
    path = args[0]
    if method == "set":
        parent = parent_of(data, path, create=True)
        if isinstance(path[-1], int):
            parent[path[-1] - 1] = args[1]
        else:
            parent[path[-1]] = args[1]
    elif method == "insert":
        opts = args[2] if len(args) > 2 else {}
        put_at(parent_of(data, path), path[-1], args[1], opts.get("after"), opts.get("before"))
    elif method == "delete":
        parent = parent_of(data, path)
        if isinstance(path[-1], int):
            del parent[path[-1] - 1]
        else:
            del parent[path[-1]]
    elif method == "rename":
        parent = parent_of(data, path)
        items = [(args[1] if k == path[-1] else k, v) for k, v in parent.items()]
        parent.clear()
        parent.update(items)
    elif method == "move":
        source = parent_of(data, path)
        value = source.pop(path[-1])
        put_at(parent_of(data, args[1], create=True), args[1][-1], value)
    elif method == "append":
        get(data, path).append(args[1])
    return data


def canon(value):
    """Data with key order made visible, for comparisons."""
    if isinstance(value, dict):
        return ("map", [(k, canon(v)) for k, v in value.items()])
    if isinstance(value, list):
        return [canon(v) for v in value]
    return value


# ---- where an entry's lines are, by PyYAML's composer ---------------------------

def last_line(node):
    if isinstance(node, yaml.MappingNode) and node.flow_style is not True and node.value:
        return max(last_line(node.value[-1][0]), last_line(node.value[-1][1]))
    if isinstance(node, yaml.SequenceNode) and node.flow_style is not True and node.value:
        return last_line(node.value[-1])
    end = node.end_mark
    if node.start_mark.line < end.line and end.column == 0:
        return end.line - 1
    return end.line


def entry_lines(text, path, lines, whole=True):
    """Line numbers (0-based) of the entry at path and its comments above;
    only the key's line when whole is False."""
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    for i, key in enumerate(path):
        last = i == len(path) - 1
        if isinstance(key, int):
            child = node.value[key - 1]
            first, node = child.start_mark.line, child
            # a sequence item starts at its dash
            while first > 0 and not lines[first].lstrip().startswith("-"):
                first -= 1
        else:
            k, v = next((k, v) for k, v in node.value if k.value == key)
            first, node = k.start_mark.line, v
            if last and not whole:
                return {first}
    end = last_line(node)
    while first > 0 and lines[first - 1].lstrip().startswith("#"):
        first -= 1
    span = set(range(first, end + 1))
    # an entry set apart by blank lines takes one of them along
    if (first == 0 or not lines[first - 1].strip()) and end + 1 < len(lines) and not lines[end + 1].strip():
        span |= {first - 1, end + 1} - {-1}
    return span


# ---- the cases ------------------------------------------------------------------------

def S(*path):
    return list(path)


CASES = {
    "two.yml": [
        ("change a value", [("set", [S("redis", "url"), "redis://cache:6380/1"])]),
        ("change the update channel", [("set", [S("update", "channel"), "beta"])]),
        ("a value that needs quotes", [("set", [S("computer", "name"), "a: b # c"])]),
        ("a number", [("set", [S("redis", "max_connections"), 20])]),
        ("a value in a list of maps", [("set", [S("telegram", "bots", 2, "token"), "${NEW_TOKEN}"])]),
        ("a new key at the end of its mapping", [("set", [S("redis", "db"), 2])]),
        ("a new key with missing parents", [("set", [S("deployment", "channel"), "alpha"])]),
        ("a whole list", [("set", [S("computer", "trusted_dirs"), [{"path": "/x", "desc": "y"}]])]),
        ("a scalar becomes a mapping", [("set", [S("log_level"), {"level": "debug", "file": "x.log"}])]),
        ("a section becomes a scalar", [("set", [S("update"), "off"])]),
        ("delete a key", [("delete", [S("redis", "password")])]),
        ("delete a key with its comment", [("delete", [S("update", "channel")])]),
        ("delete a section with its comment", [("delete", [S("redis")])]),
        ("delete a list item", [("delete", [S("computer", "trusted_dirs", 1)])]),
        ("delete the last line", [("delete", [S("log_level")])]),
        ("delete the only key", [("delete", [S("update", "channel")]),
                                 ("delete", [S("update", "check_interval")])]),
        ("rename a key", [("rename", [S("telegram", "api_url"), "api_endpoint"])]),
        ("rename a key in every item of a list of maps",
         [("rename", [S("telegram", "bots", 1, "name"), "id"]),
          ("rename", [S("telegram", "bots", 2, "name"), "id"])]),
        ("rename a section", [("rename", [S("redis"), "cache"])]),
        ("move a key into a new section", [("move", [S("update", "channel"), S("deployment", "channel")])]),
        ("move a section", [("move", [S("redis"), S("computer", "redis")])]),
        ("move and rename", [("move", [S("redis", "url"), S("computer", "redis_url")])]),
        ("add a section after a named one with a comment",
         [("insert", [S("deployment"), {"channel": "alpha"},
                      {"after": "update", "comment": "Update channels: stable, beta, alpha"}])]),
        ("insert before a key with a comment",
         [("insert", [S("redis", "db"), 0, {"before": "max_connections", "comment": "database index"}])]),
        ("insert before a commented key", [("insert", [S("update", "mirror"), "eu", {"before": "channel"}])]),
        ("insert at the end", [("insert", [S("telegram", "timeout"), 30])]),
        ("append to a list of maps", [("append", [S("telegram", "bots"), {"name": "third", "token": "t"}])]),
        ("append a string", [("append", [S("computer", "trusted_dirs"), "/opt"])]),
    ],
    "four.yml": [
        ("change a value", [("set", [S("redis", "timeout"), 10])]),
        ("a new key", [("set", [S("logging", "rotate"), True])]),
        ("a new section", [("set", [S("deployment", "channel"), "alpha"])]),
        ("delete a key", [("delete", [S("redis", "url")])]),
        ("delete a list item", [("delete", [S("mcp", "servers", 2)])]),
        ("rename in every item", [("rename", [S("mcp", "servers", 1, "enabled"), "on_start"]),
                                  ("rename", [S("mcp", "servers", 2, "enabled"), "on_start"])]),
        ("rename a quoted key", [("rename", [S("computer", "name"), "hostname"])]),
        ("move a section", [("move", [S("logging"), S("computer", "logging")])]),
        ("move out of a nested mapping", [("move", [S("redis", "timeout"), S("timeout")])]),
        ("insert after with a comment",
         [("insert", [S("deployment"), {"channel": "alpha"}, {"after": "redis", "comment": "channels"}])]),
        ("append to a flush list", [("append", [S("mcp", "servers"), {"name": "git", "enabled": True}])]),
        ("set an item", [("set", [S("computer", "trusted_dirs", 2, "desc"), "temporary"])]),
    ],
    "utf8.yml": [
        ("change a value after UTF-8", [("set", [S("computer", "name"), "Jürgen's"])]),
        ("change a value with a comment", [("set", [S("computer", "note"), "新しい"])]),
        ("rename a UTF-8 key", [("rename", [S("名前"), "なまえ"])]),
        ("delete after UTF-8", [("delete", [S("computer", "trusted_dirs", 2)])]),
        ("append after UTF-8", [("append", [S("computer", "trusted_dirs"), {"path": "/ü"}])]),
        ("move after UTF-8", [("move", [S("redis", "url"), S("computer", "redis_url")])]),
        ("insert after UTF-8", [("insert", [S("computer", "ü"), "ö", {"after": "name", "comment": "umlaut"}])]),
    ],
    "flowy.yml": [
        ("replace a block scalar", [("set", [S("motd"), "short"])]),
        ("a scalar inside a flow sequence", [("set", [S("ports", 2), 8443])]),
        ("a scalar inside a flow mapping", [("set", [S("labels", "env"), "dev"])]),
        ("a whole flow mapping", [("set", [S("labels"), {"env": "dev"}])]),
        ("rename inside a flow mapping", [("rename", [S("labels", "team"), "group"])]),
        # yaml.encode writes "${VAR}" plain for block context; inside a flow
        # collection its braces would end the scalar, so it is quoted there
        ("a ${VAR} inside a flow mapping", [("set", [S("labels", "env"), "${DEPLOY_ENV}"])]),
        ("a comma inside a flow sequence", [("set", [S("ports", 2), "a, b"])]),
        ("rename to a key with braces inside a flow mapping", [("rename", [S("labels", "team"), "x{y}"])]),
        ("delete next to anchors", [("delete", [S("last")])]),
    ],
}

# (file text, edit, why) that must be refused
REFUSALS = [
    ("flowy.yml", ("append", [S("ports"), 8080]), "flow"),
    ("flowy.yml", ("set", [S("labels", "owner"), "me"]), "flow"),
    ("flowy.yml", ("delete", [S("labels", "env")]), "flow"),
    ("flowy.yml", ("set", [S("service", "name"), "web"]), "merge"),
    ("flowy.yml", ("set", [S("defaults", "retries"), 5]), "anchor"),
    ("flowy.yml", ("delete", [S("defaults")]), "anchor"),
    ("flowy.yml", ("set", [S("refs", "ref"), 1]), "alias"),
    ("flowy.yml", ("set", [S("refs", "ref", "retries"), 1]), "alias"),
    ("flowy.yml", ("rename", [S("dups", "dup"), "x"]), "duplicate"),
    ("flowy.yml", ("set", [S("dups", "new"), 1]), "duplicate"),
    ("flowy.yml", ("set", [S("keys", "name"), "y"]), "not a string"),
    ("flowy.yml", ("set", [S("keys", "new"), 1]), "not a string"),
    ("tabs", ("set", [S("a", "b"), 2]), "tab"),
    ("multi", ("set", [S("a"), 2]), "several"),
]
EXTRA_TEXTS = {"tabs": "a:\n\tb: 1\n", "multi": "a: 1\n---\nb: 2\n"}


def variants(name, text):
    yield name, text
    if "\r\n" not in text:
        yield name + " (CRLF)", text.replace("\n", "\r\n")
    if text.endswith("\n"):
        yield name + " (no final newline)", text[:-1]
        yield name + " (CRLF, no final newline)", text[:-1].replace("\n", "\r\n")
    yield name + " (BOM)", "\ufeff" + text


def load(raw):
    return yaml.safe_load(raw)  # bytes: PyYAML honours a byte order mark


def run_edit(tmp, raw, method, args):
    src = os.path.join(tmp, "in.yml")
    out = os.path.join(tmp, "out.yml")
    for p in (out, out + ".err"):
        if os.path.exists(p):
            os.remove(p)
    with open(src, "wb") as f:
        f.write(raw)
    spec = json.dumps({"method": method, "args": args})
    proc = subprocess.run([DRIVER, os.path.join(HERE, "edit.lua"), src, spec, out],
                          capture_output=True, timeout=60)
    if proc.returncode != 0:
        return None, "driver failed: " + proc.stderr.decode(errors="replace")
    if os.path.exists(out + ".err"):
        with open(out + ".err", "rb") as f:
            return None, f.read().decode(errors="replace")
    with open(out, "rb") as f:
        return f.read(), None


def check_lines(before, after, touched, hunks, exact=False):
    """None if the diff stays within `touched` lines of before, in at most
    `hunks` places, with line endings and final newline kept."""
    # a line gains a line break when one is added after it at the end of
    # a text without a final newline: compare lines without their "\r"
    a = [line.rstrip("\r") for line in before.decode("utf-8").split("\n")]
    b = [line.rstrip("\r") for line in after.decode("utf-8").split("\n")]
    ops = [op for op in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
           if op[0] != "equal"]
    if len(ops) > hunks:
        return "%d changed places, expected at most %d: %s" % (len(ops), hunks, ops)
    removed = set()
    for tag, i1, i2, _, _ in ops:
        if tag in ("delete", "replace"):
            removed |= set(range(i1, i2))
    if removed - touched:
        return "lines %s changed outside the edited entry" % sorted(removed - touched)
    # a deleted entry goes with the comment lines directly above it
    stayed = [i for i in touched - removed if a[i].strip()]
    if exact and stayed:
        return "lines %s of the entry stayed" % stayed
    blanks = [i for i in removed if not a[i].strip()]
    if len(blanks) > 1 and exact:
        return "blank lines %s went with the entry" % blanks
    crlf = b"\r\n" in before
    for line in after.split(b"\n")[:-1]:
        if line.endswith(b"\r") != crlf:
            return "a line ending changed: %r" % line
    # (deleting the last line of such a text leaves the line before it last)
    if before.endswith(b"\n") != after.endswith(b"\n") and len(a) - 1 not in touched:
        return "the final newline changed"
    if before.startswith(b"\xef\xbb\xbf") != after.startswith(b"\xef\xbb\xbf"):
        return "the byte order mark changed"
    return None


def run_case(tmp, raw, steps):
    data = load(raw)
    text = raw
    for method, args in steps:
        plain = text.decode("utf-8").lstrip("\ufeff")
        lines = plain.split("\n")
        if method in ("insert", "append") or (method == "set" and not has(data, args[0])):
            touched, hunks = set(), 1
        elif method == "rename":
            touched, hunks = entry_lines(plain, args[0], lines, whole=False), 1
        else:
            touched = entry_lines(plain, args[0], lines)
            hunks = 2 if method == "move" else 1
            if method == "delete" and len(get(data, args[0][:-1])) == 1:
                touched |= entry_lines(plain, args[0][:-1], lines)
            if method == "move" and len(get(data, args[0][:-1])) == 1 and len(args[0]) > 1:
                touched |= entry_lines(plain, args[0][:-1], lines)
        new, err = run_edit(tmp, text, method, args)
        if err is not None:
            return "%s %s refused: %s" % (method, args[0], err)
        want = apply(data, method, args)
        try:
            got = load(new)
        except yaml.YAMLError as e:
            return "%s %s: PyYAML cannot read the result: %s\n%s" % (method, args[0], e, new.decode())
        if canon(got) != canon(want):
            return "%s %s: PyYAML reads\n  %r\nwanted\n  %r\n%s" % (
                method, args[0], got, want, new.decode())
        why = check_lines(text, new, touched, hunks, exact=method == "delete")
        if why:
            return "%s %s: %s\n%s" % (method, args[0], why, new.decode())
        data, text = want, new
    return None


def main():
    passed = failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, cases in CASES.items():
            with open(os.path.join(CONFIGS, name), encoding="utf-8") as f:
                base = f.read()
            for vname, text in variants(name, base):
                for title, steps in cases:
                    why = run_case(tmp, text.encode("utf-8"), steps)
                    if why:
                        failed += 1
                        print("FAIL %s: %s: %s" % (vname, title, why))
                    else:
                        passed += 1
        for name, (method, args), reason in REFUSALS:
            if name in EXTRA_TEXTS:
                raw = EXTRA_TEXTS[name].encode()
            else:
                with open(os.path.join(CONFIGS, name), "rb") as f:
                    raw = f.read()
            new, err = run_edit(tmp, raw, method, args)
            if new is not None or err is None or reason not in err:
                failed += 1
                print("FAIL refusal %s %s %s: wanted a refusal naming %r, got %r" % (
                    name, method, args[0], reason, err if err else new))
            else:
                passed += 1
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
