"""The probes' events of an instrumented run (instrumentation.patch): one dict per probe id.

load(rtdwd_log, bench_stderr): rtdw-bench's `PROBEB <id> <produce ms> <found ms>` lines give
'produce' and 'found'; rtdwd's `PROBE <stage> <job> <id> <ms> [ts=<ms>]` lines give '<stage>:<job>'
(the first time each is seen), and dau's poll also 'dwd_ts' (the DWD record's CreateTime).
"""
import collections


def load(rtdwd_log, bench_stderr):
    ev = collections.defaultdict(dict)
    for line in open(bench_stderr):
        if line.startswith('PROBEB '):
            _, pid, prod, found = line.split()[:4]
            ev[pid]['produce'] = int(prod)
            ev[pid]['found'] = int(found)
    for line in open(rtdwd_log):
        i = line.find('PROBE ')
        if i < 0:
            continue
        f = line[i:].split()
        k = f[1] + ':' + f[2]
        if k not in ev[f[3]]:
            ev[f[3]][k] = int(f[4])
            if k == 'poll:dau':
                ev[f[3]]['dwd_ts'] = int([x for x in f if x.startswith('ts=')][0][3:])
    return ev
