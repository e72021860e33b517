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
  report.py replies OUT.json (METHOD PATH BODYFILE)...
                                              bare Pingora's canned replies: each BODYFILE with
                                              the head curl wrote to BODYFILE.h (if there is one)
  report.py same GATEWAY_BODYFILE OTHER_BODYFILE
                                              exit 1 (saying why) unless both replies have the same
                                              status, body and header names (Date, Connection aside)
  report.py send URL METHOD PATH BODYFILE CTYPE N
                                              N requests one after the other on one kept-alive
                                              connection; exit 1 unless every answer is a 200
  report.py cgrecord OUT.jsonl DUMPFILE N LISTING KEY=VALUE...
                                              append a callgrind dump of N requests: instructions
                                              per request, by component and by function; every
                                              function's self cost per request goes to LISTING
  report.py table RESULTS.jsonl               print the final table
"""

import collections
import http.client
import json
import os
import re
import socket
import statistics
import sys
import time

# The targets (16 part 5), medians of the rounds: the gateway's req/s over the named
# baseline's. Scenarios 7 and 8 (2 and 1 on the Redis store), 9 and 10 (the Callback Services
# API, issue 18) have none: reported only.
TARGETS = {
    1: ("pingora", 0.90),
    2: ("pingora", 0.70),
    3: ("pingora", 0.50),
    4: ("pingora", 0.90),
    5: ("pingora", 0.95),
    6: ("nginx", 0.50),
}
NAMES = {
    1: "cached status (ORS service)",
    2: "create, urlencoded",
    3: "create, multipart 13 KB file",
    4: "storage GET",
    5: "pass-through GET",
    6: "ORS create (start+gms.start)",
    7: "create, urlencoded, Redis",
    8: "cached status, Redis",
    9: "callback create, immediate",
    10: "callback availability",
}
# What bare Pingora and nginx do for each scenario.
BARE = {5: "proxy", 6: "proxy", 9: "proxy"}
NGINX = {5: "proxy_pass", 6: "proxy_pass", 9: "proxy_pass"}
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
    warm = ""
    if "warm_s" in x:
        warm = (f" | warm-up {x['warm_s']} s to RSS {x.get('warm_rss_kb', 0) / 1024:,.0f} MiB"
                f"{'' if x.get('warm_steady') else ' (still growing)'}")
    return (f"{label:<14} {fmt_int(x['rps']):>9} req/s  p50 {fmt_ms(x['p50_us']):>8}  "
            f"p99 {fmt_ms(x['p99_us']):>8} | core0 {fmt_pct(x.get('cpu0_busy')):>4}: server "
            f"{fmt_pct(x.get('sut_cpu')):>4}, foreign {fmt_pct(x.get('cpu0_foreign')):>3} | core1 "
            f"{fmt_pct(x.get('cpu1_busy')):>4}: wrk {fmt_pct(x.get('wrk_cpu')):>4}, sim/redis "
            f"{fmt_pct(x.get('sim_cpu')):>4}, foreign {fmt_pct(x.get('cpu1_foreign')):>3}{warm}{flag}")


def ratio_of(best, a, b):
    """Median over the rounds both ran of (a req/s / b req/s), or None."""
    ra, rb = best.get(a, {}), best.get(b, {})
    rounds = sorted(set(ra) & set(rb))
    return med([ra[r]["rps"] / rb[r]["rps"] for r in rounds]) if rounds else None


def fmt_ratio(x):
    return f"{x:.2f}" if x is not None else "-"


# Roles in the order of a round, and their labels in the per-run lines.
ROLES = ["gateway", "before", "pingora", "pingora-serve", "nginx"]
LABELS = {"gateway": "gateway", "before": "before", "pingora": "bare Pingora",
          "pingora-serve": "Pingora Serve", "nginx": "nginx"}


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
    before = "before" in meta
    out = []
    w = out.append
    w(f"gms-gateway benchmark: gateway vs bare Pingora vs {meta.get('nginx_version', 'nginx')}, "
      f"{meta.get('started', '')} .. {meta.get('ended', '?')}")
    w(f"machine: {meta.get('nproc', '?')} cores, {meta.get('cpu_model', '?')}, "
      f"kernel {meta.get('kernel', '?')}; load average (1, 5, 15 min) at the start "
      f"{meta.get('load_start', '?')}, at the end {meta.get('load_end', '?')}")
    if meta.get("first_touch"):
        w(f"new memory: {meta['first_touch']} (bench/first_touch.py; see scenario 3 in bench/README.md)")
    if meta.get("mode") != "callgrind":
        w(f"mode: {meta.get('mode', '?')}: {meta.get('duration', '?')} s per run, "
          f"{meta.get('rounds', '?')} round(s), each server once a round, wrk -t1 -c64, keep-alive")
    w("placement: server under test alone on core 0 (gateway threads: 1 | bare Pingora 1 thread | "
      "nginx 1 worker, no master); wrk and ors-sim (ORS x2 + backend echo, --threads 1) on core 1, "
      "with redis-server (no persistence) for 7, 8 and 10")
    w(f"gateway: commit {meta.get('commit', '?')}, per-address limits off ({meta.get('limits_gateway', '?')})")
    if before:
        w(f"before:  {meta['before']}, ({meta.get('limits_before', '?')})")
    w("bare Pingora (examples/bare_pingora): local = a ProxyHttp answering the gateway's bytes in "
      "request_filter; proxy = a ProxyHttp to the same backend")
    w("9: the gateway starts an ORS session and sends its start request (2 upstream requests, plus the "
      "store); Pingora and nginx proxy the POST to ORS's session start (1), as in 6. "
      "10: Pingora and nginx answer the gateway's availability bytes")
    w("")

    runs = [r for r in recs if r.get("kind") == "run"]
    fails = [r for r in recs if r.get("kind") == "fail" and r.get("pass") != "callgrind"]
    cg_fails = [r for r in recs if r.get("kind") == "fail" and r.get("pass") == "callgrind"]
    cg_failed = False
    cg_out = []
    if any(r.get("kind") == "cg" for r in recs) or cg_fails:
        cg_failed = cg_table(cg_out, recs, cg_fails)
    if not runs and not fails and not any(r.get("kind") in ("memory", "memfail") for r in recs):
        out.extend(cg_out)
        print("\n".join(out))
        return 1 if cg_failed else 0
    failed = False
    missed = False
    # Rows: (scenario, phase); scenario 3 has its fresh process's first round as a row too.
    rows = sorted({(r["scenario"], r["phase"]) for r in runs if r.get("phase") in ("measure", "first")}
                  | {(r["scenario"], "measure") for r in fails},
                  key=lambda k: (k[0], k[1] != "first"))
    best_by_row = {row: best_rounds([r for r in runs if (r["scenario"], r.get("phase")) == row])
                   for row in rows}

    def row_name(s, phase):
        if s == 3:
            return "multipart 13 KB, fresh, round 1" if phase == "first" else "multipart 13 KB, steady state"
        return NAMES.get(s, str(s))

    def row_id(s, phase):
        return f"{s}{'*' if phase == 'first' else ''}"

    def row_fails(s, phase, roles):
        return [f for f in fails if f.get("scenario") == s and f.get("server") in roles
                and phase == "measure"]

    head = (f"{'#':<3} {'scenario':<31} {'Pingora':<7} {'gateway':>9} {'Pingora':>9} {'nginx':>9} "
            f"{'gw/Pingora':>10} {'gw/nginx':>8} {'gw p50':>8} {'gw p99':>8}  {'target':<16} result")
    w("req/s, medians of the rounds; ratios: median over rounds of the ratio in each round")
    w(head)
    w("-" * len(head))
    details = []
    for s, phase in rows:
        best = best_by_row[(s, phase)]
        name = row_name(s, phase)
        bare = BARE.get(s, "local")
        fs = row_fails(s, phase, ("gateway", "pingora", "pingora-serve", "nginx"))
        target = TARGETS.get(s) if phase == "measure" else None
        if fs:
            failed = True
            reason = "; ".join(f"{f.get('server', '')}: {f.get('reason', '')}" for f in fs)
            w(f"{row_id(s, phase):<3} {name:<31} {bare:<7} {'FAILED':>9}   {reason[:160]}")
        gw = best.get("gateway", {})
        if not gw:
            if not fs:
                failed = True
                w(f"{row_id(s, phase):<3} {name:<31} {bare:<7} {'FAILED':>9}   no complete round")
        elif not fs:
            rps = {role: med([x["rps"] for x in best.get(role, {}).values()]) for role in ROLES}
            r_bare = ratio_of(best, "gateway", "pingora")
            r_ngx = ratio_of(best, "gateway", "nginx")
            p50 = med([x["p50_us"] for x in gw.values()])
            p99 = med([x["p99_us"] for x in gw.values()])
            if target:
                base, floor = target
                got = r_bare if base == "pingora" else r_ngx
                ok = got is not None and got >= floor
                missed |= not ok
                target_text = f"{'Pingora' if base == 'pingora' else 'nginx'} >= {floor:.2f}"
                result = "MET" if ok else "MISS"
            else:
                target_text, result = "-", "report"
            disturbed = any(x.get("disturbed") for role in best.values() for x in role.values())
            w(f"{row_id(s, phase):<3} {name:<31} {bare:<7} {fmt_int(rps['gateway']):>9} "
              f"{fmt_int(rps['pingora']):>9} {fmt_int(rps['nginx']):>9} {fmt_ratio(r_bare):>10} "
              f"{fmt_ratio(r_ngx):>8} {fmt_ms(p50):>8} {fmt_ms(p99):>8}  {target_text:<16} {result}"
              f"{'  (disturbed run kept, see below)' if disturbed else ''}")
        rounds = sorted({rd for role in best.values() for rd in role})
        for rd in rounds:
            parts = [f"{a}/{b} {fmt_ratio(best[a][rd]['rps'] / best[b][rd]['rps'])}"
                     for a, b in (("gateway", "pingora"), ("gateway", "nginx"), ("before", "pingora"))
                     if rd in best.get(a, {}) and rd in best.get(b, {})]
            tries = max(x[rd].get("attempt", 1) for x in best.values() if rd in x)
            details.append(f"{row_id(s, phase)} {name}, {'first round' if phase == 'first' else f'round {rd}'}: "
                           f"{', '.join(parts)}{f' (attempt {tries})' if tries > 1 else ''}")
            for role in ROLES:
                if rd in best.get(role, {}):
                    details.append("  " + detail(LABELS[role], best[role][rd]))
    if any(phase == "first" for _, phase in rows):
        w("* a fresh gateway's first round, without warm-up (the others are the same processes as in every row)")

    # Before/after: the two gateway binaries in the same rounds.
    if before:
        w("")
        w(f"before/after, same rounds: before = {meta['before']}")
        head = (f"{'#':<3} {'scenario':<31} {'before':>9} {'gateway':>9} {'gw/before':>9} "
                f"{'before/Pingora':>14} {'gw/Pingora':>10} {'before/nginx':>12} {'gw/nginx':>8} "
                f"{'before p50':>10} {'gw p50':>8}")
        w(head)
        w("-" * len(head))
        for s, phase in rows:
            best = best_by_row[(s, phase)]
            bf = best.get("before", {})
            fs = [f for f in fails if f.get("scenario") == s and f.get("server") == "before"]
            if fs and phase == "measure":
                w(f"{row_id(s, phase):<3} {row_name(s, phase):<31} {'FAILED':>9}   {fs[0].get('reason', '')[:120]}")
                continue
            if not bf:
                continue
            w(f"{row_id(s, phase):<3} {row_name(s, phase):<31} "
              f"{fmt_int(med([x['rps'] for x in bf.values()])):>9} "
              f"{fmt_int(med([x['rps'] for x in best.get('gateway', {}).values()])):>9} "
              f"{fmt_ratio(ratio_of(best, 'gateway', 'before')):>9} "
              f"{fmt_ratio(ratio_of(best, 'before', 'pingora')):>14} "
              f"{fmt_ratio(ratio_of(best, 'gateway', 'pingora')):>10} "
              f"{fmt_ratio(ratio_of(best, 'before', 'nginx')):>12} "
              f"{fmt_ratio(ratio_of(best, 'gateway', 'nginx')):>8} "
              f"{fmt_ms(med([x['p50_us'] for x in bf.values()])):>10} "
              f"{fmt_ms(med([x['p50_us'] for x in best.get('gateway', {}).values()])):>8}")

    # The two shapes of bare Pingora answering locally.
    shapes = [(row, best) for row, best in best_by_row.items() if best.get("pingora-serve")]
    if shapes:
        w("")
        w("bare Pingora answering locally, the two shapes: ProxyHttp (request_filter, the plugin's) "
          "vs a ServeHttp app")
        head = (f"{'#':<3} {'scenario':<31} {'ProxyHttp':>9} {'ServeHttp':>9} {'Proxy/Serve':>11} "
                f"{'gw/Serve':>8}")
        w(head)
        w("-" * len(head))
        for (s, phase), best in shapes:
            w(f"{row_id(s, phase):<3} {row_name(s, phase):<31} "
              f"{fmt_int(med([x['rps'] for x in best.get('pingora', {}).values()])):>9} "
              f"{fmt_int(med([x['rps'] for x in best['pingora-serve'].values()])):>9} "
              f"{fmt_ratio(ratio_of(best, 'pingora', 'pingora-serve')):>11} "
              f"{fmt_ratio(ratio_of(best, 'gateway', 'pingora-serve')):>8}")

    mem = [r for r in recs if r.get("kind") == "memory"]
    memfail = [r for r in recs if r.get("kind") in ("memfail", "error")]
    scale = [r for r in recs if r.get("kind") == "run" and r.get("phase") == "scale"]
    cbmem = [r for r in recs if r.get("kind") == "cbmem"]
    if mem or memfail or scale or cbmem:
        w("")
    for m in cbmem:
        what = "RSS" if m.get("store") == "memory" else "Redis used_memory"
        w(f"memory per scheduled callback ({m.get('binary', 'gateway')}, {m.get('store')} store): "
          f"{fmt_int(m['n'])} scheduled callbacks: {what} {m['before'] / 2**20:,.1f} MiB -> "
          f"{m['after'] / 2**20:,.1f} MiB = {m['bytes_per_callback']:,.0f} bytes/callback   (reported)")
        w(f"        (after 1,000 first; each its own customer number, over {m.get('slots')} buckets of "
          f"5 minutes, created through the API at about {fmt_int(m.get('create_rps'))} req/s in "
          f"{m.get('create_s', 0):.1f} s)")
    for r in memfail:
        failed = failed or r.get("binary", "gateway") == "gateway"
        what = f"memory/scale ({r.get('binary', 'gateway')})" if r["kind"] == "memfail" else "error"
        w(f"{what}: FAILED: {r.get('reason', '')}")
    for m in mem:
        binary = m.get("binary", "gateway")
        per = m["bytes_per_service"]
        ok = per <= MEMORY_TARGET
        if binary == "gateway":
            missed |= not ok
            verdict = f"target <= {MEMORY_TARGET:,}  {'MET' if ok else 'MISS'}"
        else:
            verdict = "(before: reported)"
        w(f"memory ({binary}): {fmt_int(m['n'])} live request-interaction services (code + 3 fields each): "
          f"RSS {m['rss_before_kb'] / 1024:,.1f} MiB -> {m['rss_after_kb'] / 1024:,.1f} MiB = "
          f"{per:,.0f} bytes/service   {verdict}")
        w(f"        (RSS fresh {m.get('rss_fresh_kb', 0) / 1024:,.1f} MiB; the baseline is taken after 1,000 "
          f"services, so connection buffers and allocator arenas are in it; the {fmt_int(m['n'])} were "
          f"created at about {fmt_int(m.get('create_rps'))} req/s in {m.get('create_s', 0):.1f} s)")
    for binary in ("gateway", "before"):
        runs_b = [r for r in scale if r.get("binary", "gateway") == binary]
        if not runs_b:
            continue
        best = best_rounds(runs_b)
        big, small = best.get(f"{binary}-big", {}), best.get(f"{binary}-small", {})
        rounds = sorted(set(big) & set(small))
        if not rounds:
            failed = failed or binary == "gateway"
            w(f"scale ({binary}): FAILED: no complete round")
            continue
        ratio = med([big[r]["rps"] / small[r]["rps"] for r in rounds])
        ok = ratio >= SCALE_TARGET
        if binary == "gateway":
            missed |= not ok
            verdict = f"target >= {SCALE_TARGET:.2f}  {'MET' if ok else 'MISS'}"
        else:
            verdict = "(before: reported)"
        n = big[rounds[0]].get("live", "?")
        n0 = small[rounds[0]].get("live", "?")
        w(f"scale ({binary}): scenario 2 with {fmt_int(n)} live services "
          f"{fmt_int(med([big[r]['rps'] for r in rounds]))} req/s vs with {fmt_int(n0)}: "
          f"{fmt_int(med([small[r]['rps'] for r in rounds]))} req/s = {ratio:.2f}   {verdict}")
        for r in rounds:
            tries = big[r].get("attempt", 1)
            note_ = f" (attempt {tries})" if tries > 1 else ""
            details.append(f"scale ({binary}) round {r}: ratio {big[r]['rps'] / small[r]['rps']:.3f}{note_}")
            details.append("  " + detail(f"{fmt_int(big[r].get('live'))} live", big[r]))
            details.append("  " + detail(f"{fmt_int(small[r].get('live'))} live", small[r]))
    w("")
    w(f"overall: {'FAILED (see above)' if failed else ('some targets MISSED' if missed else 'all targets met')}")
    if cg_out:
        w("")
        out.extend(cg_out)
        failed |= cg_failed
    if details:
        w("")
        w("per run: CPU in shares of one core: busy (/proc/stat) = our processes (server under test, wrk,")
        w("sim/redis = ors-sim and redis-server, ksoftirqd; their time includes the loopback softirqs they")
        w(f"ran) + foreign (other programs on the machine, steal). A round with foreign > {DISTURBED:.0%} on a core")
        w(f"is repeated (at most 3 attempts, each after waiting up to {meta.get('quiet_max', '?')} s for a quiet")
        w("machine); the least disturbed attempt counts, DISTURBED marks it. Scenario 3's warm-up before each")
        w("run: wrk until the server's RSS stops growing (bench/run, warm_steady).")
        out.extend(details)
    print("\n".join(out))
    return 1 if failed else 0


def cg_table(out, recs, fails):
    """The callgrind pass's report (into OUT): instructions per request of each server, where
    they go. True when something in it FAILED."""
    w = out.append
    cg = [r for r in recs if r.get("kind") == "cg"]
    n = cg[0]["n"] if cg else "?"
    warm = n // 4 + 1 if isinstance(n, int) else "?"
    w(f"callgrind: user-space instructions per request (valgrind --tool=callgrind), {n} requests per "
      f"server and scenario, one after the other on one kept-alive connection, after {warm} to warm up;")
    w("the kernel's share (loopback TCP, epoll) is not counted. Pingora/gw: the throughput ratio these")
    w("counts alone predict. Callgrind counts a `rep movsb` copy (memcpy of a few KB and more) as one")
    w("instruction per byte, so large copies weigh more here than in time: 'w/o memcpy' leaves them out.")
    w("Every function per request: bench/results/callgrind/s<scenario>-<server>.txt (the dumps beside them).")
    w("")
    by = {(r["scenario"], r["server"]): r for r in cg}
    scen = sorted({r["scenario"] for r in cg} | {f["scenario"] for f in fails})
    head = (f"{'#':<3} {'scenario':<31} {'Pingora':<7} {'gateway':>9} {'before':>9} {'Pingora':>9} "
            f"{'Serve':>9} {'Pingora/gw':>10} {'w/o memcpy':>10} {'Pingora/before':>14}")
    w(head)
    w("-" * len(head))

    def ir(s, role):
        r = by.get((s, role))
        return r["ir_per_req"] if r else None

    def ir_no_memcpy(s, role):
        r = by.get((s, role))
        return r["ir_per_req"] - r["groups"].get("libc memcpy/memset", 0) if r else None

    for s in scen:
        fs = [f for f in fails if f["scenario"] == s]
        if fs:
            w(f"{s:<3} {NAMES.get(s, s):<31} FAILED: " + "; ".join(f"{f['server']}: {f['reason']}" for f in fs)[:160])
        g, b, p, sv = ir(s, "gateway"), ir(s, "before"), ir(s, "pingora"), ir(s, "pingora-serve")
        if g is None:
            continue
        w(f"{s:<3} {NAMES.get(s, s):<31} {BARE.get(s, 'local'):<7} {fmt_int(g):>9} {fmt_int(b):>9} "
          f"{fmt_int(p):>9} {fmt_int(sv):>9} {fmt_ratio(p / g if p else None):>10} "
          f"{fmt_ratio(ir_no_memcpy(s, 'pingora') / ir_no_memcpy(s, 'gateway') if p else None):>10} "
          f"{fmt_ratio(p / b if p and b else None):>14}")
    for s in scen:
        g, p = by.get((s, "gateway")), by.get((s, "pingora"))
        if not g:
            continue
        w("")
        w(f"{s} {NAMES.get(s, s)}: instructions per request by component (self cost of their functions)")
        groups = list(dict.fromkeys(list(g["groups"]) + list((p or {}).get("groups", {}))))
        w(f"    {'component':<24} {'gateway':>9} {'Pingora':>9} {'difference':>10}")
        for grp in groups:
            gv, pv = g["groups"].get(grp, 0), (p or {}).get("groups", {}).get(grp, 0)
            if max(gv, pv) < 100:
                continue
            w(f"    {grp:<24} {gv:>9,.0f} {pv:>9,.0f} {gv - pv:>+10,.0f}")
        for label, v in g.get("frames", {}).items():
            pv = (p or {}).get("frames", {}).get(label)
            w(f"    inclusive: {label}: gateway {v:,.0f}" + (f", Pingora {pv:,.0f}" if pv else ""))
        for who, r in (("gateway", g), ("Pingora", p)):
            if not r:
                continue
            w(f"  {who}: top functions (self, per request)")
            for v, fn in r["top"][:10]:
                w(f"    {v:>9,.0f}  {fn[:150]}")
            if who == "gateway" and r.get("top_ours"):
                w("    ours: " + "; ".join(f"{fn[:70]} {v:,.0f}" for v, fn in r["top_ours"]))
            if r.get("memcpy_callers"):
                w("    memcpy's callers: " + "; ".join(f"{c[:90]} {v:,.0f}" for v, c in r["memcpy_callers"]))
    return bool(fails)


def head_of(path):
    """(status, [(name, value)]) of the head curl -D wrote to PATH (the last one, after any 1xx)."""
    with open(path, encoding="latin-1") as f:
        blocks = [b for b in f.read().replace("\r\n", "\n").split("\n\n") if b.strip()]
    lines = blocks[-1].split("\n")
    status = int(lines[0].split()[1])
    headers = []
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers.append((k.strip(), v.strip()))
    return status, headers


# Pingora writes these itself on every reply.
PINGORA_OWN = {"date", "connection"}


def replies(out, args):
    if len(args) % 3:
        sys.exit("report.py replies: METHOD PATH BODYFILE triples")
    lst = []
    for i in range(0, len(args), 3):
        method, path, body = args[i:i + 3]
        if not os.path.exists(body + ".h"):
            continue  # a reply no scenario of this run needs
        status, headers = head_of(body + ".h")
        lst.append({"method": method, "path": path, "status": status, "body_file": body,
                    "headers": [[k, v] for k, v in headers if k.lower() not in PINGORA_OWN]})
    with open(out, "w", encoding="utf-8") as f:
        json.dump(lst, f, indent=1)


def same(a, b):
    sa, ha = head_of(a + ".h")
    sb, hb = head_of(b + ".h")
    with open(a, "rb") as f:
        ba = f.read()
    with open(b, "rb") as f:
        bb = f.read()
    names = lambda h: sorted(k.lower() for k, _ in h if k.lower() not in PINGORA_OWN)
    diffs = []
    if sa != sb:
        diffs.append(f"status {sb}, not {sa}")
    if ba != bb:
        diffs.append(f"a body of {len(bb)} bytes, not the gateway's {len(ba)}")
    if names(ha) != names(hb):
        diffs.append(f"headers {names(hb)}, not {names(ha)}")
    if diffs:
        print("; ".join(diffs))
        return 1
    return 0


def send(url, method, path, body_file, ctype, n):
    """N requests on one connection, each answered 200 (callgrind mode's load)."""
    host, port = url.split("//", 1)[1].rsplit(":", 1)
    body = None
    if body_file:
        with open(body_file, "rb") as f:
            body = f.read()
    headers = {"Host": "127.0.0.1"}
    if ctype:
        headers["Content-Type"] = ctype
    if method == "POST" and body is None:
        headers["Content-Length"] = "0"
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    for i in range(n):
        # As req.lua: a body with `{n}` gets a fresh number each time (the pid keeps the
        # warm-up's numbers apart from the measured ones).
        b = body.replace(b"{n}", f"{os.getpid()}{i}".encode()) if body else body
        conn.request(method, path, body=b, headers=headers)
        r = conn.getresponse()
        data = r.read()
        if r.status != 200:
            print(f"{method} {path}: request {i + 1} answered {r.status}: {data[:160]!r}")
            return 1
    conn.close()
    return 0


# Callgrind dumps. Functions are grouped by where their code is: our crate, each dependency
# (from its path in the cargo registry), Rust's std, libc (memcpy, memset).
def cg_parse(path):
    """(total Ir, {(function, file): self Ir}, {(caller, callee): inclusive Ir of the calls})."""
    ids = {"fn": {}, "fl": {}}
    self_cost = collections.Counter()
    edges = collections.Counter()
    fn = fl = callee = None
    after_calls = False
    total = 0

    def name(kind, rest):
        m = re.match(r"\((\d+)\)(?: (.*))?$", rest)
        if not m:
            return rest
        if m.group(2) is not None:
            ids[kind][m.group(1)] = m.group(2)
        return ids[kind].get(m.group(1), "?")

    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            c = line[0]
            if c.isdigit() or c in "+-*":
                parts = line.split()
                cost = int(parts[1]) if len(parts) > 1 else 0
                if after_calls:
                    edges[(fn, callee)] += cost
                    after_calls = False
                else:
                    self_cost[(fn, fl)] += cost
                continue
            if line.startswith("totals:") or line.startswith("summary:"):
                total = int(line.split()[1])
                continue
            k, _, rest = line.partition("=")
            if k == "fn":
                fn = name("fn", rest)
            elif k == "fl":
                fl = name("fl", rest)
            elif k in ("fi", "fe", "cfi", "cfl"):
                name("fl", rest)
            elif k == "cfn":
                callee = name("fn", rest)
            elif k == "calls":
                after_calls = True
    return total, self_cost, edges


def cg_group(fn, fl):
    fl = fl or ""
    m = re.search(r"/registry/src/[^/]+/([A-Za-z0-9_]+(?:-[A-Za-z_][A-Za-z0-9_]*)*)-\d", fl)
    if m:
        return m.group(1)
    if "/rustc/" in fl:
        return "std"
    if re.search(r"/src/(bin/)?[a-z_/]+\.rs$", fl) and ("gms_gateway" in fn or "bare_pingora" in fn
                                                         or "/examples/" in fl or "/src/" in fl):
        return "ours"
    if "memcpy" in fn or "memmove" in fn or "memset" in fn:
        return "libc memcpy/memset"
    return "libc, other"


# Whole-request frames whose inclusive cost is worth a line: the plugin's hook, and Pingora's.
CG_FRAMES = [
    ("GmsApi::handle (the plugin's hook)", r"gms_gateway::plugin::GmsApi::handle::"),
    ("answer::write_reply (the reply)", r"gms_gateway::answer::write_reply::"),
    ("read_request (Pingora reads a head)", r"pingora_core::protocols::http::v1::server::HttpSession::read_request::"),
]


def cgrecord(path, dump, n, listing, pairs):
    total, self_cost, edges = cg_parse(dump)
    with open(listing, "w", encoding="utf-8") as f:
        f.write(f"{dump}: {n} requests, {total / n:,.0f} instructions per request (user space)\n"
                "self cost per request, component, function, file\n")
        for (fn, fl), v in self_cost.most_common():
            if v / n >= 1:
                f.write(f"{v / n:>10,.0f}  {cg_group(fn, fl):<22} {fn}  [{fl}]\n")
    rec = {"kind": "cg", "n": n, "ir_per_req": total / n}
    for p in pairs:
        k, v = p.split("=", 1)
        rec[k] = parse_value(v)
    groups = collections.Counter()
    for (fn, fl), v in self_cost.items():
        groups[cg_group(fn, fl)] += v
    rec["groups"] = {g: v / n for g, v in groups.most_common()}
    rec["top"] = [[v / n, fn] for (fn, _), v in self_cost.most_common(12)]
    ours = [(v, fn) for (fn, fl), v in self_cost.items() if cg_group(fn, fl) == "ours"]
    rec["top_ours"] = [[v / n, fn] for v, fn in sorted(ours, reverse=True)[:8]]
    callers = collections.Counter()
    for (caller, callee), v in edges.items():
        if callee and "memcpy" in callee:
            callers[caller] += v
    rec["memcpy_callers"] = [[v / n, c] for c, v in callers.most_common(4)]
    frames = {}
    for label, pattern in CG_FRAMES:
        v = sum(c for (caller, callee), c in edges.items()
                if callee and re.search(pattern, callee) and not (caller and re.search(pattern, caller)))
        if v:
            frames[label] = v / n
    rec["frames"] = frames
    append(path, rec)
    print(f"{rec['ir_per_req']:,.0f} instructions per request")


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
    elif cmd == "replies":
        replies(args[0], args[1:])
    elif cmd == "same":
        sys.exit(same(args[0], args[1]))
    elif cmd == "send":
        sys.exit(send(args[0], args[1], args[2], args[3], args[4], int(args[5])))
    elif cmd == "cgrecord":
        cgrecord(args[0], args[1], int(args[2]), args[3], args[4:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
