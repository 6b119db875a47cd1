"""deploy/: the systemd unit, container image, cloud-init, Prometheus rules, Grafana dashboard
and autoscaler, each checked with the tool that consumes it (systemd-analyze, systemd-sysusers,
apt-cache, promtool, a real Redis) or against the sources they describe (the settings table,
the metric names)."""
import json
import os
import re
import shlex
import shutil
import subprocess
import time

import yaml

from conftest import ROOT, reeld_bin

DEPLOY = os.path.join(ROOT, "deploy")
NEW_METRICS = {"reeld_queue_oldest_age_seconds", "reeld_job_outcomes_total"}


def path(*p):
    return os.path.join(DEPLOY, *p)


def read(*p):
    with open(path(*p)) as f:
        return f.read()


def settings_table():
    """{NAME: default or None} and the aliases, from src/rt/config.c's settings table."""
    src = open(os.path.join(ROOT, "src", "rt", "config.c")).read()
    tbl = src[src.index("static const setting settings[]"):src.index("#define NSETTINGS")]
    rows = re.findall(r'\{\s*"([A-Z0-9_]+)",\s*(NULL|"[A-Z0-9_]+"),\s*(?:NULL|"[^"]*"),\s*K_\w+,'
                      r'\s*OFF\(\w+\),\s*(NULL|"[^"]*"),', tbl)
    assert len(rows) == tbl.count('\n    {"'), "could not read every row of the settings table"
    defaults = {env: (None if d == "NULL" else d.strip('"')) for env, _, d in rows}
    aliases = {a.strip('"') for _, a, _ in rows if a != "NULL"}
    return defaults, aliases


def unit_values(text):
    """[(key, value)] of a unit file's assignments, in order."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")) and "=" in line:
            k, v = line.split("=", 1)
            out.append((k.strip(), v.strip()))
    return out


def runtime_packages():
    """Packages the Dockerfile's last stage installs with apt-get."""
    df = read("container", "Dockerfile")
    last = df[df.rindex("\nFROM "):]
    joined = last.replace("\\\n", " ")
    m = re.search(r"apt-get install ([^&\n]*)", joined)
    assert m, "no apt-get install in the runtime stage"
    return [w for w in m.group(1).split() if not w.startswith("-")]


def known_metrics():
    names = set()
    for d in ("src", "actors", "proto", "cmd"):
        for dirpath, _, files in os.walk(os.path.join(ROOT, d)):
            for f in files:
                if f.endswith((".c", ".h")):
                    names |= set(re.findall(r'"(reeld_[a-z0-9_]+)', open(os.path.join(dirpath, f)).read()))
    return names | NEW_METRICS


def metric_names(expr):
    """reeld_* metric names an expression reads, histogram series mapped to their family."""
    out = set()
    for n in re.findall(r"(?<![a-z0-9_:])reeld_[a-z0-9_]+", expr):
        out.add(re.sub(r"_(bucket|sum|count)$", "", n) if n.endswith(("_bucket", "_sum", "_count"))
                and "seconds" in n else n)
    return out


# ---- systemd ----

def test_systemd_unit_verifies(tmp_path):
    unit = read("systemd", "reeld.service")
    exe = reeld_bin() if os.path.exists(reeld_bin()) else shutil.which("true")
    copy = tmp_path / "reeld.service"
    copy.write_text(unit.replace("/usr/local/bin/reeld", exe))
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", str(copy)],
                       capture_output=True, text=True, timeout=60)
    complaints = [l for l in (r.stdout + r.stderr).splitlines() if "reeld.service" in l]
    assert r.returncode == 0 and not complaints, r.stdout + r.stderr

    # The same check sees a bad key: it is not a check that passes whatever the file says.
    bad = tmp_path / "bad" / "reeld.service"
    bad.parent.mkdir()
    bad.write_text(copy.read_text().replace("[Service]\n", "[Service]\nLimitNOFLIE=1\n"))
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", str(bad)],
                       capture_output=True, text=True, timeout=60)
    assert "LimitNOFLIE" in r.stdout + r.stderr


def test_systemd_unit_settings():
    kv = unit_values(read("systemd", "reeld.service"))
    one = {k: v for k, v in kv}
    defaults, aliases = settings_table()
    assert one["ExecStart"] == "/usr/local/bin/reeld serve"
    assert one["User"] == "reeld" and "video" in one["SupplementaryGroups"].split()
    assert one["EnvironmentFile"] == "-/etc/reeld/reeld.env"
    assert one["ExecReload"] == "/bin/kill -HUP $MAINPID"  # certificate renewal
    assert one["CapabilityBoundingSet"] == one["AmbientCapabilities"] == "CAP_NET_BIND_SERVICE"
    # The drain must finish before systemd's SIGKILL.
    assert one["KillSignal"] == "SIGTERM"
    assert int(one["TimeoutStopSec"]) > int(defaults["REELD_DRAIN_SEC"])
    for k, v in {"LimitNOFILE": "1048576", "LimitMEMLOCK": "infinity", "Restart": "on-failure",
                 "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
                 "NoNewPrivileges": "yes", "StateDirectory": "reeld",
                 "CacheDirectory": "reeld"}.items():
        assert one.get(k) == v, k
    env = dict(v.split("=", 1) for k, v in kv if k == "Environment")
    # reeld's settings, and the one variable of a library it loads that the unit sets (CUDA's
    # compiled-kernel cache): a misspelt name of either fails here.
    assert set(env) <= set(defaults) | {"CUDA_CACHE_PATH"}, set(env) - set(defaults)
    assert env["REELD_DATA_DIR"] == "/var/lib/reeld" and env["CACHE_DIR"] == "/var/cache/reeld"
    assert env["CUDA_CACHE_PATH"].startswith("/var/cache/reeld/")  # writable: CacheDirectory
    allowed = [v.split()[0] for k, v in kv if k == "DeviceAllow"]
    for dev in ("/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia0", "char-nvidia-frontend"):
        assert dev in allowed


def test_sysusers_creates_the_service_user(tmp_path):
    (tmp_path / "etc").mkdir()
    subprocess.run(["systemd-sysusers", f"--root={tmp_path}", path("systemd", "reeld.sysusers")],
                   check=True, capture_output=True, timeout=60)
    users = {l.split(":")[0]: l.split(":") for l in (tmp_path / "etc" / "passwd").read_text().splitlines()}
    groups = {l.split(":")[0]: l.split(":") for l in (tmp_path / "etc" / "group").read_text().splitlines()}
    assert users["reeld"][5] == "/var/lib/reeld" and users["reeld"][6].endswith("nologin")
    assert "reeld" in groups["video"][3].split(",")


def test_env_example_lists_every_setting():
    defaults, aliases = settings_table()
    lines = read("systemd", "reeld.env.example").splitlines()
    named = {}
    for l in lines:
        m = re.match(r"^#?([A-Z][A-Z0-9_]*)=(.*)$", l)
        if m:
            named[m.group(1)] = (l.startswith("#"), m.group(2))
    assert set(named) == set(defaults), (set(named) ^ set(defaults))
    for name, (commented, value) in named.items():
        if commented:  # a commented line shows the built-in default
            assert value == (defaults[name] or ""), name


# ---- container ----

def test_dockerfile_runtime_packages_exist_in_debian():
    pkgs = runtime_packages()
    assert "libavcodec59" in pkgs and "ca-certificates" in pkgs
    for p in pkgs:
        r = subprocess.run(["apt-cache", "show", "--no-all-versions", p], capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 0 and f"Package: {p}" in r.stdout, f"{p} is not a Debian package"


def test_dockerfile_runtime_packages_cover_the_binary():
    """Every shared library reeld links comes from a package the runtime stage installs."""
    pkgs = set(runtime_packages()) | {"libc6"}
    out = subprocess.run(["readelf", "-d", reeld_bin()], capture_output=True, text=True,
                         check=True).stdout
    for soname in re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out):
        if soname.startswith(("libasan.", "libubsan.", "libtsan.")):
            continue  # the suite's sanitizer build links these; the image's release build does not
        r = subprocess.run(["dpkg", "-S", f"*/{soname}"], capture_output=True, text=True)
        owners = {l.split(":")[0] for l in r.stdout.splitlines()}
        assert owners & pkgs, f"{soname} (from {owners or 'no package'}) is not installed by the image"


def test_dockerfile_settings():
    df = read("container", "Dockerfile")
    assert re.search(r"^FROM debian:12 AS build$", df, re.M)
    assert re.search(r"^FROM debian:12-slim$", df, re.M)
    assert "tools/zig build -Doptimize=ReleaseSafe" in df
    assert "NVIDIA_DRIVER_CAPABILITIES=compute,video,utility" in df
    assert "NVIDIA_VISIBLE_DEVICES=all" in df
    assert "REELD_LISTEN=0.0.0.0:8080" in df and re.search(r"^EXPOSE 8080$", df, re.M)
    assert re.search(r"^USER reeld$", df, re.M)
    for src in re.findall(r"^COPY (?!--from)(\S+) ", df, re.M):
        if src != ".":
            assert os.path.exists(os.path.join(ROOT, src)), src


def test_container_healthcheck_against_reeld(reeld_factory):
    r = reeld_factory()
    check = path("container", "healthcheck")
    env = dict(os.environ)
    for listen, ok in ((r.addr, True), (f"0.0.0.0:{r.port}", True),
                       (f"127.0.0.1:{r.port + 1 if r.port < 65535 else 1}", False)):
        env["REELD_LISTEN"] = listen
        rc = subprocess.run([check], env=env, capture_output=True, timeout=30).returncode
        assert (rc == 0) == ok, (listen, rc)


# ---- cloud-init ----

def test_cloud_init():
    text = read("cloud-init", "do-gpu-droplet.yaml")
    assert text.splitlines()[0] == "#cloud-config"
    doc = yaml.safe_load(text)
    known = {"write_files", "runcmd", "packages", "package_update", "package_upgrade", "users",
             "bootcmd", "apt", "final_message", "ssh_authorized_keys", "timezone"}
    assert set(doc) <= known, set(doc) - known
    files = {f["path"]: f for f in doc["write_files"]}
    assert all(set(f) <= {"path", "content", "owner", "permissions", "encoding", "append", "defer"}
               for f in doc["write_files"])
    # Verbatim copies of deploy/systemd: they cannot drift apart.
    assert files["/etc/systemd/system/reeld.service"]["content"] == read("systemd", "reeld.service")
    assert files["/usr/lib/sysusers.d/reeld.conf"]["content"] == read("systemd", "reeld.sysusers")
    assert "REELD_BINARY_URL=" in files["/etc/reeld/install.env"]["content"]
    # Fleet settings are names reeld reads.
    defaults, aliases = settings_table()
    for l in files["/etc/reeld/fleet.env"]["content"].splitlines():
        if l and not l.startswith("#"):
            assert l.split("=", 1)[0] in set(defaults) | aliases, l
    script = files["/usr/local/sbin/reeld-install"]["content"]
    subprocess.run(["bash", "-n"], input=script, text=True, check=True)
    assert doc["runcmd"] == [["/usr/local/sbin/reeld-install"]]
    # The droplet installs what the image carries.
    assert set(runtime_packages()) <= set(doc["packages"])


# ---- Prometheus and Grafana ----

def promtool(*args):
    r = subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=120,
                       cwd=path("prometheus"))
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def test_prometheus_config_and_rules():
    promtool("check", "config", "prometheus.yml")
    out = promtool("check", "rules", "reeld.rules.yml")
    assert re.search(r"SUCCESS: \d+ rules found", out)


def test_prometheus_rule_unit_tests():
    tests = yaml.safe_load(read("prometheus", "reeld.rules.test.yml"))["tests"]
    fired = {t["alertname"] for g in tests for t in g["alert_rule_test"] if t.get("exp_alerts")}
    silent = {t["alertname"] for g in tests for t in g["alert_rule_test"] if not t.get("exp_alerts")}
    need = {"ReeldQueueBacklog", "ReeldHttp5xxHigh", "ReeldEdgeCacheHitRatioLow",
            "ReeldWebhookEventsOld"}
    assert need <= fired and need <= silent
    promtool("test", "rules", "reeld.rules.test.yml")


def test_prometheus_do_discovery_keeps_tag_reeld():
    cfg = yaml.safe_load(read("prometheus", "prometheus.yml"))
    do = next(j for j in cfg["scrape_configs"] if "digitalocean_sd_configs" in j)
    keep = [r for r in do["relabel_configs"] if r.get("action") == "keep"]
    assert keep and re.fullmatch(keep[0]["regex"], ",reeld,reeld-worker,")
    assert not re.fullmatch(keep[0]["regex"], ",reeldx,other,")


def test_rules_use_metrics_reeld_exposes():
    known = known_metrics()
    doc = yaml.safe_load(read("prometheus", "reeld.rules.yml"))
    rules = [r for g in doc["groups"] for r in g["rules"]]
    recorded = {r["record"] for r in rules if "record" in r}
    used = set()
    for r in rules:
        used |= metric_names(r["expr"])
        for name in re.findall(r"reeld:[a-z0-9_:]+", r["expr"]):
            assert name in recorded, name
    assert used and used <= known, used - known
    assert {"reeld_jobs", "reeld_queue_stream_pending", "reeld_http_requests_total",
            "reeld_edge_cache_hits_total", "reeld_process_resident_memory_bytes"} <= used


def test_grafana_dashboard():
    dash = json.loads(read("grafana", "reeld-dashboard.json"))
    assert 36 <= dash["schemaVersion"] <= 41
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["instance"]["type"] == "query"
    assert any(i["name"] == "DS_PROMETHEUS" for i in dash["__inputs"])
    known = known_metrics()
    titles = set()
    ids = set()
    for p in dash["panels"]:
        titles.add(p["title"])
        assert p["id"] not in ids
        ids.add(p["id"])
        assert p["targets"], p["title"]
        for t in p["targets"]:
            names = metric_names(t["expr"])
            assert names, (p["title"], t["expr"])
            assert names <= known, (p["title"], names - known)
            assert "$instance" in t["expr"], p["title"]
            assert t["expr"].count("(") == t["expr"].count(")"), t["expr"]
    for want in ("Queue depth", "Oldest queued job age", "Jobs by state", "Job outcomes",
                 "HTTP requests by code", "HTTP latency p50 / p99", "Resident memory per node",
                 "Edge cache hit ratio", "Edge bytes served", "HLS upload bytes",
                 "Event loop busy"):
        assert want in titles, want


def test_metric_check_catches_unknown_names():
    assert metric_names('rate(reeld_no_such_thing_total[5m])') - known_metrics()
    assert metric_names('reeld_http_request_duration_seconds_bucket') <= known_metrics()


# ---- autoscaler ----

STREAM = "reeld:jobs:transcode"


class FakeDoctl:
    """A stand-in for DigitalOcean's CLI: `compute droplet list` prints the given droplets;
    every other invocation is recorded and succeeds."""

    def __init__(self, tmp_path, droplets):
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        self.calls = tmp_path / "doctl-calls"
        self.calls.write_text("")
        listing = tmp_path / "droplets"
        listing.write_text("".join(f"{i}   {n}\n" for i, n in droplets))
        exe = self.bin / "doctl"
        exe.write_text("#!/bin/sh\n"
                       'if [ "$1 $2 $3" = "compute droplet list" ]; then cat '
                       f"{shlex.quote(str(listing))}; exit 0; fi\n"
                       f'echo "$*" >> {shlex.quote(str(self.calls))}\n')
        exe.chmod(0o755)

    def recorded(self):
        return self.calls.read_text().splitlines()


def autoscale(redis, doctl, tmp_path, *args, **env):
    e = dict(os.environ)
    e["PATH"] = f"{doctl.bin}:{e['PATH']}"
    e.update({"REDIS_URL": redis.url, "STATE_FILE": str(tmp_path / "state.json"),
              "DO_IMAGE": "gpu-h100x1-base", "DO_REGION": "tor1", "DO_SIZE": "gpu-h100x1-80gb"})
    e.update(env)
    r = subprocess.run([path("autoscaler", "reeld-autoscale"), "--once", *args], env=e,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    cmds = [shlex.split(l[2:]) for l in r.stdout.splitlines() if l.startswith("+ ")]
    return cmds, r.stderr


def fresh_stream(redis, n):
    redis.cli("DEL", STREAM)
    ids = [redis.cli("XADD", STREAM, "*", "job", str(i)) for i in range(n)]
    redis.cli("XGROUP", "CREATE", STREAM, "workers", "0")
    return ids


def test_autoscaler_scales_up_to_the_backlog(redis, tmp_path):
    fresh_stream(redis, 20)
    redis.cli("XREADGROUP", "GROUP", "workers", "reeld-worker-1", "COUNT", "4",
              "STREAMS", STREAM, ">")
    doctl = FakeDoctl(tmp_path, [(101, "reeld-worker-1")])
    cmds, err = autoscale(redis, doctl, tmp_path, "--dry-run", JOBS_PER_DROPLET="4",
                          MIN_DROPLETS="1", MAX_DROPLETS="10")
    assert "backlog 16, pending 4" in err
    # (16 + 4) / 4 = 5 droplets wanted, 1 there: 4 created, in one command.
    assert len(cmds) == 1, cmds
    c = cmds[0]
    assert c[:4] == ["doctl", "compute", "droplet", "create"]
    names = c[4:c.index("--tag-names")]
    assert len(names) == 4 and len(set(names)) == 4
    assert "reeld-worker" in c[c.index("--tag-names") + 1].split(",")
    assert c[c.index("--user-data-file") + 1] == path("cloud-init", "do-gpu-droplet.yaml")
    assert c[c.index("--size") + 1] == "gpu-h100x1-80gb" and "--wait" in c
    assert doctl.recorded() == []  # a dry run only lists

    # The ceiling holds.
    cmds, _ = autoscale(redis, doctl, tmp_path, "--dry-run", JOBS_PER_DROPLET="1",
                        MAX_DROPLETS="3")
    assert len(cmds[0][4:cmds[0].index("--tag-names")]) == 2


def test_autoscaler_scales_down_sparing_busy_droplets(redis, tmp_path):
    # Nothing undelivered; the newest droplet's consumer (reeld's default hostname:pid name)
    # holds one entry.
    ids = fresh_stream(redis, 3)
    redis.cli("XREADGROUP", "GROUP", "workers", "reeld-worker-c:4242", "COUNT", "3",
              "STREAMS", STREAM, ">")
    redis.cli("XACK", STREAM, "workers", ids[0], ids[1])
    redis.cli("XREADGROUP", "GROUP", "workers", "reeld-worker-a", "COUNT", "1",
              "STREAMS", STREAM, ">")  # nothing left: a consumer with nothing pending
    doctl = FakeDoctl(tmp_path, [(101, "reeld-worker-a"), (102, "reeld-worker-b"),
                                 (103, "reeld-worker-c")])
    cmds, err = autoscale(redis, doctl, tmp_path, "--dry-run", JOBS_PER_DROPLET="4",
                          MIN_DROPLETS="1")
    assert "backlog 0, pending 1" in err
    assert cmds == [["doctl", "compute", "droplet", "delete", "--force", "102", "101"]]
    assert "keeping reeld-worker-c" in err
    assert doctl.recorded() == []

    # An empty queue: down to MIN, newest first.
    redis.cli("XACK", STREAM, "workers", ids[2])
    cmds, _ = autoscale(redis, doctl, tmp_path, "--dry-run", JOBS_PER_DROPLET="4",
                        MIN_DROPLETS="1")
    assert cmds == [["doctl", "compute", "droplet", "delete", "--force", "103", "102"]]


def test_autoscaler_counts_backlog_when_redis_has_no_lag(redis, tmp_path):
    ids = fresh_stream(redis, 10)
    redis.cli("XREADGROUP", "GROUP", "workers", "n1", "COUNT", "2", "STREAMS", STREAM, ">")
    redis.cli("XDEL", STREAM, ids[5])  # a tombstone ahead of the group: Redis reports lag nil
    doctl = FakeDoctl(tmp_path, [])
    cmds, err = autoscale(redis, doctl, tmp_path, "--dry-run", JOBS_PER_DROPLET="3")
    assert "backlog 7, pending 2" in err
    assert len(cmds[0][4:cmds[0].index("--tag-names")]) == 3


def test_autoscaler_runs_doctl_and_cools_down(redis, tmp_path):
    fresh_stream(redis, 8)
    doctl = FakeDoctl(tmp_path, [])
    cmds, _ = autoscale(redis, doctl, tmp_path, JOBS_PER_DROPLET="4", COOLDOWN_SEC="600")
    assert len(cmds) == 1
    calls = doctl.recorded()
    assert len(calls) == 1 and calls[0].startswith("compute droplet create ")
    state = json.loads((tmp_path / "state.json").read_text())
    assert time.time() - state["last_change"] < 60

    # Within the cooldown the next pass changes nothing.
    cmds, err = autoscale(redis, doctl, tmp_path, JOBS_PER_DROPLET="4", COOLDOWN_SEC="600")
    assert cmds == [] and "cooling down" in err
    assert len(doctl.recorded()) == 1
