# stacks.py <perf script output> [marker ...]: attributes each sample of a `perf script` (with
# call graphs) to the innermost frame whose symbol contains one of the markers (first listed wins
# at equal depth), and prints samples per marker, per thread name, and in total.
import collections, re, sys
markers = sys.argv[2:] or [
    "DateFormat::", "Mapping::Find", "CheckDocument", "DBImpl::GetImpl", "MultiGet",
    "WriteToWAL", "WriteBatchInternal::InsertInto", "DBImpl::WriteImpl", "EncodeDoc",
    "ParseJson", "ParseBulkRequest", "WriteItem", "Api::Bulk", "Store::Write",
    "read_content", "write_response", "process_request", "BackgroundFlush",
    "BackgroundCompaction"]
by = collections.Counter(); comm = collections.Counter(); total = 0
for block in open(sys.argv[1], errors="replace").read().split("\n\n"):
    lines = block.strip().split("\n")
    if not lines or not lines[0].strip(): continue
    total += 1
    comm[lines[0].split()[0]] += 1
    hit = "(other)"
    for fr in lines[1:]:
        found = [m for m in markers if m in fr]
        if found: hit = found[0]; break
    by[hit] += 1
print("total", total)
for c, n in comm.most_common(): print("comm %-16s %6d %5.1f%%" % (c, n, 100.0 * n / total))
for m, n in by.most_common(): print("%-34s %6d %5.1f%%" % (m, n, 100.0 * n / total))
