#!/usr/bin/env python3
# Usage: offcpu.py <perf.data of `perf record -a -e sched:sched_switch -g`> <tid of the job thread>
# Off-CPU time of one thread (the job thread), by its state (S sleeping, R preempted, D disk) and
# the rtdw/librdkafka/RocksDB frames at the switch-out; until the switch back in.
import subprocess, sys, re, collections
data = sys.argv[1]
out = subprocess.run(['perf','script','-i',data,'-F','comm,pid,tid,time,trace,ip,sym'],capture_output=True,text=True).stdout
events=[]  # (time, prev_tid, prev_state, next_tid, stack)
for blk in out.split('\n\n'):
    lines=blk.strip().split('\n')
    if not lines or not lines[0].strip(): continue
    h=lines[0]
    m=re.search(r'(\d+)/(\d+)\s+([\d.]+):.*prev_pid=(\d+).*prev_state=(\S+) ==> .*next_pid=(\d+)',h)
    if not m: continue
    t=float(m.group(3)); prev=int(m.group(4)); st=m.group(5); nxt=int(m.group(6))
    frames=[]
    for l in lines[1:]:
        p=l.split(None,1)
        if len(p)==2: frames.append(p[1])
    events.append((t,prev,st,nxt,frames,int(m.group(1))))
job=int(sys.argv[2])
agg=collections.Counter(); n=collections.Counter()
last_out=None
for t,prev,st,nxt,fr,pid in events:
    if prev==job:
        key=st[0]+' '+' < '.join([re.sub(r'\(.*','',f).strip()[:60] for f in fr if 'rtdw::' in f or 'rd_kafka' in f or 'redis' in f.lower() or 'rocksdb::DB' in f or 'fdatasync' in f][:4])
        last_out=(t,key)
    elif nxt==job and last_out:
        agg[last_out[1]]+=t-last_out[0]; n[last_out[1]]+=1; last_out=None
tot=sum(agg.values())
bystate=collections.Counter()
for k,v in agg.items(): bystate[k[0]]+=v
print('off-CPU total %.2f s: '%tot + ', '.join('%s %.2f s'%(st,v) for st,v in sorted(bystate.items())) + '  (R preempted, S sleeping, D disk)')
for k,v in agg.most_common(20): print('%6.3f s %5d  %s'%(v,n[k],k))
