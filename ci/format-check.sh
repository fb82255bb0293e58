#!/bin/sh
# Every tracked C file must match the repo's .clang-format. Prints the files
# that do not, with `make format` as the fix, and "format: N passed, M failed".
pass=0
fail=0
for f in $(git ls-files '*.c' '*.h'); do
    if clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
        echo "not formatted: $f (run: make format)"
    fi
done
echo "format: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
