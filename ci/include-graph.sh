#!/bin/sh
# Keeps ctaphid/README.md's layer picture true: parses the
# #include "ctaphid/..." lines of ctaphid/*.c and ctaphid/*.h, maps every
# file to a module (x.c, x.h and x_int.h are one module) and every module to
# a layer, and fails when an include points to a higher layer or when the
# modules include each other in a circle. util/ is the bottom layer of the
# whole tree: a util/ file may include only util/ headers (and the system's).
#
# Usage: sh ci/include-graph.sh [ROOT]   (ROOT defaults to the repo root)
# Exit 0 when the graph only points down, 1 otherwise (each finding named),
# 2 when a file is in no layer (add it to the table below).
set -eu

root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root"

exec python3 - "$@" <<'EOF'
import glob
import os
import re
import sys

# The layers, lowest first. A module may include its own layer and those
# below it, never one above.
LAYERS = [
    ("helpers, codecs and reports",
     "status clock cbor sysfs hid_desc trace trace_msg authdata cose pin_proto"),
    ("transports (URI-to-backend table and backends)",
     "transport hid_linux hid_hidapi hid_udp transport_mem transport_replay "
     "replay_match replay_player usbmon"),
    ("CTAPHID framing", "io"),
    ("discovery and identity", "discover hid_enum"),
    ("CTAP2 call", "ctap2"),
    ("PIN/UV and getInfo", "pin info"),
    ("authenticated call", "auth_call"),
    ("commands", "cred assert credman config largeblob u2f verify probe"),
]

# Files whose module is not their own stem.
ALIASES = {
    "cbor_util.h": "cbor",
    "ctap2_misc.c": "ctap2",
    "replay.h": "transport_replay",
    "udp.h": "hid_udp",
}

layer_of = {}
for i, (_, mods) in enumerate(LAYERS):
    for m in mods.split():
        layer_of[m] = i


def module(name):
    if name in ALIASES:
        return ALIASES[name]
    stem = os.path.splitext(name)[0]
    return stem[:-4] if stem.endswith("_int") else stem


inc = re.compile(r'^\s*#\s*include\s+"ctaphid/([^"]+)"')
files = sorted(os.path.basename(p) for p in glob.glob("ctaphid/*.[ch]"))
edges = {}  # (from module, to module) -> first "a.c -> b.h" seen
unknown = []
for f in files:
    m = module(f)
    if m not in layer_of:
        unknown.append(f)
        continue
    with open(os.path.join("ctaphid", f), encoding="utf-8", errors="replace") as fh:
        for line in fh:
            hit = inc.match(line)
            if hit is None:
                continue
            target = hit.group(1)
            tm = module(target)
            if tm not in layer_of:
                unknown.append(target)
                continue
            if tm != m:
                edges.setdefault((m, tm), "%s -> %s" % (f, target))
            # every upward include is named, not only the first per module pair
            if layer_of[tm] > layer_of[m]:
                edges.setdefault(("up", f, target), (m, tm))

if unknown:
    for u in sorted(set(unknown)):
        print("include-graph: %s is in no layer: add its module to ci/include-graph.sh" % u)
    sys.exit(2)

failed = False
for key, val in sorted(edges.items(), key=lambda kv: str(kv[0])):
    if key[0] != "up":
        continue
    _, f, target = key
    m, tm = val
    print("include-graph: upward edge %s -> %s (layer %s above %s)"
          % (f, target, LAYERS[layer_of[tm]][0], LAYERS[layer_of[m]][0]))
    failed = True

# Circles among modules: strongly connected components of more than one.
graph = {}
for key in edges:
    if key[0] != "up":
        graph.setdefault(key[0], set()).add(key[1])
index, low, stack, on_stack, comps = {}, {}, [], set(), []
counter = [0]


def strongconnect(v):
    index[v] = low[v] = counter[0]
    counter[0] += 1
    stack.append(v)
    on_stack.add(v)
    for w in sorted(graph.get(v, ())):
        if w not in index:
            strongconnect(w)
            low[v] = min(low[v], low[w])
        elif w in on_stack:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop()
            on_stack.discard(w)
            comp.append(w)
            if w == v:
                break
        if len(comp) > 1:
            comps.append(sorted(comp))


for v in sorted(graph):
    if v not in index:
        strongconnect(v)
for comp in comps:
    inner = sorted(edges[(a, b)] for a in comp for b in comp
                   if a != b and (a, b) in edges)
    print("include-graph: include circle among %s: %s" % (", ".join(comp), "; ".join(inner)))
    failed = True

# The picture in ctaphid/README.md: the first ```text block after "Layers";
# a line starting with a digit opens that layer, lines after it continue it.
# Each layer must name exactly the modules the table above gives it.
picture = {}
with open("ctaphid/README.md", encoding="utf-8") as fh:
    readme = fh.read()
start = readme.find("```text", readme.find("Layers"))
end = readme.find("```", start + 7)
if readme.find("Layers") < 0 or start < 0 or end < 0:
    print("include-graph: ctaphid/README.md has no ```text layer picture after \"Layers\"")
    failed = True
else:
    current = None
    for line in readme[start + 7:end].splitlines():
        hit = re.match(r"\s*(\d+)\s", line)
        if hit is not None:
            current = int(hit.group(1)) - 1
        if current is None:
            continue
        for word in re.findall(r"[A-Za-z][A-Za-z0-9_]*(?:\.[ch])?", line):
            if module(word) in layer_of:
                picture.setdefault(current, set()).add(module(word))
    for i, (name, mods) in enumerate(LAYERS):
        want, have = set(mods.split()), picture.get(i, set())
        for m in sorted(want - have):
            print("include-graph: README picture: %s missing from layer %d (%s)" % (m, i + 1, name))
            failed = True
        for m in sorted(have - want):
            print("include-graph: README picture: %s drawn in layer %d (%s), the table says %d"
                  % (m, i + 1, name, layer_of[m] + 1))
            failed = True

# util/: the bottom layer; any quoted include must be another util/ header
util_inc = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
util_files = sorted(glob.glob("util/*.[ch]"))
for path in util_files:
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            hit = util_inc.match(line)
            if hit is not None and not hit.group(1).startswith("util/"):
                print("include-graph: %s includes \"%s\": util/ is the bottom layer and includes "
                      "only util/ headers" % (path, hit.group(1)))
                failed = True

n_mod = len({module(f) for f in files})
n_edges = sum(1 for k in edges if k[0] != "up")
if failed:
    print("include-graph: FAIL (%d modules, %d module edges)" % (n_mod, n_edges))
    print("include-graph: 0 passed, 1 failed")
    sys.exit(1)
print("include-graph: ok: %d files, %d modules in %d layers, %d module edges, all pointing down, "
      "no circle; %d util/ files including only util/" % (len(files), n_mod, len(LAYERS), n_edges,
                                                          len(util_files)))
print("include-graph: 1 passed, 0 failed")
EOF
