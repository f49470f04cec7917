import sys, statistics, collections
log, bench = sys.argv[1], sys.argv[2]
ev = collections.defaultdict(dict)
extra = collections.defaultdict(dict)
for line in open(bench):
    if line.startswith('PROBEB '):
        _, pid, prod, found = line.split()[:4]
        ev[pid]['produce'] = int(prod); ev[pid]['found'] = int(found)
for line in open(log):
    i = line.find('PROBE ')
    if i < 0: continue
    f = line[i:].split()
    kind, job, pid, t = f[1], f[2], f[3], int(f[4])
    key = kind + ':' + job
    if key not in ev[pid]: ev[pid][key] = t
    if kind == 'poll':
        for kv in f[5:]:
            k, v = kv.split('='); extra[pid][job + '.' + k] = int(v)
    if kind == 'dstart':
        for kv in f[5:]:
            k, v = kv.split('='); extra[pid]['d.' + k] = int(v)
order = ['produce', 'poll:log-split', 'done:log-split', 'acked:log-split', 'poll:dau', 'done:dau', 'dstart:dau', 'dend:dau', 'found']
done = [p for p in ev if all(k in ev[p] for k in order)]
print('probes complete', len(done), 'of', len(ev))
def q(xs, p): xs = sorted(xs); return xs[min(len(xs)-1, int(p / 100 * len(xs)))]
for a, b in zip(order, order[1:]):
    d = [ev[p][b] - ev[p][a] for p in done]
    print(f'{a:>16} -> {b:<16} p50 {q(d,50):5} p90 {q(d,90):5} p99 {q(d,99):5} mean {statistics.mean(d):7.1f}')
d = [ev[p]['found'] - ev[p]['produce'] for p in done]
print(f'{"total":>36} p50 {q(d,50):5} p90 {q(d,90):5} p99 {q(d,99):5} mean {statistics.mean(d):7.1f}')
# kafka timestamps: ODS ts (producer create time) and DWD ts (log-split produce)
for k in ['log-split.ts', 'dau.ts', 'log-split.n', 'dau.n', 'log-split.pollwait', 'dau.pollwait', 'd.docs']:
    vals = [extra[p][k] for p in done if k in extra[p]]
    if not vals: continue
    if k.endswith('.ts'):
        base = 'produce' if k.startswith('log-split') else 'poll:log-split'
        vals = [extra[p][k] - ev[p][base] for p in done]
        print(k, '- ', base, 'p50', q(vals, 50), 'p90', q(vals, 90), 'p99', q(vals, 99))
    else:
        print(k, 'p50', q(vals, 50), 'p90', q(vals, 90), 'p99', q(vals, 99), 'mean', round(statistics.mean(vals), 1))
