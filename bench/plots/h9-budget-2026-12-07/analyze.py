#!/usr/bin/env python3
# Usage: analyze.py <perf.data of `perf record -a -F 499`> <rtdwd pid, 0 = the busiest rtdwd> <input records>
# CPU of each process/thread role in the window where the job thread ran, from `perf record -a -F 499`.
import subprocess, sys, collections, re
data, rtdwd_pid, records = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
out = subprocess.run(['perf','script','-i',data,'-F','pid,tid,comm,time'],capture_output=True,text=True).stdout
rows=[]; names={}
for l in out.splitlines():
    m=re.match(r'\s*(.*?)\s+(-?\d+)/(-?\d+)\s+([\d.]+):',l)
    if not m: continue
    comm,pid,tid,t=m.group(1),int(m.group(2)),int(m.group(3)),float(m.group(4))
    rows.append((t,pid,tid,comm))
    if pid==tid: names[pid]=comm
# job thread: the rtdwd thread with most samples
if rtdwd_pid==0:
    rtdwd_pid=collections.Counter(pid for t,pid,tid,comm in rows if names.get(pid)=='rtdwd').most_common(1)[0][0]
c=collections.Counter(tid for t,pid,tid,comm in rows if pid==rtdwd_pid)
job=c.most_common(1)[0][0]
jt=sorted(t for t,pid,tid,comm in rows if tid==job)
# window: from the job thread's first to last busy 100 ms bucket (>= 20 % busy)
b=collections.Counter(int(t*10) for t in jt)
busy=sorted(k for k,v in b.items() if v>=10)
t0,t1=busy[0]/10,(busy[-1]+1)/10
win=t1-t0
agg=collections.Counter()
for t,pid,tid,comm in rows:
    if not (t0<=t<t1): continue
    if pid==0: role='idle'
    elif pid==rtdwd_pid:
        role='rtdwd job thread' if tid==job else 'rtdwd '+(comm if comm.startswith(('rdk','rocksdb')) else 'other threads')
    else: role=names.get(pid,comm).split(":")[0]+f" ({pid})"
    agg[role]+=1
tot=sum(agg.values())
print(f'window {win:.2f} s, {tot} samples (2 cores x 499 Hz = {2*499*win:.0f} expected); records {records}')
for role,n in agg.most_common():
    cpu=n/499
    print(f'  {role:28s} {cpu:6.2f} CPU-s  {100*n/tot:5.1f} % of the machine  {1e6*cpu/records if role!="idle" else 0:6.2f} us/record')
