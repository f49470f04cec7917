#!/usr/bin/env python3
"""Flush and compaction output per column family from RocksDB info LOGs (EVENT_LOG_v1 lines)."""
import json, sys, collections
tot = collections.defaultdict(lambda: collections.Counter())
reasons = collections.Counter()
for path in sys.argv[1:]:
    flush, comp, cfjob, fr = set(), {}, {}, {}
    events = []
    for line in open(path, errors='replace'):
        i = line.find('EVENT_LOG_v1 ')
        if i < 0: continue
        try: e = json.loads(line[i + 13:])
        except Exception: continue
        events.append(e)
    for e in events:
        ev, job = e.get('event'), e.get('job')
        if ev == 'flush_started': flush.add(job); fr[job] = e.get('flush_reason')
        if ev == 'compaction_started': comp[job] = e
        if ev == 'table_file_creation': cfjob[job] = e.get('cf_name')
    for e in events:
        ev, job = e.get('event'), e.get('job')
        if ev == 'table_file_creation':
            kind = 'flush' if job in flush else ('compaction' if job in comp else 'other')
            c = tot[(e['cf_name'], kind)]
            c['files'] += 1; c['bytes'] += e['file_size']
            c['raw_value'] += e.get('table_properties', {}).get('raw_value_size', 0)
        if ev == 'compaction_started':
            tot[(cfjob.get(job, '?'), 'compaction')]['input'] += e.get('input_data_size', 0)
        if ev == 'flush_started':
            tot[(cfjob.get(job, '?'), 'flush')]['flushes'] += 1
            reasons[(cfjob.get(job, '?'), e.get('flush_reason'))] += 1
for (cf, kind), c in sorted(tot.items()):
    print(f"{cf:10s} {kind:10s} " + " ".join(f"{k}={v/1e6:.1f}MB" if k in ('bytes','raw_value','input') else f"{k}={v}" for k, v in sorted(c.items())))
for (cf, r), n in sorted(reasons.items()): print(f"  flush reason {cf}: {r} x{n}")
