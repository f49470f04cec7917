# sub.py <perf script output> <frame marker> [depth]: for samples with <marker> in the stack, counts
# the frame called by it (the next inner frame) and the leaf symbol.
import collections, re, sys
mark = sys.argv[2]
child = collections.Counter(); leaf = collections.Counter(); n = 0
def sym(fr):
    m = re.match(r"\s*[0-9a-f]+ (.*) \((.*)\)$", fr)
    if not m: return fr.strip()
    s = re.sub(r"\+0x[0-9a-f]+$", "", m.group(1))
    return s[:110] if s != "[unknown]" else m.group(2).split("/")[-1]
for block in open(sys.argv[1], errors="replace").read().split("\n\n"):
    lines = block.strip().split("\n")[1:]
    for i, fr in enumerate(lines):
        if mark in fr:
            n += 1
            child[sym(lines[i - 1]) if i > 0 else "(self)"] += 1
            leaf[sym(lines[0])] += 1
            break
print("samples", n)
for s, c in child.most_common(15): print("child %6d %s" % (c, s))
for s, c in leaf.most_common(25): print("leaf  %6d %s" % (c, s))
