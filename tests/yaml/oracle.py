"""PyYAML side of the yaml differential suite (tests/yaml/run.sh).

Run with Debian's /usr/bin/python3 (python3-yaml): PyYAML's CSafeLoader is
what the daemon reads its config.yml with.

    oracle.py gen DIR             writes the corpus: DIR/NNNN.yaml and, for
                                  each, DIR/NNNN.expect (PyYAML's reading in
                                  canonical text, or ERROR)
    oracle.py decode DIR ACTUAL   compares ACTUAL (yaml_oracle canon output)
                                  with the .expect files
    oracle.py encode DIR          reads yaml.encode's outputs DIR/NNNN.yaml
                                  with PyYAML and compares with .expect

Each command ends with "N passed, N failed". The corpus is generated here,
from the lists below: no third-party data.
"""
import math
import os
import re
import sys

import yaml


class Loader(yaml.CSafeLoader):
    """safe_load, with the one exception SPEC §5 makes: timestamps stay
    the strings they were written as."""


Loader.add_constructor(
    "tag:yaml.org,2002:timestamp", lambda loader, node: loader.construct_scalar(node)
)

INT64 = (-(2**63), 2**63 - 1)
KEEP = re.compile(rb"[A-Za-z0-9 \-.:/_$@{}()+=,;!?*&<>|~^]")


class Refused(Exception):
    pass


def canon_str(s):
    data = s.encode("utf-8", "surrogatepass") if isinstance(s, str) else s
    out = []
    for b in data:
        c = bytes([b])
        out.append(c.decode() if KEEP.fullmatch(c) else "\\x%02x" % b)
    return 's:"' + "".join(out) + '"'


def canon_key(k, depth):
    """The two disagreements Lua tables force on keys: a float key with an
    integral value is an integer key in Lua (1.0: x reads as [1]), and a
    NaN key cannot exist (yaml.decode refuses it)."""
    if isinstance(k, float) and math.isnan(k):
        raise Refused("NaN key")
    if isinstance(k, float) and k.is_integer() and INT64[0] <= k <= INT64[1]:
        return canon(int(k))
    return canon(k, depth + 1)


def canon(v, depth=0):
    """The same canonical text yaml_oracle.c writes for Lua values."""
    if depth > 600:
        raise Refused("too deep")
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        if not INT64[0] <= v <= INT64[1]:
            raise Refused("integer outside int64")  # yaml.decode refuses these
        return "i:%d" % v
    if isinstance(v, float):
        if math.isnan(v):
            return "f:nan"
        if math.isinf(v):
            return "f:inf" if v > 0 else "f:-inf"
        return "f:%.17g" % v
    if isinstance(v, str):
        return canon_str(v)
    if isinstance(v, list):
        return "[" + ",".join(canon(x, depth + 1) for x in v) + "]"
    if isinstance(v, dict):
        strings = [canon_str(k) + "=" + canon(x, depth + 1) for k, x in v.items()
                   if isinstance(k, str)]
        others = sorted(canon_key(k, depth) + "=" + canon(x, depth + 1)
                        for k, x in v.items() if not isinstance(k, str))
        return "{" + ",".join(strings + others) + "}"
    raise Refused("a %s" % type(v).__name__)  # bytes, set, tuple: not supported


def pyyaml_reads(data):
    try:
        return canon(yaml.load(data, Loader=Loader))
    except (Exception, RecursionError):  # PyYAML refuses (any error), or we do
        return "ERROR"


# ---- the corpus -------------------------------------------------------------

SCALARS = """
yes Yes YES yEs no No NO nO true True TRUE tRue false False FALSE on On ON oN off Off OFF
y Y n N ~ null Null NULL nUll nil None
0 00 -0 +0 0777 -0777 0o17 08 09 0_7 0b101 -0b101 0b 0b2 0x1F 0x1f -0x1F 0xg 0x_ 0x_1
1_000 1__0 1_ +12 -12 123456789 9223372036854775807 -9223372036854775808
9223372036854775808 -9223372036854775809 99999999999999999999 0x7FFFFFFFFFFFFFFF
0x8000000000000000 0b1111111111111111111111111111111111111111111111111111111111111111
1:20 -1:20 190:20:30 1:60 1:5 0:30 1:2:3 1_0:20 1:20:
1.5 1. .5 -.5 +.5 1.0 -1.0 +1.0 1e3 1E3 1.0e3 1.0e+3 1.0E-3 1.5e+03 1.e+3 6.8523015e+5
685.230_15e+03 685_230.15 1_0.5 1.5_ ._5 1.5.5 1.5e3.5 1:30.5 -1:30.5 190:20:30.15 1:30.
.inf -.inf +.inf .Inf .INF .iNf inf -inf .nan .NaN .NAN -.nan nan
2001-12-14 2001-12-14t21:59:43.10-05:00 2001-12-14T21:59:43Z 2002-12-14 2001-1-1
${HOME} ${HOME}/x $VAR http://example.com:8080/a?b=c a#b a.b.c 1.2.3 v1.2 -x ~x x~ <<x = ==
""".split()

QUOTED = ["'yes'", '"yes"', "'1:20'", '"0777"', "'~'", '""', "''", "'a''b'", '"a\\tb"',
          '"\\u00e9"', '"\\x41"', '"a\\\nb"', '"line1\n\n  line2"', "'multi\n  line'",
          '"\\U0001F600"', '"\\N\\L\\P"', '"\\_"', '"\\0"']

TAGGED = ["!!str 12", "!!str yes", "!!str", "!!int '12'", "!!int 0x1f", "!!int abc",
          "!!int 1:20", "!!float 1", "!!float '1e3'", "!!float .inf", "!!float abc",
          "!!bool yes", "!!bool 'On'", "!!bool maybe", "!!null x", "!!null ''",
          "!!timestamp 2001-01-01", "! 12", "! yes", "!foo bar", "!!python/tuple [1]",
          "!!python/object:os.system x", "!!map {a: 1}", "!!seq [1]", "!!str [1]",
          "!!map [1]", "!!seq {a: 1}", "!!int [1]", "!<tag:yaml.org,2002:str> 12",
          "!<tag:yaml.org,2002:int> '7'", "!!merge <<", "!!value ="]


def scalar_docs():
    for s in SCALARS + [""]:
        yield "%s\n" % s
        yield "key: %s\n" % s
        yield "- %s\n- after\n" % s
        yield "[%s, x]\n" % s if s else "[x]\n"
        if s not in ("", "~", "=") and not s.startswith("<<"):
            yield "%s: value\n" % s  # as a key
    for q in QUOTED + TAGGED:
        yield "%s\n" % q
        yield "key: %s\n" % q


STRUCTURES = [
    "a: 1\nb:\n  c: 2\n  d: [3, 4]\n",
    "a:\n- 1\n- 2\nb:\n  - 3\n",
    "- a: 1\n  b: 2\n- c: 3\n",
    "- - 1\n  - 2\n- - 3\n",
    "{a: 1, b: [1, 2, {c: d}], e: {}}\n",
    "[1, [2, [3, []]], {}]\n",
    "a: {}\nb: []\nc:\nd: ~\n",
    "? complex key\n: value\n",
    "? [a, b]\n: value\n",
    "? {a: 1}\n: value\n",
    "[a, b]: value\n",
    "{[a]: 1}\n",
    "1: one\n2: two\n-3: minus\n",
    "true: t\nfalse: f\n",
    "1.5: x\n",
    ".nan: x\n",
    "~: null key\n",
    "null: x\nb: 1\n",
    "a: 1\na: 2\nb: 3\n",
    "b: 1\na: 2\nb: 3\n",
    "z: 1\ny: 2\nx: 3\nw: 4\n",
    "key with spaces: value with spaces\n",
    "'quoted key': 1\n\"dq key\": 2\n",
    "a: b: c\n",
    "a: 'b\n",
    "a: [1, 2\n",
    "a: {b: 1\n",
    "a:\n  b: 1\n c: 2\n",
    "a:\n\tb: 1\n",
    "a: 1\n\tb: 2\n",
    "- a\nb: c\n",
    "a: @x\n",
    "a: `x\n",
    "a: %x\n",
    "a: |\n  text\n b\n",
    "--- a\n--- b\n",
    "a: 1\n---\nb: 2\n",
    "a: 1\n...\n",
    "a: 1\n...\n---\nb: 2\n",
    "---\na: 1\n",
    "--- !!map\na: 1\n",
    "%YAML 1.1\n---\na: 1\n",
    "%YAML 1.2\n---\na: 1\n",
    "%YAML 2.0\n---\na: 1\n",
    "%TAG !e! tag:example.com,2000:\n---\na: !e!foo 1\n",
    "%TAG !! tag:yaml.org,2002:\n---\na: !!int '3'\n",
    "# only a comment\n",
    "",
    "\n\n",
    "---\n",
    "---\n...\n",
    "...\n",
    "a: 1 # comment\n# comment\nb: 2 #\n",
    "a: 1#not comment\n",
    "a: 'x' # c\n",
    "a:     spaced    value   \n",
    "a: \"\\\n  continued\"\n",
    "a: plain\n  continued\n  lines\n",
    "a: plain\n\n  para\n",
    "- [a, b]: c\n",
    "{a: [b, {c: [d]}]}\n",
    "[a: 1, b: 2]\n",
    "{a, b: 1}\n",
    "{? a: 1}\n",
    "[? a : 1]\n",
    "a: [b, c,]\n",
    "a: {b: c,}\n",
    "a: [,]\n",
    "[\n  1,\n  2\n]\n",
    "{\n  \"a\": 1,\n  \"b\": [true, null, 1.5e+3]\n}\n",
    '{"a":1,"b":{"c":[1,2,3]}}\n',
    "a:\n  - b\n  -\n  - c\n",
    "-\n- a\n-\n",
    "- ? a\n  : b\n",
    "a:\n  # comment inside\n  b: 1\n",
]

BLOCK_SCALARS = [
    "a: |\n  line1\n  line2\n",
    "a: |-\n  line1\n  line2\n",
    "a: |+\n  line1\n  line2\n\n\n",
    "a: >\n  folded\n  text\n\n  para\n",
    "a: >-\n  folded\n  text\n",
    "a: >+\n  folded\n\n",
    "a: |2\n    indented\n  less\n",
    "a: |1\n  x\n",
    "a: >2-\n   x\n  y\n",
    "a: |\n  x\n   more\n  x\nb: 1\n",
    "a: |\n\n  after blank\n",
    "a: |\n  trailing spaces   \n",
    "a: |\n  # not a comment\n",
    "a: |  # comment\n  x\n",
    "a: |\n",
    "a: >\n",
    "a: |\nb: 1\n",
    "- |\n  in a list\n- >\n  folded\n  in list\n",
    "a: |\n  \ttab\n",
    "a: >\n  a\n    more indented\n  b\n",
    "a: |-\n  x\n\n\nb: 1\n",
    "a: |\n  x\n  ---\n  y\n",
    "|\n top level\n",
    ">\n top\n level\n",
]

ANCHORS = [
    "a: &x 1\nb: *x\n",
    "a: &x [1, 2]\nb: *x\n",
    "a: &x {k: v}\nb: *x\n",
    "a: *x\n",
    "a: &x 1\nb: &x 2\nc: *x\n",
    "a: &x [*x]\n",
    "a: &x\n  b: *x\n",
    "&r [1, *r]\n",
    "- &a x\n- *a\n- &b [*a, *a]\n- *b\n",
    "a: &x\nb: *x\n",
    "&k key: *k\n",
    "? &k [a]\n: 1\n",
    "a: &x 1\n*x : 2\n",
    "a: &anchor_name-1 v\nb: *anchor_name-1\n",
    "a: &x !!str 1\nb: *x\n",
    "a: &x 'q'\nb: *x\n",
]

MERGES = [
    "base: &b {x: 1, y: 2}\nderived:\n  <<: *b\n  y: 3\n",
    "base: &b {x: 1, y: 2}\nderived:\n  y: 3\n  <<: *b\n",
    "a: &a {x: 1, y: 1}\nb: &b {y: 2, z: 2}\nc:\n  <<: [*a, *b]\n  w: 0\n",
    "a: &a {x: 1, y: 1}\nb: &b {y: 2, z: 2}\nc:\n  <<: [*b, *a]\n",
    "a: &a {x: 1}\nb: &b {x: 2}\nc:\n  <<: *a\n  <<: *b\n",
    "a: &a {x: 1}\nc:\n  <<: *a\n  x: 5\n  q: 6\n",
    "c:\n  <<: {x: 1, y: 2}\n  y: 3\n",
    "c:\n  <<: [{x: 1}, {x: 2, y: 2}]\n",
    "c:\n  <<: 1\n",
    "c:\n  <<: [1]\n",
    "c:\n  <<: [[a]]\n",
    "c:\n  <<: []\n",
    "c:\n  <<: ~\n",
    "c:\n  '<<': {x: 1}\n",
    "c:\n  \"<<\": {x: 1}\n",
    "c:\n  !!merge <<: {x: 1}\n",
    "<<: {x: 1}\ny: 2\n",
    "- <<\n",
    "a: <<\n",
    "=: value\n",
    "a: =\n",
    "a: &a {x: 1, <<: {y: 2}}\nb:\n  <<: *a\n  z: 3\n",
    "a: &a {x: 1}\nb: &b {<<: *a, y: 2}\nc: {<<: *b, z: 3}\n",
    "defaults: &defaults\n  adapter: postgres\n  host: localhost\n"
    "development:\n  database: dev\n  <<: *defaults\ntest:\n  <<: *defaults\n  database: test\n",
    "a: &a {1: one, x: 1}\nb: {<<: *a, 2: two}\n",
    "{<<: {a: 1}, b: 2}\n",
    "- <<: {a: 1}\n  b: 2\n",
]

ERRORS = [
    "a: 1\n b: 2\n",
    "- a\n - b\n",
    "a:\n- b\n c\n",
    "[",
    "]",
    "{",
    "}",
    "a: ]\n",
    "'unterminated\n",
    '"unterminated\n',
    '"bad escape \\q"\n',
    "a: *\n",
    "a: &\n",
    "a: !\n",
    "! !\n",
    "a: b\n- c\n",
    "key: value: other\n",
    "\x00\n",
    "a: \x07\n",
    "a: \x1b[0m\n",
    "---\n- a\n--- b\n",
    "? a\n? b\n",
    ": x\n",
    "a: [b]c\n",
    "a: {b}c\n",
    "a:\n  - b\n  c: d\n",
    "aaa: 1\n" + "a" * 1100 + ": 2\n",
]

UTF8 = [
    "name: café\n",
    "名前: 日本語\n",
    "emoji: 😀\n",
    "a: \"\\u263A\"\n",
    "\ufeffa: bom\n",
    "a: \ufeffinner\n",
    "a: \u0085x\n",
    "a: b\u2028c\n",
    "key: ‘quotes’\n",
    "'é': 1\n",
]

BYTES = [
    b"a: \xff\n",
    b"a: \xc3\n",
    b"a: \xed\xa0\x80\n",
    b"\xff\xfea\x00:\x00 \x001\x00\n\x00",
    b"\xfe\xff\x00a\x00:\x00 \x001\x00\n",
    b"\xef\xbb\xbf",
    b"\xef\xbb\xbf\xef\xbb\xbfa: 1\n",
]


def config(indent, seq_indent, variant):
    """A teleclaude-like config.yml: comments, ${VAR}s, lists of maps."""
    i = " " * indent
    s = " " * seq_indent
    lines = [
        "# teleclaude configuration",
        "# edited by hand; comments matter",
        "",
        "computer:",
        i + "name: ${COMPUTER_NAME}",
        i + "user: ${USER}  # the login",
        i + "trusted_dirs:",
        i + s + "- path: ~/work",
        i + s + "  desc: work tree" if variant % 2 else i + s + "  desc: 'work: tree'",
        i + s + "- path: /srv/data",
        i + s + "  desc: \"data # not a comment\"",
        i + s + "  writable: " + ["yes", "no", "true", "off"][variant % 4],
        "",
        "redis:",
        i + "url: redis://localhost:6379/0",
        i + "password: ${REDIS_PASSWORD}",
        i + "timeout: " + ["5", "5.0", "0:05", "1e3", "05"][variant % 5],
        "",
        "telegram:",
        i + "bot_token: ${TELEGRAM_BOT_TOKEN}",
        i + "chat_id: -1001234567890",
        i + "owner_ids: [123456789012345678, 987654321098765432]",
        i + "supergroup: " + ["~", "", "null", "'null'"][variant % 4],
        "",
        "logging:",
        i + "level: INFO",
        i + "file: ${HOME}/.teleclaude/logs/teleclaude.log",
        i + "rotate:",
        i + i + "max_bytes: 10_485_760",
        i + i + "keep: 5",
        "",
        "defaults: &defaults",
        i + "model: sonnet",
        i + "max_turns: 30",
        "",
        "agents:",
        i + s + "- name: claude",
        i + s + "  <<: *defaults",
        i + s + "  command: claude --dangerously-skip-permissions",
        i + s + "- name: codex",
        i + s + "  <<: *defaults",
        i + s + "  model: gpt",
        i + s + "  env:",
        i + s + "    OPENAI_API_KEY: ${OPENAI_API_KEY}",
        "",
        "motd: |",
        i + "Welcome to ${COMPUTER_NAME}.",
        i + "Be nice.",
        "",
        "updated: 2024-05-01",
        "version: 1.10",
    ]
    return "\n".join(lines) + "\n"


def documents():
    docs = list(scalar_docs()) + STRUCTURES + BLOCK_SCALARS + ANCHORS + MERGES + ERRORS + UTF8
    docs += [config(indent, seq, v) for indent in (2, 4) for seq in (0, 2) for v in range(5)]
    out = [d.encode("utf-8") for d in docs] + BYTES
    # the same structures with CRLF line ends, a BOM, and no final newline
    for d in STRUCTURES[:40] + BLOCK_SCALARS + MERGES[:8] + [config(2, 2, 0), config(4, 0, 1)]:
        b = d.encode("utf-8")
        out.append(b.replace(b"\n", b"\r\n"))
        out.append(b"\xef\xbb\xbf" + b)
        out.append(b.rstrip(b"\n"))
    # a billion laughs, and a document nested too deep for our limit
    laughs = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for n in range(1, 9):
        prev = chr(ord("a") + n - 1)
        laughs.append("%s: &%s [%s]" % (chr(ord("a") + n), chr(ord("a") + n),
                                         ", ".join("*" + prev for _ in range(10))))
    out.append(("\n".join(laughs) + "\n").encode())
    return out


def gen(directory):
    os.makedirs(directory, exist_ok=True)
    docs = documents()
    for n, data in enumerate(docs):
        with open(os.path.join(directory, "%04d.yaml" % n), "wb") as f:
            f.write(data)
        # the last one is the billion laughs: PyYAML shares the lists (and
        # its canonical text would be 10^9 items); yaml.decode bounds alias
        # expansion and refuses
        expect = "ERROR" if n == len(docs) - 1 else pyyaml_reads(data)
        with open(os.path.join(directory, "%04d.expect" % n), "w") as f:
            f.write(expect)
    return 0


def report(passed, failed):
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


def decode(directory, actual):
    passed = failed = 0
    with open(actual, encoding="utf-8", errors="replace") as f:
        for line in f:
            path, _, got = line.rstrip("\n").partition("\t")
            got_value = got.split("\t")[0]
            with open(path[: -len(".yaml")] + ".expect") as e:
                want = e.read()
            if got_value == want:
                passed += 1
            else:
                failed += 1
                with open(path, "rb") as d:
                    text = d.read()
                print("FAIL %s\n  text %r\n  want %s\n  got  %s" % (path, text[:300], want, got))
    return report(passed, failed)


def encode(directory):
    passed = failed = 0
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".yaml"):
            continue
        path = os.path.join(directory, name)
        with open(path, "rb") as f:
            text = f.read()
        with open(path[: -len(".yaml")] + ".expect") as f:
            want = f.read()
        got = pyyaml_reads(text)
        if got == want:
            passed += 1
        else:
            failed += 1
            print("FAIL %s: PyYAML reads yaml.encode's output differently\n%s\n  want %s\n  got  %s"
                  % (path, text.decode("utf-8", "replace")[:300], want, got))
    return report(passed, failed)


def main(argv):
    if argv[1] == "gen":
        return gen(argv[2])
    if argv[1] == "decode":
        return decode(argv[2], argv[3])
    if argv[1] == "encode":
        return encode(argv[2])
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
