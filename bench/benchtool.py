#!/usr/bin/env python3
"""Measuring helpers of the chain load bench (bench/chain_load.sh).

Subcommands (each prints or writes JSON; the shell script strings them together):
  freeport N                      N free loopback TCP ports, one a line
  measure --out F [--pid L=PID]... [--tree L=PID]... -- CMD...
                                  runs CMD; CPU (utime+stime from /proc/PID/stat)
                                  and context switches (voluntary+nonvoluntary,
                                  summed over /proc/PID/task/*/status) of each
                                  PID (--tree: PID and its children) over the
                                  run, each thread's CPU (so a report shows a
                                  loop that carried every connection), the
                                  machine's busy cores, and CMD's own CPU (wait4
                                  rusage), to F
  wrk FILE                        the figures of one wrk run (bench/wrk/counter.lua's
                                  BENCH line and wrk's own summary) as JSON
  values FILE [--issued N] [--allow-missing K]
                                  counter values, one a line: unique? gap-free up
                                  to N, the last value k_server handed out, but for
                                  at most K cut off in flight when wrk stopped?
  preload DB N                    N more sessions in k_proxy's state database,
                                  each a copy of an existing session row with its
                                  unique columns made afresh (schema-agnostic)
  trickle --port P --url U --token T [--conns N] [--tries K] --out F
                                  N connections from 127.0.0.2 trickling header
                                  bytes at P while K counter calls are timed
  trickle-gen ...                 (the generator process trickle starts)
  report DIR                      the summary table over the results in DIR
"""
import errno
import json
import os
import random
import re
import resource
import select
import socket
import sqlite3
import subprocess
import sys
import time
import http.client
import ssl
from urllib.parse import urlsplit

CLK_TCK = os.sysconf("SC_CLK_TCK")
OPEN_RATE = 5000  # new connections a second at most, reconnects included


# ---- /proc sampling ------------------------------------------------------

def proc_cpu_s(pid):
    """utime+stime of a process (all its threads, live and exited), seconds."""
    with open("/proc/%d/stat" % pid) as f:
        data = f.read()
    fields = data[data.rindex(")") + 2:].split()
    # fields[0] is field 3 (state); utime is field 14, stime 15
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def task_files(pid, name):
    """(tid, text) of /proc/PID/task/TID/NAME for each live thread of a process."""
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/%s" % (pid, tid, name)) as f:
                text = f.read()
        except OSError:
            continue
        yield tid, text


def task_ctx(pid):
    """{tid: voluntary+nonvoluntary context switches} of a process's threads."""
    out = {}
    for tid, text in task_files(pid, "status"):
        out[tid] = sum(int(line.split()[1]) for line in text.splitlines()
                       if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")))
    return out


def task_cpu(pid):
    """{tid: (name, utime+stime seconds)} of a process's live threads."""
    out = {}
    for tid, data in task_files(pid, "stat"):
        name = data[data.index("(") + 1:data.rindex(")")]
        fields = data[data.rindex(")") + 2:].split()
        out[tid] = (name, (int(fields[11]) + int(fields[12])) / CLK_TCK)
    return out


def children(pid):
    kids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                data = f.read()
            ppid = int(data[data.rindex(")") + 2:].split()[1])
        except (OSError, ValueError):
            continue
        if ppid == pid:
            kids.append(int(d))
    return kids


def machine_busy_s():
    """CPU seconds the whole machine spent busy (all cores), from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal ...
    return (sum(fields[:8]) - fields[3] - fields[4]) / CLK_TCK


def snapshot(pids):
    snap = {}
    for pid in pids:
        try:
            snap[pid] = (proc_cpu_s(pid), task_ctx(pid))
        except OSError:
            pass
    return snap


def delta(before, after):
    cpu = 0.0
    ctx = 0
    for pid, (cpu1, ctx1) in after.items():
        cpu0, ctx0 = before.get(pid, (0.0, {}))
        cpu += cpu1 - cpu0
        for tid, n in ctx1.items():
            ctx += n - ctx0.get(tid, 0)
    return cpu, ctx


def cmd_measure(args):
    out = None
    groups = {}  # label -> (pid, tree?)
    i = 0
    while i < len(args) and args[i] != "--":
        if args[i] == "--out":
            out = args[i + 1]
        elif args[i] in ("--pid", "--tree"):
            label, _, pid = args[i + 1].partition("=")
            groups[label] = (int(pid), args[i] == "--tree")
        else:
            sys.exit("benchtool measure: unknown option %s" % args[i])
        i += 2
    cmd = args[i + 1:]
    if out is None or not cmd:
        sys.exit("usage: benchtool measure --out F [--pid L=PID]... [--tree L=PID]... -- CMD...")

    def pids_of(pid, tree):
        return [pid] + (children(pid) if tree else [])

    members = {label: pids_of(pid, tree) for label, (pid, tree) in groups.items()}
    before = {label: snapshot(p) for label, p in members.items()}
    threads0 = {label: {(pid, tid): v for pid in p for tid, v in task_cpu(pid).items()}
                for label, p in members.items()}
    busy0 = machine_busy_s()
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd)
    # context switches are per thread: sample a few times a second so that a
    # thread which exits before the end still counts (up to its last sample)
    seen = {label: {} for label in members}

    def sample():
        snap = {label: snapshot(p) for label, p in members.items()}
        for label, per_pid in snap.items():
            for pid, (_, ctx) in per_pid.items():
                mine = seen[label].setdefault(pid, {})
                for tid, n in ctx.items():
                    mine[tid] = max(n, mine.get(tid, 0))
        return snap

    while True:
        wpid, status, ru = os.wait4(proc.pid, os.WNOHANG)
        if wpid == proc.pid:
            break
        sample()
        time.sleep(0.2)
    wall = time.monotonic() - t0
    threads1 = {label: {(pid, tid): v for pid in p for tid, v in task_cpu(pid).items()}
                for label, p in members.items()}
    after = sample()
    for label, per_pid in after.items():
        for pid, (cpu, _) in per_pid.items():
            per_pid[pid] = (cpu, seen[label].get(pid, {}))
    busy = machine_busy_s() - busy0
    res = {"wall_s": wall, "machine_busy_s": busy, "exit": os.waitstatus_to_exitcode(status),
           "cmd_cpu_s": ru.ru_utime + ru.ru_stime,
           "cmd_ctx": ru.ru_nvcsw + ru.ru_nivcsw, "procs": {}}
    for label in groups:
        cpu, ctx = delta(before[label], after[label])
        alive = all(os.path.exists("/proc/%d" % p) for p in members[label])
        # each live thread's share, in cores, busiest first (threads under
        # 1% of a core left out): how the work split between a service's loops
        cores = []
        for key, (name, cpu1) in threads1[label].items():
            share = (cpu1 - threads0[label].get(key, (name, 0.0))[1]) / wall if wall > 0 else 0.0
            if share >= 0.01:
                cores.append({"name": name, "cores": share})
        cores.sort(key=lambda t: -t["cores"])
        res["procs"][label] = {"cpu_s": cpu, "ctx": ctx, "pids": members[label], "alive": alive,
                               "threads": cores}
    # what the rest of the machine (other work on it) used meanwhile, in cores
    mine = res["cmd_cpu_s"] + sum(p["cpu_s"] for p in res["procs"].values())
    res["other_cores"] = max(busy - mine, 0.0) / wall if wall > 0 else 0.0
    with open(out, "w") as f:
        json.dump(res, f)
    return res["exit"]


# ---- wrk output ------------------------------------------------------------

def parse_wrk(path):
    res = {"ok": False}
    try:
        text = open(path, errors="replace").read()
    except OSError as e:
        res["why"] = str(e)
        return res
    m = re.search(r"^BENCH (.*)$", text, re.M)
    if not m:
        res["why"] = "no BENCH line in the wrk output"
        return res
    for kv in m.group(1).split():
        k, _, v = kv.partition("=")
        if k == "statuses":
            hist = {}
            for part in filter(None, v.split(",")):
                s, _, n = part.partition(":")
                hist[int(s)] = int(n)
            res["statuses"] = hist
        else:
            res[k] = int(v)
    m = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", text)
    res["wrk_non2xx3xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    res["socket_errors"] = sum(int(x) for x in m.groups()) if m else 0
    hist = res.get("statuses", {})
    res["ok2xx"] = sum(n for s, n in hist.items() if 200 <= s < 300)
    res["non2xx"] = sum(n for s, n in hist.items() if not 200 <= s < 300)
    res["rps"] = res["requests"] / (res["duration_us"] / 1e6) if res.get("duration_us") else 0.0
    res["rps2xx"] = res["ok2xx"] / (res["duration_us"] / 1e6) if res.get("duration_us") else 0.0
    res["ok"] = True
    return res


def cmd_wrk(args):
    json.dump(parse_wrk(args[0]), sys.stdout)
    print()
    return 0


# ---- counter values ----------------------------------------------------------

def check_values(path, issued=None, allow_missing=0):
    """Unique and gap-free: no value twice, and every value from the first to
    the last k_server handed out (ISSUED, when known) seen, except at most
    ALLOW_MISSING: the requests in flight on wrk's connections when it stopped,
    which k_server served but wrk never read."""
    try:
        vals = [int(x) for x in open(path).read().split()]
    except (OSError, ValueError) as e:
        return {"ok": False, "n": 0, "why": "cannot read the values: %s" % e}
    res = {"n": len(vals), "issued": issued, "allow_missing": allow_missing}
    if not vals:
        res.update(ok=False, why="no counter values")
        return res
    vals.sort()
    dups = sum(1 for a, b in zip(vals, vals[1:]) if a == b)
    uniq = sorted(set(vals))
    top = max(uniq[-1], issued or 0)
    missing = (top - uniq[0] + 1) - len(uniq)
    res.update(min=vals[0], max=vals[-1], duplicates=dups, missing=missing,
               unique=dups == 0, gap_free=missing <= allow_missing,
               ok=dups == 0 and missing <= allow_missing)
    return res


def cmd_values(args):
    issued, allow = None, 0
    i = 1
    while i < len(args):
        if args[i] == "--issued":
            issued = int(args[i + 1]) if args[i + 1].isdigit() else None
        elif args[i] == "--allow-missing":
            allow = int(args[i + 1])
        i += 2
    json.dump(check_values(args[0], issued, allow), sys.stdout)
    print()
    return 0


# ---- preloading sessions -----------------------------------------------------

def cmd_preload(args):
    """Copies one live session row N times, giving each copy fresh values in
    every column that is unique (primary key or a UNIQUE index), so the copies
    look like the sessions this k_proxy writes whatever its schema is today."""
    db, n = args[0], int(args[1])
    con = sqlite3.connect(db, timeout=10)
    cols = con.execute("PRAGMA table_info(sessions)").fetchall()
    if not cols:
        sys.exit("benchtool preload: %s has no sessions table" % db)
    names = [c[1] for c in cols]
    unique = {c[1] for c in cols if c[5]}
    for idx in con.execute("PRAGMA index_list(sessions)").fetchall():
        if idx[2]:  # unique
            for info in con.execute("PRAGMA index_info(%s)" % json.dumps(idx[1])).fetchall():
                unique.add(info[2])
    row = con.execute("SELECT * FROM sessions ORDER BY rowid DESC LIMIT 1").fetchone()
    if row is None:
        sys.exit("benchtool preload: %s has no session to copy (log in once first)" % db)
    exprs = []
    params = []
    for name, col, val in zip(names, cols, row):
        ctype = (col[2] or "").upper()
        if name in unique:
            if isinstance(val, bytes):
                exprs.append("randomblob(%d)" % max(len(val), 16))
            elif isinstance(val, str):
                # same length, hex: distinct with overwhelming probability
                exprs.append("substr(lower(hex(randomblob(%d))), 1, %d)" % (len(val), max(len(val), 16)))
            elif col[5] and ctype == "INTEGER":
                exprs.append("NULL")  # the rowid
            else:
                exprs.append("abs(random())")
        elif name == "expires_at" and isinstance(val, int):
            # an hour more, in the column's unit (seconds or milliseconds)
            exprs.append("?")
            params.append(val + (3600000 if val > 10**11 else 3600))
        elif name == "revoked":
            exprs.append("0")
        else:
            exprs.append("?")
            params.append(val)
    before = con.execute("SELECT count(*) FROM sessions").fetchone()[0]
    sql = ("INSERT INTO sessions (%s) WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL "
           "SELECT i + 1 FROM c WHERE i < %d) SELECT %s FROM c"
           % (", ".join('"%s"' % x for x in names), n, ", ".join(exprs)))
    with con:
        con.execute(sql, params)
    after = con.execute("SELECT count(*) FROM sessions").fetchone()[0]
    con.close()
    print(json.dumps({"sessions_before": before, "sessions": after, "columns": names,
                      "fresh_columns": sorted(unique)}))
    return 0


# ---- trickling headers ---------------------------------------------------------

def raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def cmd_trickle_gen(args):
    """Keeps up to CONNS connections from SOURCE to HOST:PORT, each sending one
    byte of a never-ending header every second; reconnects what the server
    closes (OPEN_RATE bounds the connects and reconnects a second). Writes its counts to STATUS twice a second; stops after SECONDS."""
    host, port, source, conns, seconds, status_path = (
        args[0], int(args[1]), args[2], int(args[3]), float(args[4]), args[5])
    limit = raise_nofile(conns + 256)
    conns = min(conns, max(limit - 64, 0))
    ep = select.epoll()
    socks = {}  # fd -> [sock, connected?, next send time]
    st = {"target": conns, "open": 0, "established": 0, "established_max": 0,
          "connects": 0, "connect_failed": 0, "closed_by_server": 0, "bytes": 0}
    start = time.monotonic()
    deadline = start + seconds
    head = b"POST /resource/counter HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Trickle: "

    def open_one():
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.bind((source, 0))
            rc = s.connect_ex((host, port))
        except OSError:
            s.close()
            st["connect_failed"] += 1
            return False
        if rc not in (0, errno.EINPROGRESS):
            s.close()
            st["connect_failed"] += 1
            return False
        st["connects"] += 1
        socks[s.fileno()] = [s, False, 0.0]
        ep.register(s.fileno(), select.EPOLLOUT | select.EPOLLIN | select.EPOLLRDHUP)
        return True

    def drop(fd, by_server):
        ent = socks.pop(fd)
        try:
            ep.unregister(fd)
        except OSError:
            pass
        if ent[1]:
            st["established"] -= 1
        if by_server:
            st["closed_by_server"] += 1
        ent[0].close()

    last_status = 0.0
    while True:
        now = time.monotonic()
        if now >= deadline:
            break
        # open (or reopen what the server closed) up to the target, at most
        # OPEN_RATE a second, a batch per turn so events keep flowing
        budget = min(500, int((now - start) * OPEN_RATE + OPEN_RATE / 10) - st["connects"])
        while len(socks) < conns and budget > 0:
            if not open_one():
                break
            budget -= 1
        for fd, ev in ep.poll(0.05):
            ent = socks.get(fd)
            if ent is None:
                continue
            s = ent[0]
            if not ent[1]:
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err != 0 or ev & (select.EPOLLERR | select.EPOLLHUP):
                    st["connect_failed"] += 1
                    drop(fd, False)
                    continue
                if ev & select.EPOLLOUT:
                    ent[1] = True
                    st["established"] += 1
                    st["established_max"] = max(st["established_max"], st["established"])
                    try:
                        st["bytes"] += s.send(head)
                    except OSError:
                        drop(fd, True)
                        continue
                    ent[2] = now + 1.0 + random.random()
                    ep.modify(fd, select.EPOLLIN | select.EPOLLRDHUP)
                continue
            if ev & (select.EPOLLIN | select.EPOLLRDHUP | select.EPOLLHUP | select.EPOLLERR):
                try:
                    data = s.recv(4096)
                except OSError:
                    data = b""
                if not data:
                    drop(fd, True)
        # one byte a second on every established connection
        for fd in list(socks):
            ent = socks[fd]
            if ent[1] and ent[2] <= now:
                try:
                    st["bytes"] += ent[0].send(b"a")
                except OSError:
                    drop(fd, True)
                    continue
                ent[2] = now + 1.0
        st["open"] = len(socks)
        if now - last_status >= 0.5:
            last_status = now
            st["elapsed_s"] = round(now - start, 2)
            with open(status_path + ".tmp", "w") as f:
                json.dump(st, f)
            os.replace(status_path + ".tmp", status_path)
    st["open"] = len(socks)
    st["elapsed_s"] = round(time.monotonic() - start, 2)
    with open(status_path + ".tmp", "w") as f:
        json.dump(st, f)
    os.replace(status_path + ".tmp", status_path)
    return 0


def counter_call(url, token, cafile, timeout):
    """One POST /resource/counter on a new connection: (status or error, seconds)."""
    u = urlsplit(url)
    t0 = time.monotonic()
    try:
        if u.scheme == "https":
            ctx = ssl.create_default_context(cafile=cafile)
            c = http.client.HTTPSConnection(u.hostname, u.port, timeout=timeout, context=ctx)
        else:
            c = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
        c.request("POST", "/resource/counter", headers={"Authorization": "Bearer " + token})
        r = c.getresponse()
        r.read()
        c.close()
        return r.status, time.monotonic() - t0
    except (OSError, http.client.HTTPException) as e:
        return "error: %s" % (e.__class__.__name__ if not str(e) else str(e)), time.monotonic() - t0


def cmd_trickle(args):
    opts = {"--conns": "10000", "--tries": "10", "--source": "127.0.0.2", "--cacert": None,
            "--ramp": "8", "--timeout": "3"}
    i = 0
    while i < len(args):
        opts[args[i]] = args[i + 1]
        i += 2
    for need in ("--port", "--url", "--token", "--out"):
        if need not in opts:
            sys.exit("benchtool trickle: %s is required" % need)
    conns, tries = int(opts["--conns"]), int(opts["--tries"])
    ramp, timeout = float(opts["--ramp"]), float(opts["--timeout"])
    status_path = opts["--out"] + ".gen"
    res = {"conns": conns, "tries": tries, "timeout_s": timeout}
    res["baseline"] = counter_call(opts["--url"], opts["--token"], opts["--cacert"], timeout)
    lifetime = ramp + tries * (timeout + 0.3) + 5
    gen = subprocess.Popen([sys.executable, __file__, "trickle-gen", "127.0.0.1", opts["--port"],
                            opts["--source"], str(conns), str(lifetime), status_path])
    try:
        # ramp: until the generator holds its target or the ramp time is over
        t_end = time.monotonic() + ramp
        gst = {}
        while time.monotonic() < t_end and gen.poll() is None:
            time.sleep(0.25)
            try:
                gst = json.load(open(status_path))
            except (OSError, ValueError):
                continue
            if gst.get("established", 0) >= gst.get("target", conns):
                break
        res["at_start"] = gst
        calls = []
        for _ in range(tries):
            calls.append(counter_call(opts["--url"], opts["--token"], opts["--cacert"], timeout))
            time.sleep(0.3)
        res["calls"] = calls
        try:
            res["generator"] = json.load(open(status_path))
        except (OSError, ValueError):
            res["generator"] = {}
    finally:
        gen.terminate()
        try:
            gen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            gen.kill()
            gen.wait()
    ok = [c for c in res["calls"] if isinstance(c[0], int) and 200 <= c[0] < 300]
    res["ok_calls"] = len(ok)
    res["worst_s"] = max(c[1] for c in res["calls"]) if res["calls"] else None
    res["all_ok"] = len(ok) == tries
    with open(opts["--out"], "w") as f:
        json.dump(res, f)
    return 0


# ---- the report ----------------------------------------------------------------

def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def ratio(a, b):
    return a / b if a is not None and b else None


def fmt(v, spec):
    return "n/a" if v is None else spec % v


def median(xs):
    """The middle value; of an even count, the mean of the two middle ones."""
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    h = len(xs) // 2
    return xs[h] if len(xs) % 2 else (xs[h - 1] + xs[h]) / 2


def median_run(rounds):
    """The median, figure by figure, of rounds of one wrk run [(wrk, cpu)]."""
    good = [(w, c) for w, c in rounds if w and w.get("ok") and w.get("requests")]
    if not good:
        return {"ok": False, "why": "no round of this run succeeded"}
    m = {"ok": True, "rounds": len(good)}
    for k in ("rps", "rps2xx", "p50_us", "p99_us", "non2xx", "socket_errors", "requests"):
        m[k] = median([w[k] for w, _ in good])
    cpu = [sum(p["cpu_s"] for p in c["procs"].values()) * 1e6 / w["requests"] for w, c in good if c]
    ctx = [sum(p["ctx"] for p in c["procs"].values()) / w["requests"] for w, c in good if c]
    if cpu:
        m["cpu_us_per_req"] = median(cpu)
        m["ctx_per_req"] = median(ctx)
    return m


def cmd_report(args):
    d = args[0]
    W = {}
    listed = []
    for run in ("nginx_plain", "floor_plain", "chain_plain", "nginx_tls", "floor_tls", "chain_tls",
                "nginx_tls2", "floor_tls2", "chain_tls2", "login_fresh", "login_100k"):
        names = [run]
        rounds = run.startswith(("nginx", "floor", "login"))  # run in rounds: the median counts
        if rounds:
            names = sorted(x[:-4] for x in os.listdir(d) if x.startswith(run + ".r") and x.endswith(".wrk"))
        for name in names:
            p = os.path.join(d, name + ".wrk")
            W[name] = parse_wrk(p) if os.path.exists(p) else None
            W[name + ".cpu"] = load(os.path.join(d, name + ".cpu.json"))
            listed.append(name)
        if rounds and names:
            W[run] = median_run([(W[n], W[n + ".cpu"]) for n in names])
    V = {r: load(os.path.join(d, r + ".values.json")) for r in ("chain_plain", "chain_tls", "chain_tls2")}
    CR = load(os.path.join(d, "chain_regress.cpu.json"))
    if CR is not None:
        try:
            text = open(os.path.join(d, "chain_regress.out"), errors="replace").read()
            CR["requests"] = int(open(os.path.join(d, "chain_regress.n")).read())
        except (OSError, ValueError):
            text, CR["requests"] = "", 0
        CR["cpu_s"] = CR["cmd_cpu_s"]
        CR["pass"] = re.search(r"^PASS", text, re.M) is not None
        counter = re.search(r"^counter .*$", text, re.M)
        CR["line"] = "%s; its CPU %.1f µs/req, %.2f cs/req; %s" % (
            " ".join(counter.group(0).split()[1:]) if counter else "no counter line",
            CR["cpu_s"] * 1e6 / max(CR["requests"], 1), CR["cmd_ctx"] / max(CR["requests"], 1),
            "PASS" if CR["pass"] else "FAIL")
    # paired rounds: (chain, nginx) req/s of each pair, by chain run
    P = {}
    for run in ("chain_plain", "chain_tls"):
        pairs = []
        for i in range(1, 100):
            cw, nw = (os.path.join(d, "pair_%s.%s.r%d.wrk" % (run, who, i)) for who in ("chain", "nginx"))
            if not os.path.exists(cw) or not os.path.exists(nw):
                break
            c, n = parse_wrk(cw), parse_wrk(nw)
            if c.get("ok") and n.get("ok") and n["rps2xx"] > 0:
                pairs.append((c["rps2xx"], n["rps2xx"], c["non2xx"] + c["socket_errors"]))
        if pairs:
            P[run] = pairs
    TR = load(os.path.join(d, "trickle.json"))
    cpw = W.get("chain_plain")
    secs = "%.0f" % (cpw["duration_us"] / 1e6) if cpw and cpw.get("ok") else "?"

    def rps(run):
        w = W.get(run)
        return w["rps2xx"] if w and w.get("ok") else None

    def p(run, q):
        w = W.get(run)
        return w[q] / 1000.0 if w and w.get("ok") and q in w else None

    def per_req(run, labels):
        """(cpu µs / 2xx request, context switches / request) over the labels."""
        w, c = W.get(run), W.get(run + ".cpu")
        if w and "cpu_us_per_req" in w:
            return w["cpu_us_per_req"], w["ctx_per_req"]
        if not w or not w.get("ok") or not c or not w.get("requests"):
            return None, None
        cpu = sum(c["procs"][x]["cpu_s"] for x in labels if x in c["procs"])
        ctx = sum(c["procs"][x]["ctx"] for x in labels if x in c["procs"])
        return cpu * 1e6 / w["requests"], ctx / w["requests"]

    print()
    print("== the runs")
    for run in listed:
        w = W.get(run)
        if w is None:
            print("  %-12s not run" % run)
            continue
        if not w.get("ok"):
            print("  %-12s FAILED: %s" % (run, w.get("why")))
            continue
        line = ("  %-12s %8.0f req/s (2xx %8.0f/s), p50 %6.2f ms, p99 %7.2f ms, %d requests, "
                "non-2xx %d, socket errors %d, statuses %s"
                % (run, w["rps"], w["rps2xx"], w["p50_us"] / 1e3, w["p99_us"] / 1e3,
                   w["requests"], w["non2xx"], w["socket_errors"],
                   " ".join("%d:%d" % kv for kv in sorted(w.get("statuses", {}).items()))))
        print(line)
        c = W.get(run + ".cpu")
        if c:
            parts = []
            for label, pr in sorted(c["procs"].items()):
                parts.append("%s %.0f µs/req %.2f cs/req%s" % (
                    label, pr["cpu_s"] * 1e6 / max(w["requests"], 1), pr["ctx"] / max(w["requests"], 1),
                    "" if pr["alive"] else " (DIED)"))
            parts.append("wrk %.0f µs/req" % (c["cmd_cpu_s"] * 1e6 / max(w["requests"], 1)))
            parts.append("other processes on the machine %.2f cores" % c.get("other_cores", 0.0))
            print("  %-12s CPU: %s" % ("", "; ".join(parts)))
            # the machine's busy cores, and the busiest threads of each
            # process: one loop near 1.0 and the other idle means wrk's
            # connections all landed on that loop (the services' loops
            # share connections since 7778eec, so this should not recur)
            threads = []
            for label, pr in sorted(c["procs"].items()):
                busy = [t["cores"] for t in pr.get("threads", [])][:4]
                if busy:
                    threads.append("%s %s" % (label, " + ".join("%.2f" % x for x in busy)))
            if c.get("wall_s"):
                print("  %-12s machine %.2f of %d cores busy; busiest threads, cores: %s"
                      % ("", c["machine_busy_s"] / c["wall_s"], os.cpu_count() or 1,
                         "; ".join(threads) or "n/a"))
        v = V.get(run)
        if run.startswith("chain"):
            if v:
                print("  %-12s values: %d seen, %s..%s, k_server's last %s, duplicates %s, not seen %s "
                      "(at most %s may be cut off in flight when wrk stops): %s"
                      % ("", v.get("n", 0), v.get("min"), v.get("max"), v.get("issued"),
                         v.get("duplicates"), v.get("missing"), v.get("allow_missing"),
                         "unique and gap-free" if v.get("ok") else "CHECK FAILED"))
            else:
                print("  %-12s values: not checked" % "")

    if CR:
        print("  %-12s %s" % ("chain-regress", CR.get("line", "")))
    if TR:
        gen = TR.get("generator", {})
        print("  %-12s baseline call %s in %.3f s; generator: %d of %d open at the end, %d established at most, "
              "%d connects, %d closed by the server, %d failed"
              % ("trickle", TR["baseline"][0], TR["baseline"][1], gen.get("open", 0), TR["conns"],
                 gen.get("established_max", 0), gen.get("connects", 0), gen.get("closed_by_server", 0),
                 gen.get("connect_failed", 0)))
        print("  %-12s calls: %s" % ("", ", ".join("%s in %.3f s" % (c[0], c[1]) for c in TR["calls"])))

    rows = []

    def row(target, figure, ratio_s, met):
        rows.append((target, figure, ratio_s, "n/a" if met is None else ("MET" if met else "MISSED")))

    def vs_row(label, a, b, num, unit, rfmt):
        """An info row: a against b, and their ratio."""
        row(label, "%s vs %s%s" % (fmt(a, num), fmt(b, num), unit), fmt(ratio(a, b), rfmt), None)

    def floor_rows(mode):
        """The library floor's info rows for one transport mode, when it was measured."""
        floor, nginx, chain = "floor_" + mode, "nginx_" + mode, "chain_" + mode
        if not W.get(floor):
            return
        what = {"plain": "", "tls": " TLS", "tls2": " TLS both hops"}[mode]
        fr = rps(floor)
        fc, _ = per_req(floor, ("floor_proxy", "floor_upstream"))
        kc, _ = per_req(chain, ("k_proxy", "k_server"))
        nc, _ = per_req(nginx, ("nginx",))
        vs_row("library floor%s req/s vs nginx%s (info)" % (what, what), fr, rps(nginx), "%.0f", "", "%.3fx")
        vs_row("chain%s req/s vs library floor%s (info)" % (what, what), rps(chain), fr, "%.0f", "", "%.3fx")
        vs_row("CPU/req library floor%s vs nginx%s (info)" % (what, what), fc, nc, "%.0f", " µs", "%.2fx")
        vs_row("CPU/req chain%s vs library floor%s (info)" % (what, what), kc, fc, "%.0f", " µs", "%.2fx")

    def every_2xx_row(run, what):
        """A target row: every response of a chain run 2xx, its values unique and gap-free."""
        w, v = W.get(run), V.get(run)
        if w and w.get("ok"):
            row("%s: every response 2xx, values ok" % what,
                "%d non-2xx, %d socket errors; values %s" % (w["non2xx"], w["socket_errors"],
                                                              "ok" if v and v.get("ok") else "NOT ok"),
                "", w["non2xx"] == 0 and w["socket_errors"] == 0 and bool(v and v.get("ok")))

    def pairs_row(run, what):
        """An info row: the median of the per-pair ratios, with their range."""
        pairs = P.get(run)
        if not pairs:
            return
        ratios = sorted(c / n for c, n, _ in pairs)
        bad = sum(b for _, _, b in pairs)
        row("%s req/s vs nginx, %d pairs of rounds in turn (info)" % (what, len(pairs)),
            "ratios %s; %d non-2xx or errors" % (", ".join("%.3f" % r for r in ratios), bad),
            "%.3fx" % median(ratios), None)

    def ceiling_rounds(run):
        """An info row: each ceiling round's req/s, before and after the chain run (r4, r5)."""
        got = [(n, W[n]["rps2xx"]) for n in listed if n.startswith(run + ".r") and W.get(n) and W[n].get("ok")]
        if len(got) < 2:
            return
        before = [v for n, v in got if n[len(run) + 2:] in ("1", "2", "3")]
        after = [v for n, v in got if n[len(run) + 2:] not in ("1", "2", "3")]
        vals = [v for _, v in got]
        row("%s rounds, before / after the chain (info)" % run,
            "%s / %s" % (", ".join("%.0f" % v for v in before) or "-", ", ".join("%.0f" % v for v in after) or "-"),
            "%.2fx" % (max(vals) / min(vals)) if min(vals) > 0 else "", None)

    # 1. plain, 60 s: every response 2xx, values unique and gap-free, >= 0.5x nginx
    cp, w = rps("chain_plain"), W.get("chain_plain")
    r = ratio(cp, rps("nginx_plain"))
    row("plain %s s @32: every response 2xx" % secs,
        "n/a" if not w or not w.get("ok") else "%d non-2xx, %d socket errors" % (w["non2xx"], w["socket_errors"]),
        "", None if not w or not w.get("ok") else (w["non2xx"] == 0 and w["socket_errors"] == 0))
    v = V.get("chain_plain")
    row("plain: values unique and gap-free",
        "n/a" if not v else "%d values, %s dup, %s not seen (<= %s in flight)" % (
            v.get("n", 0), v.get("duplicates"), v.get("missing"), v.get("allow_missing")),
        "", None if not v else bool(v.get("ok")) and w is not None and v.get("n") == w.get("ok2xx"))
    row("plain req/s >= 0.5x nginx", "%s vs %s" % (fmt(cp, "%.0f"), fmt(rps("nginx_plain"), "%.0f")),
        fmt(r, "%.3fx"), None if r is None else r >= 0.5)
    ceiling_rounds("nginx_plain")
    pairs_row("chain_plain", "plain")
    a, b = p("chain_plain", "p99_us"), p("nginx_plain", "p99_us")
    row("plain p50 / p99 (info)", "%s / %s vs %s / %s ms" % (
        fmt(p("chain_plain", "p50_us"), "%.2f"), fmt(a, "%.2f"), fmt(p("nginx_plain", "p50_us"), "%.2f"),
        fmt(b, "%.2f")), fmt(ratio(a, b), "%.2fx"), None)
    # 2. TLS in front (chain_tls: k_proxy terminates TLS, k_server over plain
    # HTTP, as nginx_tls proxies to a plain upstream)
    ct = rps("chain_tls")
    r = ratio(ct, rps("nginx_tls"))
    row("TLS req/s >= 0.5x nginx TLS", "%s vs %s" % (fmt(ct, "%.0f"), fmt(rps("nginx_tls"), "%.0f")),
        fmt(r, "%.3fx"), None if r is None else r >= 0.5)
    ceiling_rounds("nginx_tls")
    pairs_row("chain_tls", "TLS")
    a, b = p("chain_tls", "p99_us"), p("nginx_tls", "p99_us")
    r = ratio(a, b)
    row("TLS p99 <= 4x nginx TLS p99", "%s vs %s ms" % (fmt(a, "%.2f"), fmt(b, "%.2f")),
        fmt(r, "%.2fx"), None if r is None else r <= 4.0)
    every_2xx_row("chain_tls", "TLS")
    # TLS on both hops, against nginx with TLS on both hops (info)
    if W.get("chain_tls2"):
        vs_row("TLS both hops req/s vs nginx TLS both hops (info)", rps("chain_tls2"), rps("nginx_tls2"),
               "%.0f", "", "%.3fx")
        ceiling_rounds("nginx_tls2")
        vs_row("TLS both hops p99 vs nginx TLS both hops (info)", p("chain_tls2", "p99_us"),
               p("nginx_tls2", "p99_us"), "%.2f", " ms", "%.2fx")
        every_2xx_row("chain_tls2", "TLS both hops")
    # 3. CPU per request
    kc, kcs = per_req("chain_plain", ("k_proxy", "k_server"))
    nc, ncs = per_req("nginx_plain", ("nginx",))
    r = ratio(kc, nc)
    row("CPU/req k_proxy+k_server <= 3x nginx (plain)", "%s vs %s µs" % (fmt(kc, "%.0f"), fmt(nc, "%.0f")),
        fmt(r, "%.2fx"), None if r is None else r <= 3.0)
    row("context switches/req (plain, info)", "%s vs %s" % (fmt(kcs, "%.2f"), fmt(ncs, "%.2f")), "", None)
    for mode, what in (("tls", "TLS"), ("tls2", "TLS both hops")):
        if W.get("chain_" + mode):
            vs_row("CPU/req, %s vs nginx %s (info)" % (what, what), per_req("chain_" + mode, ("k_proxy", "k_server"))[0],
                   per_req("nginx_" + mode, ("nginx",))[0], "%.0f", " µs", "%.2fx")
    # the library floor: libmicrohttpd + libcurl multi doing nothing else, in
    # each transport mode of the chain's runs
    for mode in ("plain", "tls", "tls2"):
        floor_rows(mode)
    # 4. trickle
    if TR:
        worst = TR.get("worst_s")
        gen = TR.get("generator", {})
        row("%d trickling conns: call <= 1 s, %d of %d" % (TR["conns"], TR["tries"], TR["tries"]),
            "worst %s s, %d/%d 2xx, %d held" % (fmt(worst, "%.3f"), TR.get("ok_calls", 0), TR["tries"],
                                               gen.get("established_max", 0)),
            "", bool(TR.get("all_ok")) and worst is not None and worst <= 1.0)
    else:
        row("10k trickling conns: call <= 1 s", "not measured", "", None)
    # 5. logins
    a, b = rps("login_100k"), rps("login_fresh")
    r = ratio(a, b)
    row("logins/s with 100k sessions >= 0.8x fresh", "%s vs %s /s" % (fmt(a, "%.0f"), fmt(b, "%.0f")),
        fmt(r, "%.3fx"), None if r is None else r >= 0.8)
    # 6. chain-regress CPU
    if CR and CR.get("requests"):
        us = CR["cpu_s"] * 1e6 / CR["requests"]
        row("chain-regress CPU/req @32 <= 20 µs", "%.1f µs (%s)" % (us, "PASS" if CR.get("pass") else "FAIL"),
            "", us <= 20.0 and bool(CR.get("pass")))
        # the same machine's peer: wrk, a C load generator that checks
        # nothing, through the same chain in the plain run; µs targets move
        # with the machine (2-3x between days here), this ratio does not
        wc, ww = W.get("chain_plain.cpu"), W.get("chain_plain")
        if wc and ww and ww.get("requests"):
            wrk_us = wc["cmd_cpu_s"] * 1e6 / ww["requests"]
            row("chain-regress CPU/req vs wrk's in chain_plain (info)", "%.1f vs %.1f µs" % (us, wrk_us),
                fmt(ratio(us, wrk_us), "%.2fx"), None)
    else:
        row("chain-regress CPU/req @32 <= 20 µs", "not measured", "", None)

    print()
    nr = next((W[n]["rounds"] for n in ("nginx_plain", "nginx_tls", "nginx_tls2") if (W.get(n) or {}).get("rounds")),
              None)
    print("== issue 9 targets (one run, side by side; nginx figures the median of %s rounds; not a gate)"
          % (nr if nr else "no"))
    w0 = max(len(x[0]) for x in rows)
    w1 = max(len(x[1]) for x in rows)
    w2 = max(max(len(x[2]) for x in rows), 5)
    print("  %-*s  %-*s  %-*s  %s" % (w0, "target", w1, "figure", w2, "ratio", "verdict"))
    for t, f, rr, m in rows:
        print("  %-*s  %-*s  %-*s  %s" % (w0, t, w1, f, w2, rr, m))
    others = [W[k].get("other_cores", 0.0) for k in W if k.endswith(".cpu") and W[k]]
    if CR:
        others.append(CR.get("other_cores", 0.0))
    if others:
        lo, hi, mean = min(others), max(others), sum(others) / len(others)
        print("  other processes on the machine used %.2f to %.2f cores (mean %.2f) of %d during the runs%s"
              % (lo, hi, mean, os.cpu_count() or 0,
                 ": figures and ratios are unreliable, run again on a quiet machine" if hi > 0.25 else ""))
    md = os.path.join(d, "summary.md")
    try:
        with open(md, "w") as f:
            f.write("| target | figure | ratio | verdict |\n|---|---|---|---|\n")
            for t, fig, rr, m in rows:
                f.write("| %s | %s | %s | %s |\n" % (t, fig, rr, m))
        print("  (as Markdown: %s)" % md)
    except OSError:
        pass
    return 0


def main():
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0 if len(sys.argv) >= 2 else 2
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "freeport":
        socks = []
        for _ in range(int(args[0]) if args else 1):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        for s in socks:
            print(s.getsockname()[1])
            s.close()
        return 0
    table = {"measure": cmd_measure, "wrk": cmd_wrk, "values": cmd_values, "preload": cmd_preload,
             "trickle": cmd_trickle, "trickle-gen": cmd_trickle_gen, "report": cmd_report}
    if cmd not in table:
        sys.exit("benchtool: unknown command %s (see --help)" % cmd)
    return table[cmd](args)


if __name__ == "__main__":
    sys.exit(main())
