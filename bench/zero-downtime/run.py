#!/usr/bin/python3
"""Reproduce a rolling update's race and count the requests it loses, per init.

Two replicas (A, B) of the same HTTP app run as containers on a private Docker network. A load
client sends one request every 10 ms through a small in-process load balancer that stands in for
the Kubernetes Service / kube-proxy / ingress: round-robin over the endpoints it knows. At t0 the
harness starts `docker stop -t 30 A` (what the kubelet does when a pod is deleted) and, because
endpoint removal reaches the load balancers only later, keeps routing to A for L seconds
(--lag, default 3 s), then only to B. Nothing retries, as with kube-proxy's iptables rules.

A request counts as failed on anything but a complete `200` answer: connection refused, reset,
no route, timeout (--request-timeout, default 1 s), short or bad answer.

The app (bench/zero-downtime/image/app.sh) is busybox httpd behind a supervisor that does what
most servers do on SIGTERM: stop serving at once. Variants differ only in what is PID 1:

  sh -c /app.sh       Docker's shell form; busybox sh execs the last command: the app is PID 1
  sh wrapper          sh -c '/app.sh; exit $?': sh is PID 1, the app its child
  docker --init       docker run --init: Docker's docker-init (tini) is PID 1
  tini-static         tini-static copied into the image
  dumb-init           not run when Debian's /usr/bin/dumb-init is dynamic (it cannot run FROM scratch)
  grace-init          grace-init, no stop delay
  grace-init delay    grace-init with GRACE_INIT_STOP_DELAY = L + 2 s

Prints a Markdown table and draws bench/zero-downtime/zero-downtime.png (--png).
Usage: bench/zero-downtime/run.sh [--quick] [--lag 3] [--variants 'sh -c,grace-init'] [--no-build]
(run.sh installs python3-matplotlib and runs this with the system python3).
--quick: short run of "sh -c /app.sh" and "grace-init delay" only; exits non-zero if grace-init
lost any request, or if the baseline lost none (then the harness would not be measuring the race).
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
IMAGE = f"grace-init/bench-app:{os.environ.get('GRACE_INIT_TAG', 'test')}"
NETWORK = "grace-init-zero-downtime"
PORT = 8080


def log(msg):
    print(f"zero-downtime: {msg}", file=sys.stderr, flush=True)


def docker(*args, check=True, capture=True):
    res = subprocess.run(["docker", *args], stdin=subprocess.DEVNULL,
                         capture_output=capture, text=True)
    if check and res.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)} failed: {res.stderr.strip()}")
    return res.stdout.strip() if capture else ""


def is_static(path):
    """True when PATH is an ELF binary without an interpreter (runs in a FROM-scratch image)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    return head.startswith(b"\x7fELF") and b"ld-linux" not in head and b"ld-musl" not in head


def variants(lag, stop_timeout):
    delay = lag + 2
    return [
        ("sh -c /app.sh", "app (sh execs it)", ["--entrypoint", "/bin/sh", IMAGE, "-c", "/app.sh"]),
        ("sh wrapper", "sh", ["--entrypoint", "/bin/sh", IMAGE, "-c", "/app.sh; exit $?"]),
        ("docker --init", "docker-init (tini)", ["--init", "--entrypoint", "/app.sh", IMAGE]),
        ("tini-static", "tini-static", ["--entrypoint", "/tini", IMAGE, "--", "/app.sh"]),
        ("dumb-init", "dumb-init", None),
        ("grace-init", "grace-init", ["--entrypoint", "/grace-init", IMAGE, "/app.sh"]),
        (f"grace-init delay {delay:g}s", "grace-init",
         ["-e", f"GRACE_INIT_STOP_DELAY={delay:g}s", "-e", f"GRACE_INIT_GRACE_PERIOD={stop_timeout}s",
          "--entrypoint", "/grace-init", IMAGE, "/app.sh"]),
    ]


def http_get(ip, timeout):
    """One GET; None on success, else the reason it failed."""
    try:
        with socket.create_connection((ip, PORT), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(b"GET / HTTP/1.0\r\nHost: bench\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
    except socket.timeout:
        return "timeout"
    except ConnectionRefusedError:
        return "refused"
    except ConnectionResetError:
        return "reset"
    except OSError as e:
        return e.strerror or type(e).__name__
    head, _, body = data.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0]
    if b" 200" not in status or b"hello" not in body:
        return f"bad answer {status[:40]!r}"
    return None


def wait_http(ip, timeout=15):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if http_get(ip, 1) is None:
            return
        time.sleep(0.1)
    raise RuntimeError(f"{ip}:{PORT} never answered")


def run_variant(name, run_args, a, opts):
    """Returns a dict with the requests made and what happened to them."""
    for c in (f"{a}-a", f"{a}-b"):
        docker("rm", "-f", c, check=False)
    containers = {}
    try:
        for replica in ("a", "b"):
            cname = f"{a}-{replica}"
            docker("run", "-d", "--name", cname, "--network", NETWORK, *run_args)
            containers[replica] = cname
        ips = {r: docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", c)
               for r, c in containers.items()}
        for ip in ips.values():
            wait_http(ip)

        results = []  # (t_send relative to t0, replica, error or None)
        lock = threading.Lock()
        start = time.monotonic()
        t0 = start + opts.warmup
        end = t0 + opts.lag + opts.after

        def one(replica):
            t = time.monotonic() - t0
            err = http_get(ips[replica], opts.request_timeout)
            with lock:
                results.append((t, replica, err))

        stop = {}

        def stopper():
            stop["start"] = time.monotonic() - t0
            subprocess.run(["docker", "stop", "-t", str(opts.stop_timeout), containers["a"]],
                           stdin=subprocess.DEVNULL, capture_output=True)
            stop["end"] = time.monotonic() - t0

        stop_thread = threading.Thread(target=stopper)
        stop_started = False
        with ThreadPoolExecutor(max_workers=256) as pool:
            n = 0
            while True:
                due = start + n * opts.interval
                if due >= end:
                    break
                now = time.monotonic()
                if due > now:
                    time.sleep(due - now)
                if not stop_started and time.monotonic() >= t0:
                    stop_thread.start()
                    stop_started = True
                # the load balancer's view: A is an endpoint until t0 + L
                endpoints = ("a", "b") if time.monotonic() < t0 + opts.lag else ("b",)
                pool.submit(one, endpoints[n % len(endpoints)])
                n += 1
        stop_thread.join()
        logs = subprocess.run(["docker", "logs", containers["a"]], capture_output=True, text=True)
        exit_code = docker("inspect", "-f", "{{.State.ExitCode}}", containers["a"])
        results.sort()
        return {
            "variant": name,
            "results": results,
            "stop_took": stop["end"] - stop["start"],
            "exit_code": int(exit_code),
            "logs_a": (logs.stdout + logs.stderr).strip().splitlines()[-8:],
        }
    finally:
        for c in containers.values():
            docker("rm", "-f", c, check=False)


def summarize(run):
    res = run["results"]
    failed = [r for r in res if r[2] is not None]
    window = f"{failed[0][0]:+.2f} s .. {failed[-1][0]:+.2f} s" if failed else "-"
    reasons = {}
    for r in failed:
        reasons[r[2]] = reasons.get(r[2], 0) + 1
    return len(res), len(failed), window, reasons


def table(runs, skipped, opts):
    lines = [
        f"L (endpoint-propagation lag) = {opts.lag:g} s, `docker stop -t {opts.stop_timeout}`, "
        f"one request every {opts.interval * 1000:g} ms, timeout {opts.request_timeout:g} s; "
        "times relative to `docker stop`",
        "",
        "| variant | PID 1 | requests sent | failed | failure window | failures by cause | `docker stop` took | exit code |",
        "|---|---|---:|---:|---|---|---:|---:|",
    ]
    for (name, pid1, run) in runs:
        sent, failed, window, reasons = summarize(run)
        why = ", ".join(f"{k} {v}" for k, v in sorted(reasons.items(), key=lambda kv: -kv[1])) or "-"
        lines.append(f"| {name} | {pid1} | {sent} | {failed} | {window} | {why} | "
                     f"{run['stop_took']:.1f} s | {run['exit_code']} |")
    for (name, pid1, why) in skipped:
        lines.append(f"| {name} | {pid1} | - | - | not run: {why} | | | |")
    return "\n".join(lines)


def plot(runs, opts, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(runs), 1, figsize=(10, 1.9 * len(runs) + 0.8), sharex=True, squeeze=False)
    bin_s = 0.1
    for ax, (name, _, run) in zip(axes[:, 0], runs):
        res = run["results"]
        lo = -opts.warmup
        nbins = int((opts.warmup + opts.lag + opts.after) / bin_s) + 1
        ok = [0] * nbins
        bad = [0] * nbins
        for t, _, err in res:
            i = min(max(int((t - lo) / bin_s), 0), nbins - 1)
            (bad if err else ok)[i] += 1
        xs = [lo + i * bin_s for i in range(nbins)]
        ax.bar(xs, ok, width=bin_s, align="edge", color="tab:green", label="ok")
        ax.bar(xs, bad, width=bin_s, align="edge", bottom=ok, color="tab:red", label="failed")
        ax.axvline(0, color="k", lw=1, ls="--")
        ax.axvline(opts.lag, color="tab:blue", lw=1, ls="--")
        sent, failed, _, _ = summarize(run)
        ax.set_title(f"{name}: {failed} of {sent} failed", fontsize=9, loc="left")
        ax.set_ylabel(f"req / {int(bin_s * 1000)} ms", fontsize=8)
        ax.set_ylim(0, 1.3 * bin_s / opts.interval)
    axes[0, 0].legend(loc="upper right", fontsize=8)
    axes[-1, 0].set_xlabel(f"seconds after `docker stop` on replica A (blue: load balancer stops routing to A, L = {opts.lag:g} s)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    log(f"wrote {path}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="short CI run; fail if grace-init lost a request")
    p.add_argument("--lag", type=float, help="endpoint-propagation lag L in seconds (default 3, quick 1)")
    p.add_argument("--stop-timeout", type=int, help="docker stop -t (default 30, quick 10)")
    p.add_argument("--warmup", type=float, help="seconds of load before docker stop (default 2, quick 1)")
    p.add_argument("--after", type=float, help="seconds of load after L (default 3, quick 1.5)")
    p.add_argument("--interval", type=float, default=0.01, help="seconds between requests (default 0.01)")
    p.add_argument("--request-timeout", type=float, default=1.0)
    p.add_argument("--variants", help="comma-separated names (prefix match), default all")
    p.add_argument("--no-build", action="store_true", help="do not run docker/build-images.sh")
    p.add_argument("--png", help="default bench/zero-downtime/zero-downtime.png; with --quick a temporary file")
    p.add_argument("--no-png", action="store_true")
    p.add_argument("--json", help="also write the raw results here")
    opts = p.parse_args()
    q = opts.quick
    opts.lag = opts.lag if opts.lag is not None else (1.0 if q else 3.0)
    opts.stop_timeout = opts.stop_timeout or (10 if q else 30)
    opts.warmup = opts.warmup if opts.warmup is not None else (1.0 if q else 2.0)
    opts.after = opts.after if opts.after is not None else (1.5 if q else 3.0)
    if opts.png is None:
        opts.png = (os.path.join(tempfile.gettempdir(), "zero-downtime-quick.png") if q
                    else os.path.join(HERE, "zero-downtime.png"))
    if opts.lag + 2 > opts.stop_timeout - 2:
        p.error("--lag + 2 s (the stop delay) must fit in --stop-timeout - 2 s (grace-init's kill margin)")

    if not opts.no_build:
        subprocess.run(["bash", os.path.join(ROOT, "docker", "build-images.sh")], check=True, stdin=subprocess.DEVNULL)
    if docker("network", "ls", "-q", "--filter", f"name=^{NETWORK}$") == "":
        docker("network", "create", NETWORK)

    chosen = variants(opts.lag, opts.stop_timeout)
    if q:
        chosen = [v for v in chosen if v[0] == "sh -c /app.sh" or v[0].startswith("grace-init delay")]
    elif opts.variants:
        wanted = [w.strip() for w in opts.variants.split(",")]
        chosen = [v for v in chosen if any(v[0].startswith(w) for w in wanted)]

    runs, skipped = [], []
    prefix = f"grace-init-zd-{os.getpid()}"
    for i, (name, pid1, args) in enumerate(chosen):
        if args is None:
            why = ("/usr/bin/dumb-init is dynamically linked, cannot run FROM scratch"
                   if not is_static("/usr/bin/dumb-init") else "no static dumb-init in the image")
            skipped.append((name, pid1, why))
            continue
        log(f"running: {name}")
        run = run_variant(name, args, f"{prefix}-{i}", opts)
        sent, failed, window, _ = summarize(run)
        log(f"  {name}: {failed}/{sent} failed ({window}); docker stop took {run['stop_took']:.1f} s")
        runs.append((name, pid1, run))

    print(table(runs, skipped, opts))
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump([r for (_, _, r) in runs], f, indent=1)
    if not opts.no_png and runs:
        plot(runs, opts, opts.png)

    if q:
        ok = True
        for (name, _, run) in runs:
            _, failed, _, _ = summarize(run)
            if name.startswith("grace-init delay") and failed:
                log(f"FAIL: {name} lost {failed} requests; app A's last log lines: {run['logs_a']}")
                ok = False
            if name == "sh -c /app.sh" and not failed:
                log("FAIL: the baseline lost no request: the harness does not reproduce the race")
                ok = False
        sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
