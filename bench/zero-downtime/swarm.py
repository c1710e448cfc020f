#!/usr/bin/python3
"""The same rolling update on a real orchestrator: Docker Swarm, per init.

The engine joins a one-node swarm (`docker swarm init --advertise-addr 127.0.0.1`) only if it is in
none, and leaves it again at the end (`docker swarm leave --force`, only then). Per variant, a
service of three replicas of the zero-downtime replica image (bench/zero-downtime/image) runs on an
attachable overlay network with `--endpoint-mode dnsrr` (this kernel has no IPVS for Swarm's
virtual IPs), under the same inits as run.py, and is rolled with `docker service update --force
--update-order start-first --update-parallelism 1 --stop-grace-period 30s`.

The balancer is nginx on the overlay network that resolves the service name through Docker's DNS
(`resolver 127.0.0.11 valid=Vs`, proxy_pass with a variable: re-resolved every V seconds), with
ingress-nginx's retries (`proxy_next_upstream error timeout`, 3 tries). Swarm takes a stopping
task out of its DNS about 1 s before it sends SIGTERM (shared/NOTES.md); nginx keeps the old address
for up to V s: the endpoint lag comes from real components here. The load is run.py's client,
through a port the balancer publishes on 127.0.0.1.

Usage: bench/zero-downtime/run.sh is for run.py; run this with /usr/bin/python3 directly:
  bench/zero-downtime/swarm.py [--dns-valid 10] [--variants 'nginx,grace-init delay'] [--json FILE]
"""

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as zd  # noqa: E402  (the replica variants, the load client, the table)

BALANCER_CONF = """\
worker_processes 1;
error_log stderr notice;
pid /run/nginx.pid;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    resolver 127.0.0.11 valid={valid}s ipv6=off;
    server {{
        listen 80;
        keepalive_timeout 75s;
        keepalive_requests 1000000;
        location / {{
            set $backend "http://{service}:80";
            proxy_pass $backend;
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


def tasks(service, state):
    """Containers of SERVICE in docker ps STATE (running, exited)."""
    out = zd.docker("ps", "-a", "--filter", f"label=com.docker.swarm.service.name={service}",
                    "--filter", f"status={state}", "--format", "{{.ID}} {{.Status}}")
    return [line.split(" ", 1) for line in out.splitlines() if line]


def wait_for(what, check, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.2)
    raise RuntimeError(f"timed out waiting for {what}")


def run_service(name, pre, post, opts, prefix, network):
    service = f"{prefix}-svc"
    confdir = tempfile.mkdtemp(prefix="grace-init-zd-swarm-")
    lb = f"{prefix}-lb"
    start = time.monotonic()

    def t():
        return time.monotonic() - start

    try:
        zd.docker("service", "create", "--detach", "--quiet", "--name", service, "--replicas", "3",
                  "--network", network, "--endpoint-mode", "dnsrr", "--no-resolve-image",
                  "--stop-grace-period", f"{opts.stop_timeout}s", *pre, zd.REPLICA, *post)
        wait_for("3 running tasks", lambda: len(tasks(service, "running")) == 3, 120)
        with open(os.path.join(confdir, "nginx.conf"), "w") as f:
            f.write(BALANCER_CONF.format(valid=opts.dns_valid, service=service))
        zd.docker("run", "-d", "--name", lb, "--network", network, "-p", "127.0.0.1::80",
                  "-v", f"{confdir}:/etc/nginx/zd:ro", "--entrypoint", "nginx", zd.BALANCER,
                  "-c", "/etc/nginx/zd/nginx.conf", "-g", "daemon off;")
        port = zd.docker("port", lb, "80/tcp").splitlines()[0].rsplit(":", 1)[1]
        wait_for("the balancer", lambda: ok("127.0.0.1", int(port)), 60)
        old = {cid for cid, _ in tasks(service, "running")}

        load = zd.Load("127.0.0.1", opts.threads, opts.pause, t, port=int(port))
        start = time.monotonic()
        load.start()
        time.sleep(opts.warmup)
        began = t()
        zd.docker("service", "update", "--detach", "--quiet", "--force", "--no-resolve-image",
                  "--update-order", "start-first", "--update-parallelism", "1", "--update-delay", "0s",
                  "--stop-grace-period", f"{opts.stop_timeout}s", service)

        def done():
            state = zd.docker("service", "inspect", "-f", "{{.UpdateStatus.State}}", service)
            running = {cid for cid, _ in tasks(service, "running")}
            return state == "completed" and not (running & old)

        wait_for("the rolling update", done, 300)
        ended = t()
        time.sleep(opts.after)
        load.stop()
        codes = [status.split("(", 1)[1].split(")", 1)[0] for cid, status in tasks(service, "exited")
                 if cid in old]
        return {"variant": name, "lag": opts.dns_valid, "rollout_began": began, "rollout_ended": ended,
                "stops": [{"exit_code": c} for c in codes], "reloads": [], "retries": load.retries,
                "results": sorted(load.results)}
    finally:
        zd.docker("rm", "-f", lb, check=False)
        zd.docker("service", "rm", service, check=False)
        for f in os.listdir(confdir):
            os.unlink(os.path.join(confdir, f))
        os.rmdir(confdir)


def ok(host, port):
    import http.client
    try:
        c = http.client.HTTPConnection(host, port, timeout=2)
        c.request("GET", "/fast")
        r = c.getresponse()
        r.read()
        c.close()
        return r.status == 200
    except OSError:
        return False


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dns-valid", type=int, default=10, help="nginx resolver valid= seconds (the lag), default 10")
    p.add_argument("--stop-timeout", type=int, default=30)
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--after", type=float, default=2.0)
    p.add_argument("--threads", type=int, default=8)
    p.add_argument("--pause", type=float, default=0.02)
    p.add_argument("--variants", help="comma-separated names (prefix match), default all")
    p.add_argument("--json", help="also write the raw results here")
    opts = p.parse_args()

    state = zd.docker("info", "-f", "{{.Swarm.LocalNodeState}}")
    had_gwbridge = zd.docker("network", "ls", "-q", "--filter", "name=^docker_gwbridge$") != ""
    joined = False
    if state == "inactive":
        zd.log("docker swarm init --advertise-addr 127.0.0.1 (left again at the end)")
        zd.docker("swarm", "init", "--advertise-addr", "127.0.0.1")
        joined = True
    elif state != "active":
        sys.exit(f"swarm state {state!r}: neither in a swarm nor free to make one")
    network = f"grace-init-zd-swarm-{zd.TAG}"
    runs = []
    try:
        if zd.docker("network", "ls", "-q", "--filter", f"name=^{network}$") == "":
            zd.docker("network", "create", "--driver", "overlay", "--attachable", network)
        chosen = zd.variants(opts.dns_valid, opts.stop_timeout)
        if opts.variants:
            wanted = [w.strip() for w in opts.variants.split(",")]
            chosen = [v for v in chosen if any(v[0].startswith(w) for w in wanted)]
        for i, (name, pid1, pre, post) in enumerate(chosen):
            zd.log(f"swarm, resolver valid={opts.dns_valid}s: {name}")
            run = run_service(name, pre, post, opts, f"gizd{os.getpid()}-{i}", network)
            run["pid1"] = pid1
            sent, failed, _, causes = zd.summarize(run)
            zd.log(f"  {failed}/{sent} failed {causes or ''}; rollout took "
                   f"{run['rollout_ended'] - run['rollout_began']:.1f} s")
            runs.append(run)
    finally:
        zd.docker("network", "rm", network, check=False)
        if joined:
            zd.docker("swarm", "leave", "--force", check=False)
            if not had_gwbridge:  # swarm init made it; leave does not remove it
                zd.docker("network", "rm", "docker_gwbridge", check=False)
            zd.log("left the swarm")
    stamp = f"{time.strftime('%Y-%m-%d', time.gmtime())}, {zd.machine()}"
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump({"measured": stamp, "stop_timeout": opts.stop_timeout, "threads": opts.threads,
                       "runs": runs}, f, indent=1)
    zd.report(runs, stamp, opts, None, header=(
        "Docker Swarm rolling update (`docker service update --force --update-order start-first "
        "--update-parallelism 1`) of 3 nginx replicas (`--endpoint-mode dnsrr`, "
        f"`--stop-grace-period {opts.stop_timeout}s`) behind nginx resolving the service through "
        f"Docker's DNS (`resolver 127.0.0.11 valid={opts.dns_valid}s`: the L column), "
        f"proxy_next_upstream error timeout; {opts.threads} keep-alive clients: GET /fast, POST /fast, "
        "GET /slow (1.5 s). Times from `docker service update`."))


if __name__ == "__main__":
    main()
