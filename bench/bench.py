#!/usr/bin/env python3
"""Benchmark grace-init against tini, tini-static, dumb-init and catatonit.

Run through bench/run.sh (which builds the binaries). Prints a Markdown report on stdout;
progress goes to stderr. Exits 1 if any measurement crashed, timed out or found grace-init
misbehaving (zombies left, signals lost, wrong exit status); speed is never checked.

Timing loops that need microsecond precision (start-up, signal latency) run in the Rust
helper bench-workload; this script starts the processes and formats the results.
"""

import argparse
import datetime
import json
import os
import platform
import select
import signal
import statistics
import subprocess
import sys
import time

UNSHARE = ["unshare", "--pid", "--fork", "--mount-proc"]
START_TIMEOUT = 5.0

problems = []  # strings; any entry makes the exit status 1


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def problem(msg):
    log(f"PROBLEM: {msg}")
    problems.append(msg)


class Peer:
    def __init__(self, name, path, args_before_cmd, forwards_to):
        self.name = name
        self.path = path  # None for the floor (no init at all)
        self.before = args_before_cmd
        self.forwards_to = forwards_to

    def argv(self, cmd, options=()):
        """The init's command line running cmd (no init at all for the floor)."""
        if self.path is None:
            return list(cmd)
        return [self.path, *options, *self.before, *cmd]


# ------------------------------------------------------------------ process helpers

def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def wait_for_child(pid, timeout=START_TIMEOUT):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        c = children(pid)
        if c:
            return c[0]
        time.sleep(0.002)
    raise RuntimeError(f"pid {pid} got no child within {timeout}s")


def read_exact(fd, n, timeout):
    """Read n bytes from fd within timeout seconds, or raise."""
    out = b""
    end = time.monotonic() + timeout
    while len(out) < n:
        left = end - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise RuntimeError(f"timed out after {timeout}s waiting for {n - len(out)} byte(s)")
        chunk = os.read(fd, n - len(out))
        if not chunk:
            raise RuntimeError("pipe closed (process died?)")
        out += chunk
    return out


class Pid1:
    """`unshare --pid --fork --mount-proc INIT CMD` (or CMD alone for the floor), stdout piped.

    .init_pid is the init (PID 1 inside the namespace), seen from here.
    """

    def __init__(self, peer, cmd, options=(), wait_ready=True):
        self.peer = peer
        argv = peer.argv(cmd, options)
        if peer.path is not None:
            argv = UNSHARE + argv
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.fd = self.proc.stdout.fileno()
        try:
            self.init_pid = self.proc.pid if peer.path is None else wait_for_child(self.proc.pid)
            if wait_ready:
                b = read_exact(self.fd, 1, START_TIMEOUT)
                if b != b"R":
                    raise RuntimeError(f"expected ready byte, got {b!r}")
        except Exception:
            self.kill()
            raise

    def child_pid(self):
        return self.init_pid if self.peer.path is None else wait_for_child(self.init_pid)

    def wait(self, timeout):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise RuntimeError(f"{self.peer.name} did not exit within {timeout}s")

    def kill(self):
        """SIGKILL the init: the kernel then kills everything in its namespace."""
        if self.proc.poll() is None:
            target = getattr(self, "init_pid", None) or self.proc.pid
            try:
                os.kill(target, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()

    def stderr_tail(self):
        try:
            return self.proc.stderr.read().decode(errors="replace").strip()[-300:]
        except (OSError, ValueError):
            return ""


def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def ctxt_switches(pid):
    s = proc_status(pid)
    return int(s["voluntary_ctxt_switches"]), int(s["nonvoluntary_ctxt_switches"])


# ------------------------------------------------------------------ measures

def measure_size(peer):
    size = os.path.getsize(peer.path)
    desc = subprocess.run(["file", "-L", peer.path], capture_output=True, text=True).stdout
    static = "statically linked" in desc or "static-pie linked" in desc
    return size, static


def measure_startup(peers, workload, runs, in_namespace=False):
    """Median wall time of `INIT -- /bin/true`, interleaved round-robin with bare /bin/true.

    in_namespace: the timing loop runs as PID 1 of a fresh PID namespace (so /proc lists only
    the loop and the command), like an init's view inside a container; the inits are not PID 1.
    """
    argv = (UNSHARE if in_namespace else []) + [workload, "spawn-time", str(runs), str(max(5, runs // 10)), "/bin/true"]
    for p in peers:
        argv += ["::", *p.argv(["/bin/true"])]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"spawn-time failed: {out.stderr.strip()}")
    res = json.loads(out.stdout)["results"]
    return res[0], dict(zip((p.name for p in peers), res[1:]))


def measure_idle(peers, workload, seconds):
    """VmRSS and context switches of each init (PID 1) while its child sleeps; all in parallel."""
    runs, out = {}, {}
    for p in peers:
        try:
            runs[p.name] = Pid1(p, [workload, "idle"], wait_ready=False)
        except Exception as e:
            problem(f"idle: {p.name} did not start: {e}")
    try:
        # wait until every child has exec'd the workload
        end = time.monotonic() + START_TIMEOUT
        for name, r in runs.items():
            while True:
                c = children(r.init_pid)
                try:
                    if c and os.readlink(f"/proc/{c[0]}/exe") == os.path.realpath(workload):
                        break
                except OSError:
                    pass
                if time.monotonic() > end:
                    raise RuntimeError(f"idle: {name}'s child did not start")
                time.sleep(0.005)
        time.sleep(0.5)
        start = {n: (ctxt_switches(r.init_pid), proc_status(r.init_pid)["VmRSS"]) for n, r in runs.items()}
        time.sleep(seconds)
        for n, r in runs.items():
            (v0, i0), rss = start[n]
            v1, i1 = ctxt_switches(r.init_pid)
            anon = proc_status(r.init_pid)["RssAnon"]
            out[n] = {"rss_kb": int(rss.split()[0]), "anon_kb": int(anon.split()[0]),
                      "wakeups": (v1 - v0) + (i1 - i0)}
    finally:
        for r in runs.values():
            r.kill()
    return out


def measure_storm(peer, workload, n):
    """`unshare --pid --fork --mount-proc INIT -- workload orphans N`: the workload reports."""
    argv = UNSHARE + peer.argv([workload, "orphans", str(n)])
    out = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    lines = [l for l in out.stdout.splitlines() if l.startswith("RESULT ")]
    if not lines:
        raise RuntimeError(f"no result (exit {out.returncode}): {out.stderr.strip()[-300:]}")
    res = json.loads(lines[-1][len("RESULT "):])
    res["exit"] = out.returncode
    return res


def measure_signals(peers, workload, n, rounds):
    """Send-to-ack latency of SIGUSR1 through each init (PID 1), then bursts of 5 distinct signals.

    All inits run at once and the Rust driver interleaves them round-robin, so drift hits all alike.
    """
    runs = {}
    try:
        for p in peers:
            try:
                runs[p.name] = Pid1(p, [workload, "sigack"])
            except Exception as e:
                problem(f"signals: {p.name} did not start: {e}")
        out = subprocess.run(
            [workload, "sig-latency", str(n), str(rounds), *(f"{r.init_pid}:{r.fd}" for r in runs.values())],
            pass_fds=[r.fd for r in runs.values()], capture_output=True, text=True, timeout=600,
        )
        if out.returncode != 0:
            raise RuntimeError(f"sig-latency failed: {out.stderr.strip()}")
        res = dict(zip(runs, json.loads(out.stdout)["results"]))
        # stop: TERM to the init, the child acks and exits 0, the init must exit 0
        for name, r in runs.items():
            os.kill(r.init_pid, signal.SIGTERM)
        for name, r in runs.items():
            try:
                res[name]["exit"] = r.wait(5)
            except RuntimeError as e:
                res[name]["exit"] = str(e)
        return res
    finally:
        for r in runs.values():
            r.kill()


def measure_stop_delay(grace, workload, delay_ms, runs):
    errs = []
    for _ in range(runs):
        r = Pid1(grace, [workload, "sigack"], options=["--stop-delay", f"{delay_ms}ms"])
        try:
            t0 = time.perf_counter_ns()
            os.kill(r.init_pid, signal.SIGTERM)
            b = read_exact(r.fd, 1, delay_ms / 1000 + 3)
            t1 = time.perf_counter_ns()
            if b[0] != signal.SIGTERM:
                raise RuntimeError(f"child received signal {b[0]}, expected TERM")
            errs.append((t1 - t0) / 1e6 - delay_ms)
            rc = r.wait(5)
            if rc != 0:
                problem(f"stop-delay: grace-init exited {rc}, expected 0")
        finally:
            r.kill()
    return errs


def measure_deadline(grace, workload, grace_ms, margin_ms, runs):
    errs = []
    for _ in range(runs):
        r = Pid1(grace, [workload, "ignore-term"],
                 options=["--grace-period", f"{grace_ms}ms", "--kill-margin", f"{margin_ms}ms"])
        try:
            pidfd = os.pidfd_open(r.child_pid())
            try:
                t0 = time.perf_counter_ns()
                os.kill(r.init_pid, signal.SIGTERM)
                if not select.select([pidfd], [], [], (grace_ms - margin_ms) / 1000 + 3)[0]:
                    raise RuntimeError("child not killed within the deadline + 3s")
                t1 = time.perf_counter_ns()
            finally:
                os.close(pidfd)
            errs.append((t1 - t0) / 1e6 - (grace_ms - margin_ms))
            rc = r.wait(5)
            if rc != 137:
                problem(f"deadline: grace-init exited {rc}, expected 137")
        finally:
            r.kill()
    return errs


# ------------------------------------------------------------------ report

def version(peer):
    out = subprocess.run([peer.path, "--version"], capture_output=True, text=True)
    text = (out.stdout.strip() or out.stderr.strip()).splitlines()
    return text[0] if text else f"? (exit {out.returncode})"


def machine():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return cpu, os.cpu_count(), platform.release()


def fmt_us(ns):
    return f"{ns / 1000:.0f} µs" if ns < 10_000_000 else f"{ns / 1e6:.1f} ms"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="few repetitions (CI smoke run, seconds)")
    ap.add_argument("--grace-init", required=True, help="grace-init binary")
    ap.add_argument("--workload", required=True, help="bench-workload binary")
    ap.add_argument("--only", help="comma list of peers to run (default: all)")
    a = ap.parse_args()

    q = a.quick
    startup_runs = 40 if q else 500
    idle_s = 2 if q else 10
    orphans = 1000 if q else 10000
    sig_n, sig_rounds = (500, 20) if q else (10000, 200)
    timer_runs = 3 if q else 20
    storm_reps = 1 if q else 3

    floor = Peer("no init", None, [], "—")
    peers = [
        Peer("tini", "/usr/bin/tini", ["--"], "child"),
        Peer("tini-static", "/usr/bin/tini-static", ["--"], "child"),
        Peer("dumb-init", "/usr/bin/dumb-init", [], "child's session (group)"),
        Peer("catatonit", "/usr/bin/catatonit", ["--"], "child"),
        Peer("grace-init", os.path.abspath(a.grace_init), ["--"], "child's group"),
    ]
    if a.only:
        keep = a.only.split(",")
        peers = [p for p in peers if p.name in keep]
    names = [p.name for p in peers]
    cols = [floor.name] + names
    rows = []  # (label, {col: text})
    t_begin = time.monotonic()

    def run(label, fn, *args):
        try:
            return fn(*args)
        except Exception as e:
            problem(f"{label}: {e}")
            return None

    # sizes
    log("sizes")
    size_row, static_row = {}, {}
    for p in peers:
        s = run(f"size {p.name}", measure_size, p)
        if s:
            size_row[p.name] = f"{s[0]:,}"
            static_row[p.name] = "yes" if s[1] else "no (dynamic)"
    rows += [("binary size (bytes)", size_row), ("static", static_row)]

    # start-up
    for in_ns, where in ((False, "on the host"), (True, "in a fresh PID namespace")):
        log(f"start-up {where}: {startup_runs} runs each, interleaved")
        su = run(f"start-up {where}", measure_startup, peers, a.workload, startup_runs, in_ns)
        if su:
            base, res = su
            rows.append((f"start-up `INIT -- /bin/true` {where}, median, × bare /bin/true",
                         {floor.name: "1.00", **{n: f"{r['median'] / base['median']:.2f}" for n, r in res.items()}}))
            rows.append(("… median (this machine)",
                         {floor.name: fmt_us(base["median"]), **{n: fmt_us(r["median"]) for n, r in res.items()}}))

    # idle
    log(f"idle: {idle_s}s, all inits in parallel")
    idle = run("idle", measure_idle, peers, a.workload, idle_s)
    if idle:
        rows.append(("idle VmRSS of the init (KiB)", {n: str(v["rss_kb"]) for n, v in idle.items()}))
        rows.append(("… of which anonymous, RssAnon (KiB)", {n: str(v["anon_kb"]) for n, v in idle.items()}))
        rows.append((f"idle wake-ups of the init in {idle_s} s (ctxt switches)",
                     {n: str(v["wakeups"]) for n, v in idle.items()}))

    # orphan storm: `storm_reps` rounds, peers round-robin; medians, zombies = worst round
    storm = {p.name: [] for p in peers}
    for rep in range(storm_reps):
        for p in peers:
            log(f"orphan storm {rep + 1}/{storm_reps}: {p.name}, {orphans} orphans")
            r = run(f"orphan storm {p.name}", measure_storm, p, a.workload, orphans)
            if r is None:
                continue
            if r["zombies_left"] or r["alive_left"] or r["exit"] != 0:
                msg = f"orphan storm {p.name}: {r['zombies_left']} zombies left, exit {r['exit']}"
                problem(msg) if p.name == "grace-init" else log(msg)
            storm[p.name].append(r)
    storm_rows = {k: {} for k in ("z", "cpu", "lag", "t")}
    for name, rs in storm.items():
        if len(rs) < storm_reps:
            storm_rows["z"][name] = "FAIL"
        if not rs:
            continue
        med = lambda key: statistics.median(r[key] for r in rs)
        storm_rows["z"].setdefault(name, str(max(r["zombies_left"] for r in rs)))
        storm_rows["cpu"][name] = f"{med('init_cpu_ns') / 1e6:.1f}"
        lags = [r["reap_lag_us"] for r in rs]
        storm_rows["lag"][name] = "never" if None in lags else f"{statistics.median(lags):.0f}"
        storm_rows["t"][name] = f"{med('storm_us') / 1e6:.2f}"
    rows += [
        (f"orphan storm ({orphans:,} orphans, medians of {storm_reps} runs): zombies left (worst run)", storm_rows["z"]),
        ("orphan storm: init CPU time, storm start → all reaped (ms)", storm_rows["cpu"]),
        ("orphan storm: last orphan exit → all reaped (µs)", storm_rows["lag"]),
        ("orphan storm: wall time of the storm (s)", storm_rows["t"]),
    ]

    # signals
    log(f"signals: {sig_n} one at a time + {sig_rounds} bursts, all inits interleaved")
    sig = run("signals", measure_signals, [floor] + peers, a.workload, sig_n, sig_rounds) or {}
    for name, r in sig.items():
        bad = []
        if r["lost"] or r["wrong"]:
            bad.append(f"{r['lost']} lost, {r['wrong']} wrong acks")
        if r["burst_last_delivered"] != r["burst_rounds"]:
            bad.append(f"last of burst delivered {r['burst_last_delivered']}/{r['burst_rounds']}")
        if r["exit"] != 0:
            bad.append(f"exit {r['exit']} after TERM")
        if bad:
            msg = f"signals {name}: " + ", ".join(bad)
            problem(msg) if name == "grace-init" else log(msg)
    if sig:
        fl = sig.get(floor.name, {}).get("latency")
        lat = {n: r["latency"] for n, r in sig.items() if r["latency"]}
        rows.append(("signal forwarded to", {floor.name: "(sent to the child)",
                                             **{p.name: p.forwards_to for p in peers}}))
        if fl:
            rows.append(("signal latency p50, × no init", {n: f"{l['median'] / fl['median']:.2f}" for n, l in lat.items()}))
            rows.append(("signal latency p99, × no init", {n: f"{l['p99'] / fl['p99']:.2f}" for n, l in lat.items()}))
        rows.append(("signal latency p50 / p99 (this machine)",
                     {n: f"{fmt_us(l['median'])} / {fmt_us(l['p99'])}" for n, l in lat.items()}))
        rows.append((f"signals lost of {sig_n:,}", {n: str(r["lost"] + r["wrong"]) for n, r in sig.items()}))
        rows.append(("burst of 5 distinct: last one delivered",
                     {n: ("yes" if r["burst_last_delivered"] == r["burst_rounds"] else "NO")
                      + f" ({r['burst_last_delivered']}/{r['burst_rounds']})" for n, r in sig.items()}))

    # timers (grace-init only)
    grace = next((p for p in peers if p.name == "grace-init"), None)
    timers, timer_note = [], ""
    if grace:
        probe = subprocess.run([grace.path, "--stop-delay", "1ms", "--", "/bin/true"],
                               capture_output=True, text=True)
        if probe.returncode != 0:
            timer_note = ("skipped: `grace-init --stop-delay 1ms -- /bin/true` exited "
                          f"{probe.returncode}: {probe.stderr.strip().splitlines()[:1]}")
            log(f"timers {timer_note}")
        else:
            log(f"timers: {timer_runs} runs each")
            e = run("stop-delay", measure_stop_delay, grace, a.workload, 500, timer_runs)
            if e:
                timers.append(("`--stop-delay 500ms`: TERM to the init → TERM in the child, minus 500 ms", e))
            e = run("deadline", measure_deadline, grace, a.workload, 1500, 1000, timer_runs)
            if e:
                timers.append(("`--grace-period 1500ms --kill-margin 1s`, child ignores TERM: "
                               "TERM to the init → child dead, minus 500 ms", e))

    # report
    cpu, ncpu, kernel = machine()
    print("## Benchmark results\n")
    print(f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}"
          f"{' (quick mode: few repetitions)' if q else ''}")
    print(f"- machine: {cpu}, {ncpu} CPUs, Linux {kernel}")
    for p in peers:
        print(f"- {p.name}: `{version(p)}` ({p.path})")
    print()
    print("| measure | " + " | ".join(cols) + " |")
    print("|---|" + "---:|" * len(cols))
    for label, vals in rows:
        print(f"| {label} | " + " | ".join(vals.get(c, "—") for c in cols) + " |")
    print()
    if grace:
        print("### grace-init timers\n")
        if timer_note:
            print(timer_note + "\n")
        elif timers:
            print(f"| timer | p50 error | max error | runs |\n|---|---:|---:|---:|")
            for label, e in timers:
                worst = max(e, key=abs)
                print(f"| {label} | {statistics.median(e):+.1f} ms | {worst:+.1f} ms | {len(e)} |")
            print()
    print(f"_{time.monotonic() - t_begin:.0f} s. Start-up: posix_spawn + waitpid loop in bench-workload, "
          f"{startup_runs} runs per command after warm-up, commands interleaved round-robin, inits not PID 1. "
          "Idle, orphan storm, signals and timers: each init is PID 1 of `unshare --pid --fork --mount-proc`. "
          "Signals: each peer in its default forwarding mode._")
    if problems:
        print("\n**Problems:**\n")
        for m in problems:
            print(f"- {m}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
