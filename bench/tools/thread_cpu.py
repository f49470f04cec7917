#!/usr/bin/env python3
"""Per-thread CPU of a command and every process it starts (docs/BENCHMARKS.md, issue 20 passes).

usage: bench/tools/thread_cpu.py OUT.json -- COMMAND [ARGS...]

Runs COMMAND (e.g. build/bin/rtdw-bench --scenario order-wide --records 1000000) and, every
0.1 s, reads for each thread of it and of its descendants (rtdwd, rtdw-es-lite, rtdw-kafka-mock,
redis-server, ...): user and system CPU (/proc/PID/task/TID/stat) and the time spent waiting
for a core (/proc/PID/task/TID/schedstat, run-queue wait). At the end it writes every thread's
figures to OUT.json and prints them per process, heaviest first, with the machine's busy and
idle CPU over the run (/proc/stat). Exit status: COMMAND's.

A thread that ends between two samples is counted up to its last sample; a process's figures
are those of its threads (a child reaped early is missed: the samples are 0.1 s apart).
"""
import json
import os
import subprocess
import sys
import time

HZ = os.sysconf('SC_CLK_TCK')


def children(pid):
    found = []
    try:
        for tid in os.listdir(f'/proc/{pid}/task'):
            try:
                with open(f'/proc/{pid}/task/{tid}/children') as f:
                    found += [int(x) for x in f.read().split()]
            except OSError:
                pass
    except OSError:
        pass
    return found


def descendants(root):
    todo, seen = [root], []
    while todo:
        pid = todo.pop()
        seen.append(pid)
        todo += children(pid)
    return seen


def machine_cpu():
    with open('/proc/stat') as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) / HZ, idle / HZ


def main():
    if len(sys.argv) < 4 or sys.argv[2] != '--':
        sys.exit('usage: thread_cpu.py OUT.json -- COMMAND [ARGS...]')
    out, cmd = sys.argv[1], sys.argv[3:]
    threads = {}  # (pid, tid) -> figures
    start = time.time()
    total0, idle0 = machine_cpu()
    proc = subprocess.Popen(cmd)
    while proc.poll() is None:
        now = time.time() - start
        for pid in descendants(proc.pid):
            try:
                with open(f'/proc/{pid}/comm') as f:
                    pcomm = f.read().strip()
                tids = os.listdir(f'/proc/{pid}/task')
            except OSError:
                continue
            for tid in tids:
                try:
                    with open(f'/proc/{pid}/task/{tid}/stat') as f:
                        stat = f.read()
                    with open(f'/proc/{pid}/task/{tid}/schedstat') as f:
                        run_ns, wait_ns, _ = f.read().split()
                except (OSError, ValueError):
                    continue
                close = stat.rfind(')')
                comm = stat[stat.find('(') + 1:close]
                fields = stat[close + 2:].split()
                t = threads.setdefault((pid, int(tid)), {
                    'pid': pid, 'process': pcomm, 'tid': int(tid), 'first_s': now})
                t.update(thread=comm, last_s=now, user_s=int(fields[11]) / HZ,
                         sys_s=int(fields[12]) / HZ, runqueue_wait_s=int(wait_ns) / 1e9)
        time.sleep(0.1)
    total1, idle1 = machine_cpu()
    with open(out, 'w') as f:
        json.dump(list(threads.values()), f, indent=1)
    print(f'machine: {total1 - total0:.1f} CPU-s over {time.time() - start:.1f} s, '
          f'idle {idle1 - idle0:.1f}')
    procs = {}
    for t in threads.values():
        procs.setdefault((t['pid'], t['process']), []).append(t)
    cpu = lambda t: t['user_s'] + t['sys_s']
    for (pid, pcomm), ts in sorted(procs.items(), key=lambda kv: -sum(map(cpu, kv[1]))):
        total = sum(map(cpu, ts))
        if total < 0.05:
            continue
        first = min(t['first_s'] for t in ts)
        last = max(t['last_s'] for t in ts)
        print(f'{pcomm} (pid {pid}, {first:.1f}-{last:.1f} s): CPU {total:.2f} s')
        for t in sorted(ts, key=lambda t: -cpu(t)):
            if cpu(t) < 0.05 and t['runqueue_wait_s'] < 0.05:
                continue
            print(f"  {t['tid']:>7} {t['thread']:<16} user {t['user_s']:6.2f}  sys "
                  f"{t['sys_s']:6.2f}  waiting for a core {t['runqueue_wait_s']:6.2f} s")
    sys.exit(proc.returncode)


if __name__ == '__main__':
    main()
