#!/usr/bin/env python3
"""Helpers of bench/run (python3 standard library only).

  report.py freeport [N]                      N free loopback TCP ports, one a line
  report.py snap PID...                       CPU counters now (JSON): the PIDs' and the cores' ticks
  report.py quiet MAX_S PID...                wait (at most MAX_S) for a second in which programs other
                                              than PIDs used < 10% of a core
  report.py render TEMPLATE OUT KEY=VALUE...  fill {{KEY}} placeholders; VALUE '@FILE' reads a file;
                                              values of *_BODY keys go inside nginx '...' strings
  report.py record OUT.jsonl KEY=VALUE... [--before SNAP --after SNAP]  < wrk stdout
                                              append one run (the BENCHJSON line + KEY=VALUEs)
  report.py note OUT.jsonl KEY=VALUE...       append one record as given (numbers parsed)
  report.py table RESULTS.jsonl               print the final table
"""

import json
import os
import socket
import statistics
import sys
import time

# Scenarios 7 and 8 (2 and 1 on the Redis store) have no target in the issue: reported only.
TARGETS = {1: 0.75, 2: 0.50, 3: 0.50, 4: 0.70, 5: 0.90, 6: 0.50}
NAMES = {
    1: "cached status (ORS service)",
    2: "create, urlencoded",
    3: "create, multipart 13 KB file",
    4: "storage GET",
    5: "pass-through GET",
    6: "ORS create (start+gms.start)",
    7: "create, urlencoded, Redis",
    8: "cached status, Redis",
}
BASELINES = {
    1: "return 200",
    2: "return 200",
    3: "return 200",
    4: "return 200",
    5: "proxy_pass",
    6: "proxy_pass",
    7: "return 200",
    8: "return 200",
}
MEMORY_TARGET = 1024
# A run is "disturbed" when more than this share of a core went to other programs.
DISTURBED = 0.10
SCALE_TARGET = 0.90


def freeport(n=1):
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    for s in socks:
        print(s.getsockname()[1])
    for s in socks:
        s.close()


def snap(pids):
    """CPU counters now: each PID's utime+stime (all its threads), ksoftirqd/N's, each core's ticks."""
    out = {"pids": {}, "ksoftirqd": {}}

    def ticks(pid):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            return None

    for pid in pids:
        out["pids"][pid] = ticks(pid)
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/comm") as f:
                    comm = f.read().strip()
            except OSError:
                continue
            if comm.startswith("ksoftirqd/"):
                out["ksoftirqd"]["cpu" + comm.split("/", 1)[1]] = ticks(d)
    with open("/proc/stat") as f:
        for line in f:
            parts = line.split()
            if parts[0] in ("cpu0", "cpu1"):
                v = [int(x) for x in parts[1:]] + [0] * 10
                # user nice system idle iowait irq softirq steal
                out[parts[0]] = {"total": sum(v[:8]), "idle": v[3] + v[4], "irq": v[5] + v[6],
                                 "steal": v[7]}
    print(json.dumps(out))


def quiet(max_s, threshold, pids):
    """Waits until, for one second, other programs than PIDS (ours) used at most threshold of
    a core in all (both cores together): the machine is quiet enough to measure."""
    def read():
        busy = total = 0
        with open("/proc/stat") as f:
            for line in f:
                parts = line.split()
                if parts[0] in ("cpu0", "cpu1"):
                    v = [int(x) for x in parts[1:9]]
                    busy += sum(v) - v[3] - v[4]
                    total += sum(v)
        for pid in pids:
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                busy -= int(fields[11]) + int(fields[12])
            except (OSError, IndexError, ValueError):
                pass
        return busy, total / 2  # total: ticks of one core

    deadline = time.monotonic() + max_s
    while True:
        a = read()
        time.sleep(1.0)
        b = read()
        other = max(0.0, (b[0] - a[0]) / max(1, b[1] - a[1]))
        if other <= threshold:
            print(f"quiet: {other:.0%}")
            return 0
        if time.monotonic() >= deadline:
            print(f"still busy: other programs used {other:.0%} of a core")
            return 1


def nginx_quote(s):
    if "$" in s:
        sys.exit("report.py render: a body holding '$' would be read as an nginx variable")
    if "\n" in s or "\r" in s:
        sys.exit("report.py render: a body must be a single line")
    return s.replace("\\", "\\\\").replace("'", "\\'")


def render(template, out, pairs):
    values = {}
    for p in pairs:
        k, v = p.split("=", 1)
        if v.startswith("@"):
            with open(v[1:], encoding="utf-8") as f:
                v = f.read()
        if k.endswith("_BODY"):
            v = nginx_quote(v)
        values[k] = v
    with open(template, encoding="utf-8") as f:
        text = f.read()
    for k, v in values.items():
        text = text.replace("{{" + k + "}}", v)
    if "{{" in text:
        start = text.index("{{")
        sys.exit(f"report.py render: unfilled placeholder {text[start:start + 30]!r}")
    with open(out, "w", encoding="utf-8") as f:
        f.write(text)


def parse_value(v):
    for conv in (int, float):
        try:
            return conv(v)
        except ValueError:
            pass
    return v


def append(path, rec):
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(rec) + "\n")


def record(path, args):
    rec = {"kind": "run"}
    before = after = None
    i = 0
    while i < len(args):
        if args[i] == "--before":
            before = json.loads(args[i + 1])
            i += 2
        elif args[i] == "--after":
            after = json.loads(args[i + 1])
            i += 2
        else:
            k, v = args[i].split("=", 1)
            rec[k] = parse_value(v)
            i += 1
    found = False
    for line in sys.stdin:
        if line.startswith("BENCHJSON "):
            rec.update(json.loads(line[len("BENCHJSON "):]))
            found = True
    if not found:
        rec["error"] = "wrk printed no BENCHJSON line"
    if before and after:
        # Whose CPU time is whose, as shares of one core over the same interval (ticks / the
        # core's ticks): the processes pinned to each core (cpu0_pids, cpu1_pids), wrk's own
        # (wrk_cpu_s, from the shell's children times) on core 1, and the core's ksoftirqd.
        # A process's time includes the softirqs it ran (the loopback traffic). The rest of a
        # core's busy time is "foreign": other programs on this machine, or steal.
        hz = os.sysconf("SC_CLK_TCK")
        span = {c: after[c]["total"] - before[c]["total"] for c in ("cpu0", "cpu1")}

        def delta(a, b):
            return a - b if a is not None and b is not None else 0

        def pid_ticks(pid):
            return delta(after["pids"].get(str(pid)), before["pids"].get(str(pid)))

        sut = str(rec.get("sut_pid", ""))
        if sut and span["cpu0"]:
            rec["sut_cpu"] = pid_ticks(sut) / span["cpu0"]
        for c in ("cpu0", "cpu1"):
            total = span[c]
            if not total:
                continue
            busy = total - (after[c]["idle"] - before[c]["idle"])
            ours = sum(pid_ticks(p) for p in str(rec.get(c + "_pids", "")).split(",") if p)
            ours += delta(after["ksoftirqd"].get(c), before["ksoftirqd"].get(c))
            if c == "cpu1":
                wrk = float(rec.get("wrk_cpu_s", 0)) * hz
                rec["wrk_cpu"] = wrk / total
                ours += wrk
                sim = str(rec.get("cpu1_pids", ""))
                rec["sim_cpu"] = sum(pid_ticks(p) for p in sim.split(",") if p) / total
            rec[c + "_busy"] = busy / total
            rec[c + "_irq"] = (after[c]["irq"] - before[c]["irq"]) / total
            rec[c + "_steal"] = (after[c]["steal"] - before[c]["steal"]) / total
            rec[c + "_foreign"] = max(0.0, (busy - ours) / total)
        rec["disturbed"] = max(rec.get("cpu0_foreign", 0), rec.get("cpu1_foreign", 0)) > DISTURBED
    append(path, rec)
    if "rps" in rec:
        print(f"{rec['rps']:,.0f} req/s, p50 {fmt_ms(rec.get('p50_us'))}, p99 {fmt_ms(rec.get('p99_us'))}, "
              f"server cpu {fmt_pct(rec.get('sut_cpu'))}, core1 busy {fmt_pct(rec.get('cpu1_busy'))}, "
              f"foreign load core0 {fmt_pct(rec.get('cpu0_foreign'))} core1 {fmt_pct(rec.get('cpu1_foreign'))}"
              f"{'  DISTURBED' if rec.get('disturbed') else ''}")
    sys.exit(3 if rec.get("disturbed") else 0)


def note(path, pairs):
    rec = {}
    for p in pairs:
        k, v = p.split("=", 1)
        rec[k] = parse_value(v)
    append(path, rec)


# ---------------------------------------------------------------------------------------------
# The table.

def fmt_int(x):
    return f"{x:,.0f}" if x is not None else "-"


def fmt_ms(us):
    return f"{us / 1000:.2f} ms" if us is not None else "-"


def fmt_pct(x):
    return f"{100 * x:.0f}%" if x is not None else "-"


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def best_rounds(runs):
    """Per round, the runs of its least disturbed attempt (a disturbed round is repeated):
    {server: {round: run}}. Ties go to the later attempt."""
    by = {}
    for r in runs:
        by.setdefault(r["round"], {}).setdefault(r.get("attempt", 1), {})[r["server"]] = r
    servers = {r["server"] for r in runs}
    out = {srv: {} for srv in servers}
    for rd, attempts in by.items():
        best = None
        for att, recs in sorted(attempts.items()):
            if set(recs) != servers:
                continue
            score = max(max(x.get("cpu0_foreign", 0), x.get("cpu1_foreign", 0)) for x in recs.values())
            if best is None or score <= best[0]:
                best = (score, recs)
        if best:
            for srv, x in best[1].items():
                out[srv][rd] = x
    return out


def detail(label, x):
    flag = "  DISTURBED" if x.get("disturbed") else ""
    return (f"{label:<12} {fmt_int(x['rps']):>9} req/s  p50 {fmt_ms(x['p50_us']):>8}  "
            f"p99 {fmt_ms(x['p99_us']):>8} | core0 {fmt_pct(x.get('cpu0_busy')):>4}: server "
            f"{fmt_pct(x.get('sut_cpu')):>4}, foreign {fmt_pct(x.get('cpu0_foreign')):>3} | core1 "
            f"{fmt_pct(x.get('cpu1_busy')):>4}: wrk {fmt_pct(x.get('wrk_cpu')):>4}, sim/redis "
            f"{fmt_pct(x.get('sim_cpu')):>4}, foreign {fmt_pct(x.get('cpu1_foreign')):>3}{flag}")


def table(path):
    recs = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                recs.append(json.loads(line))
    meta = {}
    for r in recs:
        if r.get("kind") == "meta":
            meta.update(r)
    out = []
    w = out.append
    w(f"gms-gateway benchmark: gateway vs nginx {meta.get('nginx_version', '')}, "
      f"{meta.get('started', '')}")
    w(f"machine: {meta.get('nproc', '?')} cores, {meta.get('cpu_model', '?')}, "
      f"kernel {meta.get('kernel', '?')}")
    if meta.get("first_touch"):
        w(f"new memory: {meta['first_touch']} (bench/first_touch.py; see scenario 3 in bench/README.md)")
    w(f"mode: {meta.get('mode', '?')}: {meta.get('duration', '?')} s per run, "
      f"{meta.get('rounds', '?')} round(s) of gateway/nginx (A B A B), wrk -t1 -c64, keep-alive")
    w(f"placement: server under test (gateway threads: 1 | nginx 1 worker, no master) alone on core 0; "
      f"wrk and ors-sim (ORS x2 + backend echo, --threads 1) on core 1, with redis-server "
      f"(no persistence) for 7 and 8")
    w(f"gateway commit: {meta.get('commit', '?')}")
    w("")
    head = (f"{'#':<2} {'scenario':<30} {'baseline':<10} {'gw req/s':>10} {'nginx req/s':>11} "
            f"{'ratio':>6} {'gw p50':>9} {'gw p99':>9} {'target':>7}  result")
    w(head)
    w("-" * len(head))
    failed = False
    missed = False
    # Scale runs are scenario 2 too, but not one of the table's rows.
    scenarios = sorted({r["scenario"] for r in recs if "scenario" in r and (
        r.get("kind") == "fail" or (r.get("kind") == "run" and r.get("phase") == "measure"))})
    details = []
    for s in scenarios:
        runs = [r for r in recs if r.get("kind") == "run" and r.get("scenario") == s
                and r.get("phase") == "measure"]
        fails = [r for r in recs if r.get("kind") == "fail" and r.get("scenario") == s]
        name = NAMES.get(s, str(s))
        target = TARGETS.get(s)
        if fails:
            failed = True
            reason = "; ".join(f"{f.get('server', '')}: {f.get('reason', '')}" for f in fails)
            w(f"{s:<2} {name:<30} {BASELINES.get(s, ''):<10} {'FAILED':>10}   {reason[:150]}")
            continue
        best = best_rounds(runs)
        gw, ng = best.get("gateway", {}), best.get("nginx", {})
        rounds = sorted(set(gw) & set(ng))
        if not rounds:
            failed = True
            w(f"{s:<2} {name:<30} {BASELINES.get(s, ''):<10} {'FAILED':>10}   no complete round")
            continue
        ratios = [gw[r]["rps"] / ng[r]["rps"] for r in rounds]
        ratio = med(ratios)
        gw_rps = med([gw[r]["rps"] for r in rounds])
        ng_rps = med([ng[r]["rps"] for r in rounds])
        p50 = med([gw[r]["p50_us"] for r in rounds])
        p99 = med([gw[r]["p99_us"] for r in rounds])
        ok = target is None or ratio >= target
        missed |= not ok
        target_text = "-" if target is None else ">= " + format(target, ".2f")
        result = "report" if target is None else "PASS" if ok else "MISS"
        w(f"{s:<2} {name:<30} {BASELINES.get(s, ''):<10} {fmt_int(gw_rps):>10} {fmt_int(ng_rps):>11} "
          f"{ratio:>6.2f} {fmt_ms(p50):>9} {fmt_ms(p99):>9} {target_text:>7}  "
          f"{result}"
          f"{'  (disturbed run kept, see below)' if any(x[r].get('disturbed') for x in (gw, ng) for r in rounds) else ''}")
        for r in rounds:
            tries = gw[r].get("attempt", 1)
            note_ = f" (attempt {tries})" if tries > 1 else ""
            details.append(f"{s} round {r}: ratio {ratios[rounds.index(r)]:.3f}{note_}")
            details.append("  " + detail("gateway", gw[r]))
            details.append("  " + detail("nginx", ng[r]))

    mem = [r for r in recs if r.get("kind") == "memory"]
    memfail = [r for r in recs if r.get("kind") in ("memfail", "error")]
    scale = [r for r in recs if r.get("kind") == "run" and r.get("phase") == "scale"]
    if mem or memfail or scale:
        w("")
    for r in memfail:
        failed = True
        w(f"{'memory/scale' if r['kind'] == 'memfail' else 'error'}: FAILED: {r.get('reason', '')}")
    for m in mem:
        per = m["bytes_per_service"]
        ok = per <= MEMORY_TARGET
        missed |= not ok
        w(f"memory: {fmt_int(m['n'])} live request-interaction services (code + 3 fields each): "
          f"RSS {m['rss_before_kb'] / 1024:,.1f} MiB -> {m['rss_after_kb'] / 1024:,.1f} MiB = "
          f"{per:,.0f} bytes/service   target <= {MEMORY_TARGET:,}  {'PASS' if ok else 'MISS'}")
        w(f"        (RSS fresh {m.get('rss_fresh_kb', 0) / 1024:,.1f} MiB; the baseline is taken after 1,000 "
          f"services, so connection buffers and allocator arenas are in it; the {fmt_int(m['n'])} were "
          f"created at about {fmt_int(m.get('create_rps'))} req/s in {m.get('create_s', 0):.1f} s)")
    if scale:
        best = best_rounds(scale)
        big, small = best.get("gateway-big", {}), best.get("gateway-small", {})
        rounds = sorted(set(big) & set(small))
        if rounds:
            ratio = med([big[r]["rps"] / small[r]["rps"] for r in rounds])
            ok = ratio >= SCALE_TARGET
            missed |= not ok
            n = big[rounds[0]].get("live", "?")
            n0 = small[rounds[0]].get("live", "?")
            w(f"scale: scenario 2 with {fmt_int(n)} live services {fmt_int(med([big[r]['rps'] for r in rounds]))} "
              f"req/s vs with {fmt_int(n0)}: {fmt_int(med([small[r]['rps'] for r in rounds]))} req/s = "
              f"{ratio:.2f}   target >= {SCALE_TARGET:.2f}  {'PASS' if ok else 'MISS'}")
            for r in rounds:
                tries = big[r].get("attempt", 1)
                note_ = f" (attempt {tries})" if tries > 1 else ""
                details.append(f"scale round {r}: ratio {big[r]['rps'] / small[r]['rps']:.3f}{note_}")
                details.append("  " + detail(f"{fmt_int(big[r].get('live'))} live", big[r]))
                details.append("  " + detail(f"{fmt_int(small[r].get('live'))} live", small[r]))
        else:
            failed = True
            w("scale: FAILED: no complete round")
    w("")
    w("ratio = median over rounds of (gateway req/s / nginx req/s) in the same round; "
      "req/s and latencies are medians over rounds.")
    w(f"overall: {'FAILED (see above)' if failed else ('some targets MISSED' if missed else 'all targets met')}")
    if details:
        w("")
        w("per run: CPU in shares of one core: busy (/proc/stat) = our processes (server under test, wrk,")
        w("sim/redis = ors-sim and redis-server, ksoftirqd; their time includes the loopback softirqs they")
        w(f"ran) + foreign (other programs on the machine, steal). A round with foreign > {DISTURBED:.0%} on a core")
        w("is repeated (at most 3 attempts,")
        w(f"each after waiting up to {meta.get('quiet_max', '?')} s for a quiet machine); the least disturbed "
          f"attempt counts, DISTURBED marks it.")
        out.extend(details)
    print("\n".join(out))
    return 1 if failed else 0


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "freeport":
        freeport(int(args[0]) if args else 1)
    elif cmd == "snap":
        snap(args)
    elif cmd == "quiet":
        sys.exit(quiet(float(args[0]), DISTURBED, args[1:]))
    elif cmd == "render":
        render(args[0], args[1], args[2:])
    elif cmd == "record":
        record(args[0], args[1:])
    elif cmd == "note":
        note(args[0], args[1:])
    elif cmd == "table":
        sys.exit(table(args[0]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
