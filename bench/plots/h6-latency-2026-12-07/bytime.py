import sys, collections
from probe_events import load
ev = load(sys.argv[1], sys.argv[2])
t0 = min(e['produce'] for e in ev.values() if 'produce' in e)
b = collections.defaultdict(list)
for e in ev.values():
    if 'found' in e and 'poll:dau' in e and 'poll:log-split' in e:
        b[(e['produce'] - t0) // 5000].append((e['found'] - e['produce'], e['poll:log-split'] - e['produce'], e['poll:dau'] - e['poll:log-split'], e['found'] - e['poll:dau']))
def med(x): x = sorted(x); return x[len(x) // 2]
for k in sorted(b):
    v = b[k]
    print(f'{k*5:3}-{k*5+5:3}s n={len(v):5} total p50 {med([a[0] for a in v]):4} | ->ls poll {med([a[1] for a in v]):4} | ls->dau poll {med([a[2] for a in v]):4} | dau->found {med([a[3] for a in v]):4}')
