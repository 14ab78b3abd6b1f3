#!/usr/bin/env bash
# deps_test.sh - scripts/deps.sh passes on the tree, and fails (exit 1, naming
# the offender) on copies of the tree with one rule broken each: a folder
# cycle, a file cycle, a pure file reaching <ares.h>, <openssl/ssl.h> or
# engine/io.
set -uo pipefail
SRC=${VOLLEY_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
D="$SRC/scripts/deps.sh"
command -v python3 >/dev/null \
    || { echo "FAIL: python3 missing (scripts/setup.sh installs it)" >&2; exit 1; }
T=$(mktemp -d /tmp/vl-deps-XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0
fail() { echo "FAIL $*"; fails=$((fails+1)); }

# 1. The real tree: exit 0, one line per folder, dot output parses as a digraph.
bash "$D" >"$T/out" 2>"$T/err" || { fail "deps.sh on the tree: exit $?"; cat "$T/out" "$T/err"; }
cat "$T/out"
for f in base io smtp dns msg policy deliver sink cli queue volley; do
    grep -qE "^$f +->" "$T/out" || fail "no line for folder $f"
done
grep -qE '^deliver +->.* io( |$)' "$T/out" || fail "deliver -> io edge missing (graph not derived?)"
grep -qE '^smtp +->.*(io|dns|deliver)' "$T/out" && fail "smtp includes a layer beside or above it"
bash "$D" --dot >"$T/dot" 2>/dev/null || fail "--dot: exit $?"
head -1 "$T/dot" | grep -q '^digraph' || fail "--dot output is not a digraph"
grep -q '"sink" -> "io";' "$T/dot" || fail "--dot lacks the sink -> io edge"
bash "$D" --bogus >/dev/null 2>&1; [ $? = 2 ] || fail "an unknown argument must exit 2"

# 2. Broken copies: each must exit 1 and name the problem.
mkcopy() {
    rm -rf "$T/tree"; mkdir -p "$T/tree"
    cp -r "$SRC/engine" "$SRC/queue" "$SRC/include" "$T/tree/"
}
expect_fail() {   # expect_fail LABEL TEXT
    bash "$D" --root "$T/tree" >"$T/out" 2>"$T/err"; local rc=$?
    if [ "$rc" != 1 ]; then
        fail "$1: exit $rc, want 1"; cat "$T/err"
    elif ! grep -qF -- "$2" "$T/err"; then
        fail "$1: '$2' not in stderr:"; cat "$T/err"
    fi
}
mkcopy
echo '#include "shard.h"' >>"$T/tree/engine/base/log.c"
expect_fail "folder cycle" "folder cycle: base deliver"

mkcopy
echo '#include "msg.h"' >>"$T/tree/engine/msg/dsn.h"
echo '#include "dsn.h"' >>"$T/tree/engine/msg/msg.c"
sed -i '1i #include "dsn.h"' "$T/tree/engine/msg/msg.h"
expect_fail "file cycle" "file cycle: engine/msg/dsn engine/msg/msg"

mkcopy
echo '#include <ares.h>' >>"$T/tree/engine/dns/dns_parse.c"
expect_fail "ares in the DNS parser" "impure: engine/dns/dns_parse.c reaches <ares.h>"

mkcopy
echo '#include "dns.h"' >>"$T/tree/engine/dns/dns_cache.h"
echo '#include <ares.h>' >>"$T/tree/engine/dns/dns.h"
expect_fail "ares through a header" "impure: engine/dns/dns_cache.c reaches <ares.h>"

mkcopy
echo '#include <openssl/ssl.h>' >>"$T/tree/engine/smtp/smtp_reply.h"
expect_fail "openssl in smtp" "impure: engine/smtp/smtp_client.c reaches <openssl/ssl.h>"

mkcopy
echo '#include "rx.h"' >>"$T/tree/engine/smtp/smtp_cmd.c"
expect_fail "io in smtp" "impure: engine/smtp/smtp_cmd.c reaches engine/io/rx.h"

mkcopy
echo '#include "no_such_header.h"' >>"$T/tree/engine/io/timer.c"
expect_fail "unknown header" "names no header of the tree"

if [ "$fails" -gt 0 ]; then
    echo "deps_test: $fails failure(s)"
    exit 1
fi
echo "deps_test: ok"
