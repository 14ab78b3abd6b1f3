#!/usr/bin/env bash
# queue_dirsync_test.sh - issue 9 item 10 (part): creating a queue makes the
# new directory entries durable. Under strace, `volley enqueue` creating
# DATA with 2 shards must fsync: DATA and its parent after mkdir DATA; DATA
# after each mkdir DATA/shard-K; and DATA/shard-K after LMDB created
# data.mdb in it. (An fsync of a file does not make its directory entry
# durable: after a power loss the files could be gone.)
set -uo pipefail
V=${VOLLEY_BIN:?VOLLEY_BIN not set}
command -v strace >/dev/null || { echo "FAIL: strace missing (scripts/setup.sh installs it)" >&2; exit 1; }
T=$(mktemp -d /tmp/vl-dirsync-XXXXXX)
trap 'rm -rf "$T"' EXIT
cd "$T"
printf 'Subject: d\nFrom: s@x.org\n\nhello\n' > m.eml
# LeakSanitizer cannot run under ptrace: off for this run (no-op without ASan).
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
strace -f -e trace=openat,mkdir,fsync -o trace.txt \
    "$V" enqueue --data q --shards 2 --from s@x.org --to a@dst.test m.eml >out.txt 2>err.txt \
    || { echo "FAIL: enqueue under strace: $(cat err.txt)"; exit 1; }

# Events in order: "mkdir P", "create P" (data.mdb), "fsync P" (a directory).
awk '
    match($0, /mkdir\("[^"]*", [0-7]+\) += 0/) {
        split($0, a, "\""); print "mkdir " a[2]; next }
    match($0, /openat\(AT_FDCWD, "[^"]*", [A-Z_|]*O_DIRECTORY[A-Z_|]*\) = [0-9]+/) {
        split($0, a, "\""); n = $NF; dir[n] = a[2]; next }
    match($0, /openat\(AT_FDCWD, "[^"]*data\.mdb", O_RDWR\|O_CREAT/) {
        split($0, a, "\""); print "create " a[2]; next }
    match($0, /fsync\([0-9]+\) += 0/) {
        s = $0; sub(/.*fsync\(/, "", s); sub(/\).*/, "", s);
        if (s in dir) print "fsync " dir[s]; next }
' trace.txt > events.txt

fails=0
after() {   # after FIRST THEN: a line THEN follows the first line FIRST
    awk -v a="$1" -v b="$2" '$0 == a { seen = 1 } seen && $0 == b { ok = 1 } END { exit !ok }' \
        events.txt || { echo "FAIL: no '$2' after '$1'"; fails=$((fails+1)); }
}
after "mkdir q" "fsync q"
after "mkdir q" "fsync ."
for k in 0 1; do
    after "mkdir q/shard-$k" "fsync q"
    after "create q/shard-$k/data.mdb" "fsync q/shard-$k"
done
if [ "$fails" != 0 ]; then echo "events:"; cat events.txt; exit 1; fi
echo "ok queue_dirsync"
