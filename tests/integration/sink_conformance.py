"""sink_conformance.py - replay every golden transcript (tests/transcripts/*.smtp,
PROTOCOL.md section 3) against a real `volley sink` over loopback and check the
reply codes (E: lines), twice: in lockstep (one command per round trip) and
with all client lines written at once (pipelined; the sink must answer every
command, in order, in batches). A '# sink-args: ...' line gives the sink
options a transcript needs (e.g. a fault rule that reproduces a 550)."""
import glob
import os
import shlex
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sink_lib import Sink, check, fail  # noqa: E402


def parse(path):
    """-> (sink_args, items) with items [('C', line) | ('E', code)]."""
    args, items = [], []
    with open(path) as f:
        for raw in f:
            line = raw.rstrip("\n")
            if line.startswith("# sink-args:"):
                args = shlex.split(line[len("# sink-args:"):])
            elif line.startswith("C:"):
                items.append(("C", line[3:] if line.startswith("C: ") else ""))
            elif line.startswith("E:"):
                items.append(("E", int(line[2:].strip())))
    check(items and items[0][0] == "E", path + ": must start with the greeting's E: line")
    return args, items


def wire_lines(items):
    """Client lines as sent: DATA content dot-stuffed (RFC 5321 4.5.2)."""
    out, in_data, last_code = [], False, None
    for kind, v in items:
        if kind == "E":
            last_code = v
            in_data = v == 354
            continue
        if in_data and v != "." and v.startswith("."):
            v = "." + v
        if in_data and v == ".":
            in_data = False
        out.append((kind, v))
    return out


def replay(sink, name, items, pipelined):
    c = sink.connect()
    codes = [v for k, v in items if k == "E"]
    if pipelined:
        c.send(*[v for k, v in wire_lines(items) if k == "C"])
        for i, code in enumerate(codes):
            c.expect(code, "%s (pipelined) reply %d" % (name, i + 1))
    else:
        i = 0
        for kind, v in wire_lines_with_codes(items):
            if kind == "C":
                c.send(v)
            else:
                i += 1
                c.expect(v, "%s (lockstep) reply %d" % (name, i))
    c.close()


def wire_lines_with_codes(items):
    stuffed = iter(wire_lines(items))
    for kind, v in items:
        yield (kind, v) if kind == "E" else next(stuffed)


def main():
    src = os.environ.get("VOLLEY_SRC", os.path.join(os.path.dirname(__file__), "..", ".."))
    tdir = os.path.join(src, "tests", "transcripts")
    # server_* and sink_* are server-side transcripts; the rest are the client's
    files = sorted(glob.glob(os.path.join(tdir, "server_*.smtp"))
                   + glob.glob(os.path.join(tdir, "sink_*.smtp")))
    check(len(files) >= 8, "expected the golden transcripts, found %d" % len(files))
    checked = 0
    for path in files:
        name = os.path.basename(path)
        args, items = parse(path)
        modes = [False]
        if not any(k == "C" and v.upper().startswith("STARTTLS") for k, v in items):
            modes.append(True)
        for pipelined in modes:             # a fresh sink each: rule counts start at 0
            sink = Sink(args)
            try:
                replay(sink, name, items, pipelined)
            finally:
                rc = sink.stop()
            check(rc == 0, "%s: sink exit code %d" % (name, rc))
        checked += 1
        print("ok %s (%d replies)" % (name, sum(1 for k, _ in items if k == "E")))
    print("sink conformance: %d transcripts" % checked)


if __name__ == "__main__":
    main()
