#!/usr/bin/env bash
# deps.sh - the #include graph of the house, derived from the code, and its rules.
#
#   scripts/deps.sh [--dot] [--root DIR]
#
# Every quoted #include (and any <...> one naming a project header) of every
# .c/.h under engine/*/, queue/ and include/volley/ is mapped to the folder that
# holds the header (header names are unique in the tree; "volley/x.h" is
# include/volley/x.h). Prints one line per folder with the folders it includes,
# e.g. `deliver -> base dns io msg policy queue smtp volley`, or with --dot a
# graphviz digraph (scripts/deps.sh --dot | dot -Tsvg > deps.svg).
#
# Fails (exit 1), naming the offenders, when:
#   - folders include each other in a cycle (x -> ... -> x);
#   - files do: the graph of .c->.h and .h->.h includes, a .c collapsed with the
#     same-named .h of its folder and with its private x_int.h (a.c includes b.h
#     and b.c includes a.h is a cycle between a and b);
#   - a pure file (engine/smtp/*, engine/dns/dns_parse.*, engine/dns/dns_cache.*)
#     reaches, directly or through project headers, a header of engine/io,
#     <liburing.h>, <openssl/...> or <ares.h>.
# Exit 2 on usage errors or a missing tool (python3).
set -euo pipefail

dot=0
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
while [ $# -gt 0 ]; do
    case $1 in
    --dot) dot=1 ;;
    --root) shift; root=${1:?--root needs a directory} ;;
    -h|--help) sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "deps.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
    shift
done
command -v python3 >/dev/null || { echo "deps.sh: python3 missing (scripts/setup.sh)" >&2; exit 2; }
[ -d "$root/engine" ] || { echo "deps.sh: no engine/ under $root" >&2; exit 2; }

exec python3 - "$root" "$dot" <<'PY'
import os, re, sys

root, dot = sys.argv[1], sys.argv[2] == "1"
INC = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')
FORBIDDEN_SYS = re.compile(r'^(liburing\.h|liburing/.*|openssl/.*|ares\.h|ares_.*\.h)$')

def folder_name(rel):
    """engine/dns -> dns, queue -> queue, include/volley -> volley."""
    return rel.split("/")[-1]

# The folders: engine/<layer>, queue, include/volley.
folders = []
for d in sorted(os.listdir(os.path.join(root, "engine"))):
    if os.path.isdir(os.path.join(root, "engine", d)):
        folders.append("engine/" + d)
folders += ["queue", "include/volley"]

files = {}          # rel path -> (folder, [(kind, name, lineno)])
by_name = {}        # header base name -> rel path (and "volley/x.h" -> include/volley/x.h)
for f in folders:
    base = os.path.join(root, f)
    if not os.path.isdir(base):
        continue
    for n in sorted(os.listdir(base)):
        if not (n.endswith(".c") or n.endswith(".h")):
            continue
        rel = f + "/" + n
        incs = []
        with open(os.path.join(base, n), encoding="utf-8", errors="replace") as fh:
            for i, line in enumerate(fh, 1):
                m = INC.match(line)
                if m:
                    incs.append((m.group(1), m.group(2), i))
        files[rel] = (f, incs)
        if n.endswith(".h"):
            key = "volley/" + n if f == "include/volley" else n
            if key in by_name:
                print(f"deps.sh: header name {key} is ambiguous: {by_name[key]} and {rel}",
                      file=sys.stderr)
                sys.exit(1)
            by_name[key] = rel

def resolve(kind, name):
    """The project file a #include names, or None (a system header)."""
    if name in by_name:
        return by_name[name]
    return None

problems = []
edges = {}          # file -> set of files
sys_incs = {}       # file -> [(name, line)]
for rel, (f, incs) in files.items():
    edges[rel] = set()
    sys_incs[rel] = []
    for kind, name, line in incs:
        tgt = resolve(kind, name)
        if tgt is None:
            if kind == '"':
                problems.append(f"{rel}:{line}: #include \"{name}\" names no header of the tree")
            else:
                sys_incs[rel].append((name, line))
        elif tgt != rel:
            edges[rel].add(tgt)

# ---- the folder graph -----------------------------------------------------------------
fedges = {f: set() for f in folders}
for rel, tg in edges.items():
    for t in tg:
        if files[t][0] != files[rel][0]:
            fedges[files[rel][0]].add(files[t][0])

def sccs(nodes, succ):
    """Tarjan, iterative: the strongly connected components, each sorted."""
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]
    for start in sorted(nodes):
        if start in index:
            continue
        work = [(start, iter(sorted(succ.get(start, ()))))]
        index[start] = low[start] = counter[0]; counter[0] += 1
        stack.append(start); on.add(start)
        while work:
            v, it = work[-1]
            nxt = next(it, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter[0]; counter[0] += 1
                    stack.append(nxt); on.add(nxt)
                    work.append((nxt, iter(sorted(succ.get(nxt, ())))))
                elif nxt in on:
                    low[v] = min(low[v], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop(); on.discard(w); comp.append(w)
                    if w == v:
                        break
                out.append(sorted(comp))
    return out

def witness(edges_of, comp):
    """One include per member that stays inside the component: the cycle, readable."""
    s = set(comp)
    return "; ".join(f"{a} -> {b}" for a in comp for b in sorted(edges_of(a)) if b in s)

for comp in sccs(fedges.keys(), fedges):
    if len(comp) > 1:
        names = " ".join(folder_name(c) for c in comp)
        why = []
        for a in comp:
            for rel, tg in sorted(edges.items()):
                if files[rel][0] != a:
                    continue
                for t in sorted(tg):
                    if files[t][0] in comp and files[t][0] != a:
                        why.append(f"{rel} includes {t}")
        problems.append(f"folder cycle: {names} ({'; '.join(why)})")

# ---- the file graph: a .c is one node with the same-named .h of its folder -----------
def node(rel):
    """engine/dns/dns.c, dns.h and dns_int.h (the module's private header) -> engine/dns/dns."""
    if rel.endswith("_int.h"):
        return rel[:-len("_int.h")]
    return rel[:-2]

nedges = {}
for rel, tg in edges.items():
    nedges.setdefault(node(rel), set())
    for t in tg:
        if node(t) != node(rel):
            nedges[node(rel)].add(node(t))
for comp in sccs(nedges.keys(), nedges):
    if len(comp) > 1:
        problems.append("file cycle: " + " ".join(comp) + " ("
                        + witness(lambda a: nedges.get(a, ()), comp) + ")")

# ---- pure files: no I/O layer, no liburing/OpenSSL/c-ares, even through headers ------
def pure(rel):
    n = rel.split("/")[-1]
    return rel.startswith("engine/smtp/") or (
        rel.startswith("engine/dns/") and re.match(r"^(dns_parse|dns_cache)\.[ch]$", n))

for rel in sorted(files):
    if not pure(rel):
        continue
    seen, todo, via = {rel}, [rel], {rel: None}
    while todo:                                   # breadth-first: the shortest chain
        cur = todo.pop(0)
        for t in sorted(edges[cur]):
            if t not in seen:
                seen.add(t); via[t] = cur; todo.append(t)
    def chain(x):
        out = []
        while x is not None:
            out.append(x); x = via[x]
        return " <- ".join(out)
    for t in sorted(seen):
        if files[t][0] == "engine/io":
            problems.append(f"impure: {rel} reaches {t} (chain {chain(t)})")
        for name, line in sys_incs[t]:
            if FORBIDDEN_SYS.match(name):
                problems.append(f"impure: {rel} reaches <{name}> ({t}:{line}; chain {chain(t)})")

# ---- output ---------------------------------------------------------------------------
if dot:
    print("digraph volley_includes {")
    print("    rankdir=TB; node [shape=box, fontname=\"monospace\"];")
    for f in folders:
        for t in sorted(fedges[f], key=folder_name):
            print(f'    "{folder_name(f)}" -> "{folder_name(t)}";')
    print("}")
else:
    width = max(len(folder_name(f)) for f in folders)
    for f in folders:
        tg = " ".join(sorted(folder_name(t) for t in fedges[f]))
        print(f"{folder_name(f):<{width}} -> {tg}".rstrip())
    print(f"({len(files)} files, {sum(len(t) for t in edges.values())} project #includes)")

if problems:
    for p in problems:
        print("deps.sh: " + p, file=sys.stderr)
    print(f"deps.sh: FAIL ({len(problems)} problem(s))", file=sys.stderr)
    sys.exit(1)
print("deps.sh: ok (no folder cycle, no file cycle, pure files pure)",
      file=sys.stderr if dot else sys.stdout)
PY
