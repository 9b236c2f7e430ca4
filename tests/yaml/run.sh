#!/bin/sh
# The yaml differential suite (mk/yaml.mk copies it next to yaml_oracle):
# yaml.decode against PyYAML's CSafeLoader on the corpus oracle.py
# generates, then yaml.encode's output read back by PyYAML. Ends with the
# sum "N passed, N failed".
set -u
here=$(cd "$(dirname "$0")" && pwd)
py=/usr/bin/python3
oracle=tests/yaml/oracle.py
work=$(mktemp -d "${TMPDIR:-/tmp}/yaml-suite.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT INT TERM
if ! "$py" -c 'import yaml; yaml.CSafeLoader' 2>/dev/null; then
    echo "yaml-suite: /usr/bin/python3 has no PyYAML with libyaml; run vendor/bootstrap.sh test"
    echo "0 passed, 1 failed"
    exit 1
fi
mkdir "$work/corpus" "$work/encoded"
"$py" "$oracle" gen "$work/corpus" || { echo "0 passed, 1 failed"; exit 1; }
"$here/yaml_oracle" canon "$work"/corpus/*.yaml > "$work/actual" || { echo "0 passed, 1 failed"; exit 1; }
out1=$("$py" "$oracle" decode "$work/corpus" "$work/actual")
out2=$("$here/yaml_oracle" encode "$work/encoded")
out3=$("$py" "$oracle" encode "$work/encoded")
passed=0
failed=0
for out in "$out1" "$out2" "$out3"; do
    printf '%s\n' "$out" | grep -v '^[0-9]* passed, [0-9]* failed$'
    line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -n 1)
    [ -n "$line" ] || { failed=$((failed + 1)); continue; }
    passed=$((passed + ${line%% passed*}))
    f=${line#* passed, }
    failed=$((failed + ${f%% failed}))
done
echo "yaml-suite: decode vs PyYAML, encode read back by yaml.decode and by PyYAML"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
