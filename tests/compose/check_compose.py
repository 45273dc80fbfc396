#!/usr/bin/python3
"""Invariants of compose/docker-compose.yml (ARCHITECTURE section 8), checked on the parsed file.

    python3 tests/compose/check_compose.py [--repo DIR] [--no-self-test] [--no-docker-compose]

1. `docker-compose config -q` accepts docker-compose.yml alone and with docker-compose.ci.yml
   (Debian's docker-compose 1.29, no daemon needed; skipped, and said so, when not installed).
2. The invariants below hold on the real files (defaults of every ${VAR:-default}):
   pinned images; a healthcheck on every long-running service (txpipe's binaries answer their
   own); depends_on ordering (backing services healthy -> consumers healthy -> gateway healthy
   -> nginx, init job completed); networks (backend internal, edge, admin UIs reachable);
   published ports (only nginx's 8080 on all interfaces, the UIs on 127.0.0.1, no data port);
   named volumes for the four data stores; init material mounted from volumes/ and schemas/sql;
   one non-root txpipe image; restart, stop_grace_period and memory limits; the observability
   profile; .env.example listing every variable; the nginx site's placeholders all filled; the
   CI override only swapping images, builds, healthchecks and the init job's command.
3. Self-test: every check must catch a break. Deliberately broken copies of the files (one
   mutation each) are written to a temporary directory and checked; each must fail with the
   expected complaint. Exit status 0 only if the real files pass and every broken copy fails.
"""

import argparse
import copy
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

APP_SERVICES = ["txfraud", "txnotify", "txpersist", "txgateway", "nginx"]
TXPIPE_BINARIES = {"txfraud", "txnotify", "txpersist", "txgateway"}
CONSUMERS = ["txfraud", "txnotify", "txpersist"]
BACKING = ["rabbitmq", "postgres", "redis", "minio", "mailpit"]
# One-shot jobs: restart "no", no healthcheck needed, waited for with
# service_completed_successfully. Every other service is long-running.
INIT_JOBS = {"minio-init"}
REQUIRED_SERVICES = BACKING + sorted(INIT_JOBS) + APP_SERVICES
# Admin UIs: service -> container port, published on 127.0.0.1 only.
ADMIN_UIS = {"rabbitmq": 15672, "minio": 9001, "redis": 8001, "mailpit": 8025}
OBSERVABILITY_UIS = {"prometheus": 9090, "grafana": 3000}
# Ports that must never be published, on any address (data, broker, S3, SMTP, app internals).
DATA_PORTS = {5672, 5432, 6379, 9000, 1025, 8000, 9101, 9102, 9103, 15692, 25672, 4369}
# Data stores: service -> data directory that must be a named volume.
DATA_VOLUMES = {
    "rabbitmq": "/var/lib/rabbitmq",
    "postgres": "/var/lib/postgresql/data",
    "redis": "/data",
    "minio": "/data",
}
# Init material that must be mounted from the repository: service -> (source, target).
INIT_MOUNTS = {
    "rabbitmq": [
        ("../volumes/rabbitmq/rabbitmq.conf", "/etc/rabbitmq/rabbitmq.conf"),
        ("../volumes/rabbitmq/definitions.json", "/etc/rabbitmq/definitions.json"),
        ("../volumes/rabbitmq/enabled_plugins", "/etc/rabbitmq/enabled_plugins"),
    ],
    "postgres": [
        ("../volumes/postgres", "/docker-entrypoint-initdb.d"),
        ("../schemas/sql", None),
    ],
    "redis": [("../volumes/redis/redis.conf", None)],
    "minio-init": [("../volumes/minio", None)],
}
# Backing service -> variables whose URL names it (an app using one must wait for it).
CI_REPLACEABLE = {"rabbitmq", "postgres", "redis", "minio", "mailpit", "nginx"}
CI_ALLOWED_KEYS = {"image", "build", "healthcheck"}
CI_INIT_ALLOWED_KEYS = {"image", "entrypoint", "command"}
SECRET_RE = re.compile(r"PASSWORD|SECRET|_KEYS?$|ROOT_USER")


# ---- interpolation -------------------------------------------------------------------------

VAR_RE = re.compile(r"\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")


def interpolate(value, env):
    """Compose's variable substitution with the given environment ($$ is a literal $)."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def repl(m):
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) or m.group(4)
        op, default = m.group(2), m.group(3)
        cur = env.get(name)
        if op in (":-",) and not cur:
            return default
        if op == "-" and cur is None:
            return default
        if op in (":?", "?") and not cur:
            raise ValueError(f"required variable {name} is not set")
        return cur or ""

    return VAR_RE.sub(repl, value)


def variables(text):
    """Names of the variables a compose file references."""
    return {m.group(1) or m.group(4) for m in VAR_RE.finditer(text) if m.group(0) != "$$"}


# ---- helpers -------------------------------------------------------------------------------


def as_list(v):
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def env_of(spec):
    env = spec.get("environment") or {}
    if isinstance(env, list):
        out = {}
        for item in env:
            k, _, v = str(item).partition("=")
            out[k] = v
        return out
    return {k: "" if v is None else str(v) for k, v in env.items()}


def networks_of(spec):
    n = spec.get("networks")
    if n is None:
        return ["default"]
    return list(n) if isinstance(n, (dict, list)) else []


def depends_of(spec):
    d = spec.get("depends_on") or {}
    if isinstance(d, list):
        return {name: "service_started" for name in d}
    return {name: (c or {}).get("condition", "service_started") for name, c in d.items()}


def parse_port(p):
    """(host_ip, host_port, container_port) of a short or long port entry."""
    if isinstance(p, dict):
        return (str(p.get("host_ip", "")), str(p.get("published", "")), int(str(p["target"])))
    s = str(p).split("/")[0]
    parts = s.rsplit(":", 2)
    if len(parts) == 1:
        return ("", "", int(parts[0]))
    if len(parts) == 2:
        return ("", parts[0], int(parts[1]))
    return (parts[0].strip("[]"), parts[1], int(parts[2]))


def parse_volume(v):
    """(type, source, target) of a short or long volume entry."""
    if isinstance(v, dict):
        return (v.get("type", "volume"), v.get("source"), v.get("target"))
    parts = str(v).split(":")
    if len(parts) == 1:
        return ("volume", None, parts[0])
    src, target = parts[0], parts[1]
    kind = "bind" if src.startswith((".", "/", "~")) else "volume"
    return (kind, src, target)


def image_pinned(image):
    if not image or "@sha256:" in image:
        return bool(image)
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return False
    tag = last.split(":", 1)[1]
    return tag != "latest" and bool(re.search(r"\d", tag))


def healthcheck_ok(spec):
    hc = spec.get("healthcheck")
    if not hc or hc.get("disable"):
        return False
    test = hc.get("test")
    if isinstance(test, str):
        return bool(test.strip())
    return bool(test) and test[0] in ("CMD", "CMD-SHELL") and len(test) > 1


def is_init_job(name, services):
    return name in INIT_JOBS


def uses(spec, services):
    """Services named as host in this service's URL-like environment values."""
    found = set()
    for value in env_of(spec).values():
        for host in re.findall(r"[a-z][a-z0-9+.-]*://(?:[^@/\s]*@)?([A-Za-z0-9_.-]+)", value):
            if host in services:
                found.add(host)
    return found


# ---- the checks ----------------------------------------------------------------------------


class Checker:
    def __init__(self, compose_dir, main_text, ci_text, env_example, template, dockerfile,
                 prometheus_text, dashboards, redis_acl_rules):
        self.compose_dir = compose_dir
        self.redis_acl_rules = redis_acl_rules
        self.main_text = main_text
        self.ci_text = ci_text
        self.env_example = env_example
        self.template = template
        self.dockerfile = dockerfile
        self.prometheus_text = prometheus_text
        self.dashboards = dashboards
        self.errors = []

    def err(self, msg):
        self.errors.append(msg)

    def run(self):
        try:
            raw = yaml.safe_load(self.main_text)
            ci = yaml.safe_load(self.ci_text) if self.ci_text is not None else None
        except yaml.YAMLError as e:
            self.err(f"YAML: {e}")
            return self.errors
        try:
            self.cfg = interpolate(raw, {})
        except ValueError as e:
            self.err(f"interpolation: {e}")
            return self.errors
        self.services = self.cfg.get("services") or {}
        self.networks = self.cfg.get("networks") or {}
        self.volumes = self.cfg.get("volumes") or {}
        for name in REQUIRED_SERVICES:
            if name not in self.services:
                self.err(f"service {name} missing")
        if self.errors:
            return self.errors
        self.check_images()
        self.check_healthchecks()
        self.check_depends()
        self.check_networks()
        self.check_ports()
        self.check_volumes()
        self.check_txpipe()
        self.check_redis_acl()
        self.check_operations()
        self.check_observability()
        self.check_env_example()
        self.check_nginx()
        self.check_dockerfile()
        if ci is not None:
            self.check_ci_override(ci)
        return self.errors

    def check_images(self):
        for name, spec in self.services.items():
            image = spec.get("image")
            if not image_pinned(image):
                self.err(f"{name}: image {image!r} is not pinned to a version (no tag, or latest)")

    def check_healthchecks(self):
        for name, spec in self.services.items():
            if is_init_job(name, self.services):
                if str(spec.get("restart")) != "no":
                    self.err(f"{name}: an init job must have restart: \"no\"")
                if spec.get("ports"):
                    self.err(f"{name}: an init job publishes nothing")
                if not any(depends_of(o).get(name) == "service_completed_successfully"
                           for o in self.services.values()):
                    self.err(f"{name}: init job nobody waits for "
                             "(condition: service_completed_successfully)")
            elif not healthcheck_ok(spec):
                self.err(f"{name}: long-running service without a healthcheck")

    def check_depends(self):
        svcs = self.services
        for name, spec in svcs.items():
            for dep, cond in depends_of(spec).items():
                if dep not in svcs:
                    self.err(f"{name}: depends_on unknown service {dep}")
                    continue
                if is_init_job(dep, svcs):
                    if cond != "service_completed_successfully":
                        self.err(f"{name}: init job {dep} must be "
                                 "condition: service_completed_successfully")
                elif cond != "service_healthy":
                    self.err(f"{name}: depends_on {dep} with {cond}, not service_healthy")
            # Every service it talks to (by URL) must be healthy before it starts.
            for dep in uses(spec, svcs):
                if depends_of(spec).get(dep) != "service_healthy":
                    self.err(f"{name}: uses {dep} (environment) but does not wait for it "
                             "healthy")
        gw = depends_of(svcs["txgateway"])
        for c in CONSUMERS:
            if gw.get(c) != "service_healthy":
                self.err(f"txgateway: must start after {c} is healthy (consumers first)")
        for b in ["rabbitmq", "redis", "postgres", "minio"]:
            if gw.get(b) != "service_healthy":
                self.err(f"txgateway: must start after {b} is healthy")
        if gw.get("minio-init") != "service_completed_successfully":
            self.err("txgateway: must start after minio-init completed successfully")
        if depends_of(svcs["nginx"]).get("txgateway") != "service_healthy":
            self.err("nginx: must start after txgateway is healthy")
        for c in CONSUMERS:
            deps = depends_of(svcs[c])
            if deps.get("rabbitmq") != "service_healthy":
                self.err(f"{c}: must start after rabbitmq is healthy")
            if "txgateway" in deps or "nginx" in deps:
                self.err(f"{c}: a consumer must not wait for the gateway or nginx")
        for b in BACKING + ["minio-init"]:
            if set(depends_of(svcs[b])) & set(APP_SERVICES):
                self.err(f"{b}: a backing service must not depend on an application service")
        # No cycle.
        state = {}

        def visit(n, path):
            if state.get(n) == 1:
                self.err("depends_on cycle: " + " -> ".join(path + [n]))
                return
            if state.get(n) == 2:
                return
            state[n] = 1
            for d in depends_of(svcs.get(n, {})):
                if d in svcs:
                    visit(d, path + [n])
            state[n] = 2

        for n in svcs:
            visit(n, [])

    def internal(self, net):
        spec = self.networks.get(net) or {}
        return bool(spec.get("internal"))

    def check_networks(self):
        for net in ("edge", "backend"):
            if net not in self.networks:
                self.err(f"network {net} missing")
        if not self.internal("backend"):
            self.err("network backend must be internal: true")
        if self.internal("edge"):
            self.err("network edge must not be internal (nginx publishes 8080 on it)")
        svcs = self.services
        nets = {n: networks_of(s) for n, s in svcs.items()}
        for n, lst in nets.items():
            for net in lst:
                if net != "default" and net not in self.networks:
                    self.err(f"{n}: network {net} is not declared")
        if set(nets["nginx"]) != {"edge"}:
            self.err(f"nginx: must be on edge only, is on {nets['nginx']}")
        if not {"edge", "backend"} <= set(nets["txgateway"]):
            self.err("txgateway: must be on edge and backend")
        for n in CONSUMERS + ["postgres", "minio-init"]:
            if any(not self.internal(net) for net in nets[n]):
                self.err(f"{n}: must be on internal networks only (no route out), is on "
                         f"{nets[n]}")
        for n in BACKING:
            if "backend" not in nets[n]:
                self.err(f"{n}: must be on backend")
        # A published port only works through a non-internal network.
        for n, spec in svcs.items():
            if spec.get("ports") and all(self.internal(net) for net in nets[n]):
                self.err(f"{n}: publishes ports but is only on internal networks (they would "
                         "silently not be published)")
            outside = [net for net in nets[n] if not self.internal(net)]
            if outside and not spec.get("ports") and n != "txgateway":
                self.err(f"{n}: on non-internal network(s) {outside} without publishing anything")

    def check_ports(self):
        published = {}
        for n, spec in self.services.items():
            for p in as_list(spec.get("ports")):
                try:
                    ip, host, target = parse_port(p)
                except (ValueError, KeyError):
                    self.err(f"{n}: cannot parse port {p!r}")
                    continue
                if not host:
                    self.err(f"{n}: port {p!r} has no fixed host port")
                published.setdefault(n, []).append((ip, target))
                if target in DATA_PORTS:
                    self.err(f"{n}: data/internal port {target} must not be published")
                if n == "nginx" and target == 8080:
                    if ip not in ("", "0.0.0.0"):
                        self.err("nginx: 8080 must be published on all interfaces")
                elif ip != "127.0.0.1":
                    self.err(f"{n}: port {p!r} must be published on 127.0.0.1 only")
        if ("", 8080) not in published.get("nginx", []) and \
                ("0.0.0.0", 8080) not in published.get("nginx", []):
            self.err("nginx: 8080 is not published")
        for n, port in {**ADMIN_UIS, **OBSERVABILITY_UIS}.items():
            if n in self.services and ("127.0.0.1", port) not in published.get(n, []):
                self.err(f"{n}: UI port {port} must be published on 127.0.0.1")

    def check_volumes(self):
        for n, target in DATA_VOLUMES.items():
            found = False
            for v in as_list(self.services[n].get("volumes")):
                kind, src, tgt = parse_volume(v)
                if tgt == target:
                    if kind == "volume" and src and src in self.volumes:
                        found = True
                    else:
                        self.err(f"{n}: {target} must be a declared named volume, is {v!r}")
                        found = True
            if not found:
                self.err(f"{n}: no named volume at {target}")
        for n, mounts in INIT_MOUNTS.items():
            have = [parse_volume(v) for v in as_list(self.services[n].get("volumes"))]
            for src, tgt in mounts:
                if not any(k == "bind" and s == src and (tgt is None or t == tgt)
                           for k, s, t in have):
                    self.err(f"{n}: must mount {src}" + (f" at {tgt}" if tgt else ""))
        for n, spec in self.services.items():
            for v in as_list(spec.get("volumes")):
                kind, src, _ = parse_volume(v)
                if kind == "bind":
                    path = os.path.normpath(os.path.join(self.compose_dir, src))
                    if not os.path.exists(path):
                        self.err(f"{n}: bind source {src} does not exist ({path}); Docker "
                                 "would create an empty directory there")

    def check_txpipe(self):
        images = set()
        for n in TXPIPE_BINARIES:
            spec = self.services[n]
            images.add(spec.get("image"))
            build = spec.get("build") or {}
            if not isinstance(build, dict) or build.get("dockerfile") != "compose/Dockerfile" \
                    or build.get("context") != "..":
                self.err(f"{n}: must be built from compose/Dockerfile (context ..)")
            hc = (spec.get("healthcheck") or {}).get("test")
            if hc != ["CMD", f"/usr/local/bin/{n}", "healthcheck"]:
                self.err(f"{n}: healthcheck must be [CMD, /usr/local/bin/{n}, healthcheck], "
                         f"is {hc}")
            cmd = as_list(spec.get("command"))
            if not cmd or cmd[0] != f"/usr/local/bin/{n}":
                self.err(f"{n}: command must run /usr/local/bin/{n}")
            if str(spec.get("user", "")) in ("0", "root") or str(spec.get("user", "")).startswith("0:"):
                self.err(f"{n}: must not run as root")
        if len(images) != 1:
            self.err(f"txpipe services must share one image, have {sorted(images)}")

    def check_redis_acl(self):
        """Redis: the default user has a password, each service has its own ACL user with the
        rules of volumes/redis/users.acl.rules, and each binary connects as that user."""
        want = {}
        for line in (self.redis_acl_rules or "").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                name, rules = line.split(None, 1)
                want[name] = rules.split()
        if not want:
            self.err("volumes/redis/users.acl.rules missing or empty")
            return
        args = str(env_of(self.services["redis"]).get("REDIS_ARGS", "")).split()
        if "--requirepass" not in args:
            self.err("redis: REDIS_ARGS must set --requirepass (the default user's password)")
        have = {}
        for i, a in enumerate(args):
            if a == "--user" and i + 1 < len(args):
                rest = []
                for b in args[i + 2:]:
                    if b.startswith("--"):
                        break
                    rest.append(b)
                have[args[i + 1]] = rest
        for name, rules in want.items():
            got = have.get(name)
            if got is None:
                self.err(f"redis: no ACL user {name} in REDIS_ARGS")
                continue
            if not got or got[0] != "on" or len(got) < 2 or not got[1].startswith(">"):
                self.err(f"redis: ACL user {name} must be 'on' with a '>password' first")
                continue
            if got[2:] != rules:
                self.err(f"redis: ACL user {name}'s rules differ from volumes/redis/users.acl.rules: "
                         f"{' '.join(got[2:])!r} vs {' '.join(rules)!r}")
        for n in TXPIPE_BINARIES:
            url = str(env_of(self.services[n]).get("TX_REDIS_URL", ""))
            if not url:
                continue
            m = re.match(r"redis://([^:@/]*):", url)
            if m is None or m.group(1) != n:
                self.err(f"{n}: TX_REDIS_URL must log in as the Redis ACL user {n}, is {url!r}")

    def check_operations(self):
        for n, spec in self.services.items():
            if is_init_job(n, self.services):
                continue
            if str(spec.get("restart", "no")) in ("no", "None", ""):
                self.err(f"{n}: no restart policy")
            if not spec.get("stop_grace_period"):
                self.err(f"{n}: no stop_grace_period (in-flight work must drain)")
            limits = ((spec.get("deploy") or {}).get("resources") or {}).get("limits") or {}
            if not (spec.get("mem_limit") or limits.get("memory")):
                self.err(f"{n}: no memory limit")
            if spec.get("privileged") or spec.get("network_mode") == "host":
                self.err(f"{n}: privileged or host network")

    def check_observability(self):
        for n in OBSERVABILITY_UIS:
            spec = self.services.get(n)
            if spec is None:
                self.err(f"service {n} missing (observability profile)")
            elif "observability" not in as_list(spec.get("profiles")):
                self.err(f"{n}: must be in profile observability")
        for n, spec in self.services.items():
            if n not in OBSERVABILITY_UIS and spec.get("profiles"):
                self.err(f"{n}: only Prometheus and Grafana are in a profile")
        if self.prometheus_text is None:
            self.err("observability/prometheus.yml missing")
            return
        prom = yaml.safe_load(self.prometheus_text) or {}
        targets = set()
        for job in prom.get("scrape_configs") or []:
            for sc in job.get("static_configs") or []:
                targets.update(sc.get("targets") or [])
        for want in ["txgateway:8000", "txfraud:9101", "txnotify:9102", "txpersist:9103",
                     "rabbitmq:15692"]:
            if want not in targets:
                self.err(f"prometheus.yml: does not scrape {want}")
        exprs = " ".join(self.dashboards)
        for metric in ["txgateway_uploads_total", "_acked_total", "rabbitmq_detailed_queue_messages",
                       "_bucket", "dlq", "txgateway_requests_total"]:
            if metric not in exprs:
                self.err(f"grafana dashboard: no panel uses {metric}")

    def check_env_example(self):
        if self.env_example is None:
            self.err("compose/.env.example missing")
            return
        listed = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", self.env_example, re.M))
        for name in sorted(variables(self.main_text)):
            if name not in listed:
                self.err(f".env.example: {name} (used by docker-compose.yml) is not listed")
        for name in sorted(variables(self.main_text)):
            if SECRET_RE.search(name) and not re.search(rf"^{name}=", self.env_example, re.M):
                self.err(f".env.example: secret {name} must be listed uncommented")

    def check_nginx(self):
        cmd = " ".join(as_list(self.services["nginx"].get("command")))
        for ph in sorted(set(re.findall(r"@[A-Z_]+@", self.template or ""))):
            if ph not in cmd:
                self.err(f"nginx: the command does not fill placeholder {ph} of the template")
        if "exec nginx" not in cmd:
            self.err("nginx: the command must exec nginx (PID 1 gets the stop signal)")

    def check_dockerfile(self):
        froms = re.findall(r"^FROM\s+(\S+)", self.dockerfile or "", re.M)
        if len(froms) < 2:
            self.err("compose/Dockerfile: must be multi-stage (build, then runtime)")
        for f in froms:
            if not image_pinned(f) or not re.match(r"debian:(bookworm-\d{8}|12\.\d+)", f):
                self.err(f"compose/Dockerfile: FROM {f} is not a pinned Debian 12 image")
        if froms and not froms[-1].endswith("-slim"):
            self.err("compose/Dockerfile: the runtime stage must use the slim variant")
        users = re.findall(r"^USER\s+(\S+)", self.dockerfile or "", re.M)
        if not users or users[-1].split(":")[0] in ("0", "root"):
            self.err("compose/Dockerfile: the runtime image must run as a non-root USER")

    def check_ci_override(self, ci):
        if set(ci) - {"services"}:
            self.err(f"docker-compose.ci.yml: only services may be overridden, has {sorted(ci)}")
        for n, spec in (ci.get("services") or {}).items():
            if n == "minio-init":
                allowed = CI_INIT_ALLOWED_KEYS
            elif n in CI_REPLACEABLE:
                allowed = CI_ALLOWED_KEYS
            else:
                self.err(f"docker-compose.ci.yml: must not touch service {n}")
                continue
            extra = set(spec or {}) - allowed
            if extra:
                self.err(f"docker-compose.ci.yml: {n}: may only change {sorted(allowed)}, "
                         f"changes {sorted(extra)}")
            image = interpolate((spec or {}).get("image"), {})
            if "image" not in (spec or {}):
                self.err(f"docker-compose.ci.yml: {n}: must replace the image")
            elif not image_pinned(image):
                self.err(f"docker-compose.ci.yml: {n}: image {image!r} not pinned")
            if "healthcheck" in (spec or {}) and n in TXPIPE_BINARIES:
                self.err(f"docker-compose.ci.yml: {n}: txpipe's healthchecks stay as they are")


# ---- driver --------------------------------------------------------------------------------


def read(path):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        return None


def load_inputs(repo):
    compose_dir = os.path.join(repo, "compose")
    dash_dir = os.path.join(repo, "observability", "grafana", "dashboards")
    dashboards = []
    if os.path.isdir(dash_dir):
        for f in sorted(os.listdir(dash_dir)):
            if f.endswith(".json"):
                dashboards.append(read(os.path.join(dash_dir, f)))
    return {
        "compose_dir": compose_dir,
        "main_text": read(os.path.join(compose_dir, "docker-compose.yml")),
        "ci_text": read(os.path.join(compose_dir, "docker-compose.ci.yml")),
        "env_example": read(os.path.join(compose_dir, ".env.example")),
        "template": read(os.path.join(repo, "nginx", "txpipe-site.conf.template")),
        "dockerfile": read(os.path.join(compose_dir, "Dockerfile")),
        "prometheus_text": read(os.path.join(repo, "observability", "prometheus.yml")),
        "dashboards": dashboards,
        "redis_acl_rules": read(os.path.join(repo, "volumes", "redis", "users.acl.rules")),
    }


def check(inputs):
    if inputs["main_text"] is None:
        return ["compose/docker-compose.yml missing"]
    return Checker(**inputs).run()


def docker_compose_config(repo, files, workdir=None):
    """Runs `docker-compose config -q` on the files; None when docker-compose is absent."""
    exe = shutil.which("docker-compose")
    if exe is None:
        return None
    args = [exe, "--project-directory", os.path.join(repo, "compose")]
    for f in files:
        args += ["-f", f]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TX_")}
    env["DOCKER_HOST"] = "unix:///nonexistent.sock"  # config never needs a daemon
    p = subprocess.run(args + ["config", "-q"], capture_output=True, text=True, env=env,
                       cwd=workdir or repo, timeout=120)
    return p.returncode, (p.stdout + p.stderr).strip()


# Each mutation: (name, the complaint expected, function(inputs) editing a deep copy).
def mut_yaml(fn, key="main_text"):
    def apply(inputs):
        data = yaml.safe_load(inputs[key])
        fn(data)
        inputs[key] = yaml.safe_dump(data, sort_keys=False)
    return apply


def mut_text(old, new, key="main_text"):
    def apply(inputs):
        if old not in inputs[key]:
            raise AssertionError(f"mutation anchor {old!r} not found in {key}")
        inputs[key] = inputs[key].replace(old, new, 1)
    return apply


def svc(d, name):
    return d["services"][name]


MUTATIONS = [
    ("image tag latest", "rabbitmq: image 'rabbitmq:latest' is not pinned",
     mut_yaml(lambda d: svc(d, "rabbitmq").update(image="rabbitmq:latest"))),
    ("image without tag", "postgres: image 'postgres' is not pinned",
     mut_yaml(lambda d: svc(d, "postgres").update(image="postgres"))),
    ("gateway on Redis as the default user", "txgateway: TX_REDIS_URL must log in as the Redis ACL "
     "user txgateway",
     mut_yaml(lambda d: svc(d, "txgateway")["environment"].update(
         TX_REDIS_URL="redis://:secret@redis:6379/0"))),
    ("Redis ACL rules drift", "redis: ACL user txnotify's rules differ",
     mut_yaml(lambda d: svc(d, "redis")["environment"].update(
         REDIS_ARGS=svc(d, "redis")["environment"]["REDIS_ARGS"].replace("~tx:notify:*", "~*")))),
    ("redis without healthcheck", "redis: long-running service without a healthcheck",
     mut_yaml(lambda d: svc(d, "redis").pop("healthcheck"))),
    ("healthcheck disabled", "mailpit: long-running service without a healthcheck",
     mut_yaml(lambda d: svc(d, "mailpit").update(healthcheck={"disable": True}))),
    ("gateway not after txnotify", "txgateway: must start after txnotify is healthy",
     mut_yaml(lambda d: svc(d, "txgateway")["depends_on"].pop("txnotify"))),
    ("nginx after gateway merely started", "nginx: depends_on txgateway with service_started",
     mut_yaml(lambda d: svc(d, "nginx")["depends_on"]["txgateway"].update(
         condition="service_started"))),
    ("init job waited for as healthy", "init job minio-init must be condition: "
     "service_completed_successfully",
     mut_yaml(lambda d: svc(d, "txgateway")["depends_on"]["minio-init"].update(
         condition="service_healthy"))),
    ("persist not waiting for postgres", "txpersist: uses postgres (environment) but does not "
     "wait for it healthy",
     mut_yaml(lambda d: svc(d, "txpersist")["depends_on"].pop("postgres"))),
    ("consumer waits for the gateway", "txfraud: a consumer must not wait for the gateway",
     mut_yaml(lambda d: svc(d, "txfraud")["depends_on"].update(
         txgateway={"condition": "service_healthy"}))),
    ("backend not internal", "network backend must be internal: true",
     mut_yaml(lambda d: d["networks"].update(backend={}))),
    ("UI service only on the internal network", "rabbitmq: publishes ports but is only on "
     "internal networks",
     mut_yaml(lambda d: svc(d, "rabbitmq").update(networks=["backend"]))),
    ("consumer with a route out", "txpersist: must be on internal networks only",
     mut_yaml(lambda d: svc(d, "txpersist").update(networks=["backend", "edge"]))),
    ("nginx on backend", "nginx: must be on edge only",
     mut_yaml(lambda d: svc(d, "nginx").update(networks=["edge", "backend"]))),
    ("UI on all interfaces", "rabbitmq: port '15672:15672' must be published on 127.0.0.1",
     mut_yaml(lambda d: svc(d, "rabbitmq").update(ports=["15672:15672"]))),
    ("database port published", "postgres: data/internal port 5432 must not be published",
     mut_yaml(lambda d: svc(d, "postgres").update(ports=["127.0.0.1:5432:5432"]))),
    ("gateway published", "txgateway: data/internal port 8000 must not be published",
     mut_yaml(lambda d: svc(d, "txgateway").update(ports=["8000:8000"]))),
    ("mail UI not published", "mailpit: UI port 8025 must be published on 127.0.0.1",
     mut_yaml(lambda d: svc(d, "mailpit").pop("ports"))),
    ("postgres data in a bind mount", "postgres: /var/lib/postgresql/data must be a declared "
     "named volume",
     mut_yaml(lambda d: svc(d, "postgres")["volumes"].__setitem__(
         -1, "./pgdata:/var/lib/postgresql/data"))),
    ("redis data volume dropped", "redis: no named volume at /data",
     mut_yaml(lambda d: svc(d, "redis").update(volumes=["../volumes/redis/redis.conf:/redis-stack.conf:ro"]))),
    ("definitions not mounted", "rabbitmq: must mount ../volumes/rabbitmq/definitions.json",
     mut_yaml(lambda d: svc(d, "rabbitmq")["volumes"].pop(1))),
    ("bind source missing", "bind source ../volumes/postgres-typo does not exist",
     mut_yaml(lambda d: svc(d, "postgres")["volumes"].__setitem__(
         0, "../volumes/postgres-typo:/docker-entrypoint-initdb.d:ro"))),
    ("gateway healthcheck by curl", "txgateway: healthcheck must be [CMD, "
     "/usr/local/bin/txgateway, healthcheck]",
     mut_yaml(lambda d: svc(d, "txgateway")["healthcheck"].update(
         test=["CMD", "curl", "-f", "http://127.0.0.1:8000/healthz"]))),
    ("second txpipe image", "txpipe services must share one image",
     mut_yaml(lambda d: svc(d, "txfraud").update(image="txpipe-fraud:0.1.0"))),
    ("no stop_grace_period", "txpersist: no stop_grace_period",
     mut_yaml(lambda d: svc(d, "txpersist").pop("stop_grace_period"))),
    ("no restart policy", "minio: no restart policy",
     mut_yaml(lambda d: svc(d, "minio").pop("restart"))),
    ("init job restarting", "minio-init: an init job must have restart: \"no\"",
     mut_yaml(lambda d: svc(d, "minio-init").update(restart="on-failure"))),
    ("no memory limit", "nginx: no memory limit",
     mut_yaml(lambda d: svc(d, "nginx").pop("mem_limit"))),
    ("grafana outside the profile", "grafana: must be in profile observability",
     mut_yaml(lambda d: svc(d, "grafana").pop("profiles"))),
    ("secret missing from .env.example", ".env.example: TX_REDIS_PASSWORD (used by "
     "docker-compose.yml) is not listed",
     mut_text("TX_REDIS_PASSWORD=", "TX_REDIS_PASSW0RD=", key="env_example")),
    ("template placeholder not filled", "nginx: the command does not fill placeholder "
     "@MAX_BODY@",
     mut_text("s|@MAX_BODY@|", "s|@MAX_BODYX@|")),
    ("Dockerfile runs as root", "compose/Dockerfile: the runtime image must run as a non-root",
     mut_text("USER 10001:10001", "USER root", key="dockerfile")),
    ("Dockerfile on a floating base", "compose/Dockerfile: FROM debian:bookworm is not a "
     "pinned Debian 12 image",
     mut_text("FROM debian:12.11 AS build", "FROM debian:bookworm AS build", key="dockerfile")),
    ("prometheus misses a consumer", "prometheus.yml: does not scrape txpersist:9103",
     mut_text("txpersist:9103", "txpersist:9999", key="prometheus_text")),
    ("CI override changes the gateway", "docker-compose.ci.yml: must not touch service "
     "txgateway",
     mut_yaml(lambda d: d["services"].update(txgateway={"environment": {"TX_AUTH": "none"}}),
              key="ci_text")),
    ("CI override changes ports", "docker-compose.ci.yml: rabbitmq: may only change",
     mut_yaml(lambda d: d["services"]["rabbitmq"].update(ports=["5672:5672"]), key="ci_text")),
]

# Broken copies that docker-compose itself must reject (checked when it is installed).
COMPOSE_REJECTS = [
    ("unknown condition", "condition: service_healthy", "condition: service_happy"),
    ("dependency on an undefined service", "      txnotify:\n        condition: service_healthy\n",
     "      txnotifyy:\n        condition: service_healthy\n"),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repo", default=os.path.normpath(
        os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")))
    ap.add_argument("--no-self-test", action="store_true")
    ap.add_argument("--no-docker-compose", action="store_true")
    args = ap.parse_args()
    repo = args.repo
    passed = failed = 0

    def result(ok, what, detail=""):
        nonlocal passed, failed
        if ok:
            passed += 1
            print(f"ok - {what}")
        else:
            failed += 1
            print(f"not ok - {what}")
            for line in detail.splitlines():
                print(f"  # {line}")

    inputs = load_inputs(repo)
    main_file = os.path.join(repo, "compose", "docker-compose.yml")
    ci_file = os.path.join(repo, "compose", "docker-compose.ci.yml")

    if args.no_docker_compose:
        print("# SKIP docker-compose config -q (--no-docker-compose)")
    elif shutil.which("docker-compose") is None:
        print("# SKIP docker-compose config -q: docker-compose is not installed "
              "(ci/compose-test installs Debian's)")
    else:
        rc, out = docker_compose_config(repo, [main_file])
        result(rc == 0, "docker-compose config -q: docker-compose.yml", out)
        rc, out = docker_compose_config(repo, [main_file, ci_file])
        result(rc == 0, "docker-compose config -q: docker-compose.yml + docker-compose.ci.yml",
               out)

    errors = check(inputs)
    result(not errors, "invariants hold on compose/docker-compose.yml (+ CI override, "
           ".env.example, Dockerfile, nginx template, observability)", "\n".join(errors))

    if not args.no_self_test:
        for name, expected, mutate in MUTATIONS:
            broken = copy.deepcopy(inputs)
            try:
                mutate(broken)
            except (AssertionError, KeyError, IndexError, TypeError) as e:
                result(False, f"self-test: broken copy '{name}' could not be made: {e}")
                continue
            with tempfile.TemporaryDirectory(prefix="check_compose.") as tmp:
                # The broken file really is a file: written, read back, checked.
                path = os.path.join(tmp, "docker-compose.yml")
                for key, fname in (("main_text", "docker-compose.yml"),
                                   ("ci_text", "docker-compose.ci.yml"),
                                   ("env_example", ".env.example"),
                                   ("dockerfile", "Dockerfile"),
                                   ("prometheus_text", "prometheus.yml")):
                    with open(os.path.join(tmp, fname), "w", encoding="utf-8") as f:
                        f.write(broken[key] or "")
                reread = dict(broken)
                with open(path, encoding="utf-8") as f:
                    reread["main_text"] = f.read()
                errs = check(reread)
            caught = any(expected in e for e in errs)
            result(caught, f"self-test: broken copy '{name}' is rejected",
                   "expected a complaint containing: " + expected + "\ngot:\n" +
                   "\n".join(errs or ["(no complaint at all)"]))
        if not args.no_docker_compose and shutil.which("docker-compose") is not None:
            for name, old, new in COMPOSE_REJECTS:
                with tempfile.TemporaryDirectory(prefix="check_compose.") as tmp:
                    text = inputs["main_text"]
                    if old not in text:
                        result(False, f"self-test: docker-compose broken copy '{name}': anchor "
                               "not found")
                        continue
                    path = os.path.join(tmp, "docker-compose.yml")
                    with open(path, "w", encoding="utf-8") as f:
                        f.write(text.replace(old, new, 1))
                    rc, out = docker_compose_config(repo, [path])
                    result(rc != 0, f"self-test: docker-compose config rejects '{name}'",
                           "docker-compose accepted the broken file")

    print(f"# {passed} passed, {failed} failed")
    print(f"1..{passed + failed}")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
