import sys, collections
from probe_events import load
ev = load(sys.argv[1], sys.argv[2])
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
