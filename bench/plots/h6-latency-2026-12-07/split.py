import sys, collections
ev = collections.defaultdict(dict)
for line in open(sys.argv[2]):
    if line.startswith('PROBEB '):
        _, pid, prod, found = line.split()[:4]; ev[pid]['produce'] = int(prod); ev[pid]['found'] = int(found)
for line in open(sys.argv[1]):
    i = line.find('PROBE ')
    if i < 0: continue
    f = line[i:].split(); k = f[1] + ':' + f[2]
    if k not in ev[f[3]]:
        ev[f[3]][k] = int(f[4])
        if k == 'poll:dau': ev[f[3]]['dwd_ts'] = int([x for x in f if x.startswith('ts=')][0][3:])
ks = ['produce','poll:log-split','done:log-split','poll:dau','dend:dau','found']
E = [e for e in ev.values() if all(k in e for k in ks)]
def q(x,p): x=sorted(x); return x[min(len(x)-1,int(p/100*len(x)))]
parts = {
 'kafka hop 1 (probe Produce -> log-split poll)': lambda e: e['poll:log-split']-e['produce'],
 'log-split (poll -> its output handed to the producer: the DWD record CreateTime)': lambda e: e['dwd_ts']-e['poll:log-split'],
 'kafka hop 2 (log-split Produce -> dau poll)': lambda e: e['poll:dau']-e['dwd_ts'],
 'dau (poll -> commit -> bulk acknowledged)': lambda e: e['dend:dau']-e['poll:dau'],
 'bench poller (acknowledged -> found)': lambda e: e['found']-e['dend:dau'],
 'total': lambda e: e['found']-e['produce']}
for n,f in parts.items():
    v=[f(e) for e in E]; print(f'| {n} | {q(v,50)} | {q(v,99)} | {sum(v)/len(v):.0f} |')
