#!/usr/bin/python3
"""A rolling update behind nginx, per init: count the requests it loses.

Real parts only. Three replicas run nginx (Debian's nginx-light, bench/zero-downtime/image) on a
private Docker network, behind a balancer that is nginx too, configured as ingress-nginx does it:
HTTP/1.1 keep-alive connections to the upstreams, retries of `error timeout` on the next upstream
(proxy_next_upstream, 3 tries), no passive health check. A load client keeps HTTP/1.1 keep-alive
connections to the balancer and sends a mix: GET /fast (answered at once), POST /fast (not
retried by nginx once sent: non-idempotent), GET /slow (a 150 KiB download at 100 KiB/s, ~1.5 s),
so requests are in flight at every SIGTERM.

The rolling update does what a Deployment with maxSurge 1, maxUnavailable 0 does, one replica at a
time: start a new replica, wait until it answers, add it to the balancer (rewrite the upstream
list, `nginx -s reload`), then `docker stop -t T` the old one, and L seconds after the stop began
remove the old one from the upstream list (rewrite, reload) — the endpoint-propagation lag of
Kubernetes (EndpointSlice → ingress controller). The next replica starts as soon as the stop has
begun; removals happen on their own timers.

A request fails on anything but a complete 200 answer: a 5xx from the balancer, a truncated body,
a reset, a timeout. The client retries a request once, on a new connection, only when a reused
keep-alive connection to the balancer was closed before any byte of the answer (what HTTP clients
do; it happens when a balancer reload closes idle connections); those retries are counted apart.

Variants differ only in PID 1 of the replicas (the balancer and the load are the same):
  nginx as PID 1      exec form: nginx gets SIGTERM itself, its fast stop
  sh -c               shell form (Debian's dash stays PID 1): SIGTERM is dropped, SIGKILL after T
  shell wrapper       sh traps TERM and passes it to nginx (background + wait)
  docker --init       docker run --init: Docker's docker-init (tini) passes TERM on
  tini-static         Debian's tini-static, TERM passed on
  dumb-init           Debian's dumb-init, TERM passed on
  dumb-init -r 15:3   dumb-init rewriting TERM to QUIT (nginx's graceful stop)
  grace-init          grace-init --rewrite TERM:QUIT, no stop delay
  grace-init delay    grace-init --rewrite TERM:QUIT, stop delay L + 2 s, grace period T

Prints a Markdown table, draws bench/zero-downtime/zero-downtime.png.
Usage: bench/zero-downtime/run.sh [--quick] [--lags 1,3,10] [--variants 'nginx,grace-init delay']
       [--json FILE]; --report FILE prints the table and draws the picture again from a --json file.
--quick: L = 1 s, only "nginx as PID 1" and "grace-init delay"; exits non-zero if grace-init with
the delay lost any request, or if the baseline lost none (then nothing was measured).
"""

import argparse
import random
import http.client
import json
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TAG = os.environ.get("GRACE_INIT_TAG", "test")
REPLICA = f"grace-init/zd-replica:{TAG}"
BALANCER = f"grace-init/debian-apps:{TAG}"
NGINX = ["nginx", "-g", "daemon off;"]
REPLICAS = 3

BALANCER_CONF = """\
worker_processes 1;
error_log stderr notice;
pid /run/nginx.pid;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    upstream app {{
{servers}
        keepalive 64;
    }}
    server {{
        listen 80;
        keepalive_timeout 75s;
        keepalive_requests 1000000;
        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_next_upstream error timeout;
            proxy_next_upstream_tries 3;
            proxy_connect_timeout 2s;
            proxy_read_timeout 30s;
        }}
    }}
}}
"""


# The adaptive hold: at least 1 s, then until the replica's port was quiet for 1 s, at most 20 s.
ADAPTIVE = {"GRACE_INIT_STOP_DELAY": "1s", "GRACE_INIT_DRAIN_QUIET": "1s", "GRACE_INIT_DRAIN_MAX": "20s"}


def variants(lag, stop_timeout):
    """(name, PID 1, docker run args before the image, args after it); `lag` is the largest L
    (the fixed delay must cover the worst lag)"""
    delay = lag + 2
    gi = ["--entrypoint", "grace-init"]
    return [
        ("nginx as PID 1", "nginx", [], NGINX),
        ("sh -c", "sh (dash)", ["--entrypoint", "sh"], ["-c", "nginx -g 'daemon off;'"]),
        ("shell wrapper", "sh, trap forwards TERM", ["--entrypoint", "wrapper"], []),
        ("docker --init", "docker-init (tini)", ["--init"], NGINX),
        ("tini-static", "tini-static", ["--entrypoint", "tini-static"], ["--", *NGINX]),
        ("dumb-init", "dumb-init", ["--entrypoint", "dumb-init"], NGINX),
        ("dumb-init -r 15:3", "dumb-init, TERM→QUIT", ["--entrypoint", "dumb-init"], ["-r", "15:3", *NGINX]),
        ("grace-init", "grace-init, TERM→QUIT", gi, ["--rewrite", "TERM:QUIT", *NGINX]),
        (f"grace-init delay {delay:g}s", "grace-init, TERM→QUIT",
         ["-e", f"GRACE_INIT_STOP_DELAY={delay:g}s", "-e", f"GRACE_INIT_GRACE_PERIOD={stop_timeout}s",
          "-e", "GRACE_INIT_VERBOSE=1", *gi],
         ["--rewrite", "TERM:QUIT", *NGINX]),
        ("grace-init adaptive", "grace-init, TERM→QUIT",
         [*(a for k, v in ADAPTIVE.items() for a in ("-e", f"{k}={v}")),
          "-e", f"GRACE_INIT_GRACE_PERIOD={stop_timeout}s", "-e", "GRACE_INIT_VERBOSE=1", *gi],
         ["--rewrite", "TERM:QUIT", *NGINX]),
    ]


def term_after(container):
    """When grace-init passed the stop signal on, from its -v log: seconds after `docker stop`."""
    logs = subprocess.run(["docker", "logs", container], capture_output=True, text=True).stderr
    for line in logs.splitlines():
        if "forwarded" in line and "since_stop=" in line:
            value = line.split("since_stop=")[1].split()[0]
            return float(value[:-2]) / 1000 if value.endswith("ms") else float(value.rstrip("s"))
    return None


def log(msg):
    print(f"zero-downtime: {msg}", file=sys.stderr, flush=True)


def docker(*args, check=True):
    res = subprocess.run(["docker", *args], stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if check and res.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)} failed: {res.stderr.strip()}")
    return res.stdout.strip()


def ip_of(container, network):
    return docker("inspect", "-f", f"{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}", container)


def wait_http(ip, timeout=60):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            c = http.client.HTTPConnection(ip, 80, timeout=2)
            c.request("GET", "/fast")
            r = c.getresponse()
            r.read()
            c.close()
            if r.status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{ip}:80 never answered")


class Balancer:
    """nginx in a container; its upstream list is a file on the host, `nginx -s reload` applies it."""

    def __init__(self, name, network, confdir, endpoints):
        self.name, self.confdir = name, confdir
        self.endpoints = list(endpoints)
        self.lock = threading.Lock()
        self.reloads = []
        self.write()
        docker("run", "-d", "--name", name, "--network", network, "-v", f"{confdir}:/etc/nginx/zd:ro",
               "--entrypoint", "nginx", BALANCER, "-c", "/etc/nginx/zd/nginx.conf", "-g", "daemon off;")
        self.ip = ip_of(name, network)

    def write(self):
        servers = "\n".join(f"        server {ip}:80 max_fails=0;" for ip in self.endpoints)
        path = os.path.join(self.confdir, "nginx.conf")
        with open(path + ".new", "w") as f:
            f.write(BALANCER_CONF.format(servers=servers))
        os.replace(path + ".new", path)

    def change(self, endpoints, what, t):
        """Rewrite the upstream list and reload, as an ingress controller does."""
        with self.lock:
            self.endpoints = endpoints(self.endpoints)
            self.write()
            docker("exec", self.name, "nginx", "-c", "/etc/nginx/zd/nginx.conf", "-s", "reload")
            self.reloads.append((t(), what))

    def add(self, ip, t):
        self.change(lambda eps: [*eps, ip], f"add {ip}", t)

    def remove(self, ip, t):
        self.change(lambda eps: [e for e in eps if e != ip], f"remove {ip}", t)


class Load:
    """Client threads, each with one keep-alive connection to the balancer."""

    def __init__(self, ip, threads, pause, t, port=80):
        self.ip, self.port, self.pause, self.t = ip, port, pause, t
        self.results = []  # (t_sent, kind, failure or None, seconds)
        self.retries = 0
        self.lock = threading.Lock()
        self.running = True
        self.threads = [threading.Thread(target=self.worker, args=(i,), daemon=True) for i in range(threads)]

    def start(self):
        for th in self.threads:
            th.start()

    def stop(self):
        self.running = False
        for th in self.threads:
            th.join()

    def worker(self, i):
        rng = random.Random(i)
        conn, used = None, False
        while self.running:
            x = rng.random()
            kind = "GET /slow" if x < 0.15 else "POST /fast" if x < 0.35 else "GET /fast"
            t0 = self.t()
            start = time.monotonic()
            for attempt in (1, 2):
                if conn is None:
                    conn, used = http.client.HTTPConnection(self.ip, self.port, timeout=10), False
                failure, retry = self.one(conn, kind, used and attempt == 1)
                used = True
                if failure is not None:
                    conn.close()
                    conn = None
                if not retry:
                    break
                with self.lock:
                    self.retries += 1
            with self.lock:
                self.results.append((t0, kind, failure, time.monotonic() - start))
            time.sleep(self.pause)
        if conn is not None:
            conn.close()

    @staticmethod
    def one(conn, kind, reused):
        """(failure or None, whether to retry on a new connection)"""
        method, path = kind.split()
        try:
            if method == "POST":
                conn.request("POST", path, body=b"order=42", headers={"Content-Type": "application/x-www-form-urlencoded"})
            else:
                conn.request("GET", path)
            resp = conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as e:
            # closed before any byte of the answer: a stale keep-alive connection
            return (type(e).__name__, reused)
        except socket.timeout:
            return ("timeout", False)
        except OSError as e:
            return (e.strerror or type(e).__name__, False)
        try:
            body = resp.read()
        except http.client.IncompleteRead:
            return ("truncated", False)
        except socket.timeout:
            return ("timeout", False)
        except OSError as e:
            return (f"{e.strerror or type(e).__name__} in body", False)
        if resp.status != 200:
            return (f"HTTP {resp.status}", False)
        if not body.startswith(b"ok ") and len(body) != 153600:
            return ("bad body", False)
        return (None, False)


def run_variant(name, pre, post, lag, opts, prefix, network, lags=None):
    """One rolling update of REPLICAS replicas under load; returns what happened. `lags`: one L
    per replica (random lags), else `lag` for each."""
    lags = lags or [lag] * REPLICAS
    confdir = tempfile.mkdtemp(prefix="grace-init-zd-")
    containers = []
    start = time.monotonic()

    def t():
        return time.monotonic() - start

    def replica(n):
        cname = f"{prefix}-{n}"
        docker("rm", "-f", cname, check=False)
        docker("run", "-d", "--name", cname, "--network", network, *pre, REPLICA, *post)
        containers.append(cname)
        ip = ip_of(cname, network)
        wait_http(ip)
        return cname, ip

    try:
        old = [replica(f"old{i}") for i in range(REPLICAS)]
        containers.append(f"{prefix}-lb")
        lb = Balancer(f"{prefix}-lb", network, confdir, [ip for _, ip in old])
        wait_http(lb.ip)

        load = Load(lb.ip, opts.threads, opts.pause, t)
        start = time.monotonic()
        load.start()
        time.sleep(opts.warmup)

        stops, timers = [], []
        rollout_began = t()
        for i, (old_name, old_ip) in enumerate(old):
            _, new_ip = replica(f"new{i}")
            lb.add(new_ip, t)
            began = t()
            proc = subprocess.Popen(["docker", "stop", "-t", str(opts.stop_timeout), old_name],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            stops.append({"replica": old_name, "began": began, "proc": proc})
            timer = threading.Timer(lags[i], lb.remove, args=(old_ip, t))
            timer.start()
            timers.append(timer)
        for s in stops:
            s["proc"].wait()
            s["ended"] = t()
            s["exit_code"] = int(docker("inspect", "-f", "{{.State.ExitCode}}", s["replica"]))
            s["term_after"] = term_after(s["replica"])
            del s["proc"]
        for timer in timers:
            timer.join()
        rollout_ended = t()
        time.sleep(opts.after)
        load.stop()
        return {
            "variant": name,
            "lag": lag,
            "lags": lags,
            "rollout_began": rollout_began,
            "rollout_ended": rollout_ended,
            "stops": stops,
            "reloads": lb.reloads,
            "retries": load.retries,
            "results": sorted(load.results),
        }
    finally:
        for c in containers:
            docker("rm", "-f", c, check=False)
        for f in os.listdir(confdir):
            os.unlink(os.path.join(confdir, f))
        os.rmdir(confdir)


def summarize(run):
    failed = [r for r in run["results"] if r[2] is not None]
    causes = {}
    for r in failed:
        key = f"{r[1]}: {r[2]}"
        causes[key] = causes.get(key, 0) + 1
    b = run["rollout_began"]
    window = f"{failed[0][0] - b:.1f} .. {failed[-1][0] - b:.1f} s" if failed else "-"
    return len(run["results"]), len(failed), window, causes


def delayed(run, over=1.0):
    """Answered /fast requests that took over a second: the balancer waited for a replica that was
    gone (connect timeout, then the next upstream)."""
    return sum(1 for r in run["results"] if r[1].endswith("/fast") and r[2] is None and r[3] > over)


def table(runs, opts, header=None):
    lines = [
        header or (
            f"Rolling update of {REPLICAS} nginx replicas behind an nginx balancer (keep-alive, "
            f"proxy_next_upstream error timeout); `docker stop -t {opts.stop_timeout}`; {opts.threads} "
            "keep-alive clients: GET /fast, POST /fast, GET /slow (1.5 s). Times from the start of the rollout."),
        "",
        "| L | variant | PID 1 | requests | failed | failures by cause | failure window | /fast answered after > 1 s | rollout took | per replica: SIGTERM passed on / exited, s after `docker stop` | old replicas' exit codes | client retries |",
        "|---:|---|---|---:|---:|---|---|---:|---:|---|---|---:|",
    ]
    for run in runs:
        sent, failed, window, causes = summarize(run)
        why = ", ".join(f"{k} {v}" for k, v in sorted(causes.items(), key=lambda kv: -kv[1])) or "-"
        codes = ", ".join(str(s["exit_code"]) for s in run["stops"])
        took = run["rollout_ended"] - run["rollout_began"]
        per = ", ".join(("-" if s.get("term_after") is None else f"{s['term_after']:.1f}")
                        + f"/{s['ended'] - s['began']:.1f}" for s in run["stops"])
        lag = run["lag"] if isinstance(run["lag"], str) else f"{run['lag']:g} s"
        lines.append(f"| {lag} | {run['variant']} | {run['pid1']} | {sent} | {failed} | {why} | {window} | "
                     f"{delayed(run)} | {took:.1f} s | {per} | {codes} | {run['retries']} |")
    return "\n".join(lines)


def plot(runs, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lags = sorted({r["lag"] for r in runs}, key=lambda lag: (isinstance(lag, str), str(lag).zfill(8)))
    rows_per_lag = max(sum(1 for r in runs if r["lag"] == lag) for lag in lags)
    fig, axes = plt.subplots(1, len(lags), figsize=(4.2 * len(lags) + 1.5, 0.5 * rows_per_lag + 1.8),
                             sharey=True, squeeze=False)
    for ax, lag in zip(axes[0], lags):
        rows = [r for r in runs if r["lag"] == lag]
        ys = list(range(len(rows)))
        failed = [summarize(r)[1] for r in rows]
        slow = [delayed(r) for r in rows]
        ax.barh([y - 0.2 for y in ys], failed, height=0.4, color="tab:red", label="failed")
        ax.barh([y + 0.2 for y in ys], slow, height=0.4, color="tab:orange", label="/fast answered after > 1 s")
        for y, f, r in zip(ys, failed, rows):
            ax.text(f, y - 0.2, f" {f} of {summarize(r)[0]}", va="center", fontsize=7)
        ax.set_yticks(ys)
        ax.set_yticklabels([r["variant"].split(" delay")[0] + (" delay L+2 s" if " delay" in r["variant"] else "")
                            for r in rows], fontsize=8)
        ax.set_title(f"L = {lag}" if isinstance(lag, str) else f"L = {lag:g} s", fontsize=9)
        ax.set_xlabel("requests", fontsize=8)
        ax.set_xlim(0, max(failed + slow + [1]) * 1.3)
    axes[0, 0].invert_yaxis()
    axes[0, -1].legend(loc="lower right", fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    log(f"wrote {path}")


def machine():
    return f"{platform.machine()}, {os.cpu_count()} cores, Docker {docker('version', '-f', '{{.Server.Version}}')}"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="CI: L=1, baseline and grace-init delay; checks the result")
    p.add_argument("--lags", help="comma-separated L values in seconds (default 1,3,10; quick 1)")
    p.add_argument("--stop-timeout", type=int, default=30, help="docker stop -t (default 30)")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of load before the rollout")
    p.add_argument("--after", type=float, default=2.0, help="seconds of load after the rollout")
    p.add_argument("--threads", type=int, default=8, help="keep-alive client connections (default 8)")
    p.add_argument("--pause", type=float, default=0.02, help="seconds each client waits between requests")
    p.add_argument("--variants", help="comma-separated names (prefix match), default all")
    p.add_argument("--random-lag", type=float, metavar="MAX",
                   help="instead of --lags: each replica's L drawn from 1..MAX s (the same draws for every variant)")
    p.add_argument("--no-build", action="store_true", help="do not run docker/build-app-images.sh")
    p.add_argument("--png", help="default bench/zero-downtime/zero-downtime.png; none with --quick")
    p.add_argument("--json", help="also write the raw results here")
    p.add_argument("--report", metavar="JSON", help="only print the table and draw the picture from a --json file")
    opts = p.parse_args()
    if opts.report:
        report_from(opts.report, opts.png or os.path.join(HERE, "zero-downtime.png"))
        return
    lags = [float(x) for x in (opts.lags or ("1" if opts.quick else "1,3,10")).split(",")]
    if opts.random_lag:
        lags = [opts.random_lag]
    if max(lags) + 2 > opts.stop_timeout - 4:
        p.error("the largest L + 2 s (the stop delay) must leave 4 s in --stop-timeout")

    if not opts.no_build:
        subprocess.run(["bash", os.path.join(ROOT, "docker", "build-app-images.sh")], check=True,
                       stdin=subprocess.DEVNULL)
    network = f"grace-init-zd-{TAG}"
    if docker("network", "ls", "-q", "--filter", f"name=^{network}$") == "":
        docker("network", "create", network)

    runs = []
    prefix = f"grace-init-zd-{os.getpid()}"
    for lag in lags:
        chosen = variants(lag, opts.stop_timeout)
        if opts.quick:
            chosen = [v for v in chosen if v[0] == "nginx as PID 1" or v[0].startswith("grace-init delay")
                      or v[0] == "grace-init adaptive"]
        elif opts.variants:
            wanted = [w.strip() for w in opts.variants.split(",")]
            chosen = [v for v in chosen if any(v[0].startswith(w) for w in wanted)]
        draws = None
        if opts.random_lag:
            rng = random.Random(20261123)
            draws = [round(rng.uniform(1, opts.random_lag), 1) for _ in range(REPLICAS)]
        for i, (name, pid1, pre, post) in enumerate(chosen):
            log(f"L = {draws or lag}: {name}")
            run = run_variant(name, pre, post, lag, opts, f"{prefix}-{i}", network, draws)
            if draws:
                run["lag"] = f"random 1–{lag:g} s ({', '.join(f'{d:g}' for d in draws)})"
            run["pid1"] = pid1
            sent, failed, window, causes = summarize(run)
            log(f"  {failed}/{sent} failed {causes or ''}; rollout took "
                f"{run['rollout_ended'] - run['rollout_began']:.1f} s")
            runs.append(run)

    stamp = f"{time.strftime('%Y-%m-%d', time.gmtime())}, {machine()}"
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump({"measured": stamp, "stop_timeout": opts.stop_timeout, "threads": opts.threads,
                       "runs": runs}, f, indent=1)
    report(runs, stamp, opts, opts.png or (None if opts.quick else os.path.join(HERE, "zero-downtime.png")))

    if opts.quick:
        ok = True
        for run in runs:
            _, failed, _, causes = summarize(run)
            if run["variant"] == "grace-init adaptive":
                # The balancer stops routing to a replica L after its stop began; the hold must end
                # about one quiet period later (sampling and nginx's own QUIT add a little).
                quiet = float(ADAPTIVE["GRACE_INIT_DRAIN_QUIET"].rstrip("s"))
                for s, lag_i in zip(run["stops"], run["lags"]):
                    if s.get("term_after") is None or s["term_after"] > lag_i + quiet + 2.5:
                        log(f"FAIL: adaptive hold of {s['replica']} ended at {s.get('term_after')} s, "
                            f"not within the quiet period of L = {lag_i:g} s")
                        ok = False
            if (run["variant"].startswith("grace-init delay") or run["variant"] == "grace-init adaptive") and failed:
                log(f"FAIL: {run['variant']} lost {failed} requests: {causes}")
                ok = False
            if run["variant"] == "nginx as PID 1" and not failed:
                log("FAIL: the baseline lost no request: the harness does not reproduce the race")
                ok = False
        sys.exit(0 if ok else 1)


def report(runs, stamp, opts, png, header=None):
    print(f"Measured {stamp}.\n")
    print(table(runs, opts, header))
    if png:
        plot(runs, png, f"Rolling update of {REPLICAS} nginx replicas behind nginx: failed requests per "
                        f"init and endpoint lag L ({stamp})")


def report_from(path, png):
    """--report: the table and the picture again from a run's --json file."""
    with open(path) as f:
        saved = json.load(f)
    opts = argparse.Namespace(stop_timeout=saved["stop_timeout"], threads=saved["threads"])
    report(saved["runs"], saved["measured"], opts, png)

if __name__ == "__main__":
    main()
