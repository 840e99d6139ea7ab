"""The policies the benchmark loads (docs/policy.md), as dicts."""
import json, os, re

SECRET = "bench-secret"
AUTH = {"header": "x-health", "secrets": [{"value": SECRET}]}
AUTH_HEADER = f"x-health: {SECRET}"


def probes(n_deps=5):
    """Liveness (public) and readiness from cache (secret, TTL 1 min)."""
    return {
        "authorization": AUTH,
        "endpoints": [
            {"name": "live", "path": "/livez", "access": "public"},
            {"name": "ready", "path": "/readyz", "checks": [f"dep{i}" for i in range(n_deps)], "ttl": "1m"},
        ],
        "checks": [{"name": f"dep{i}", "cluster": f"dep{i}", "path": "/health"} for i in range(n_deps)],
    }


def scale(endpoints, checks_each=10, clusters=10):
    """`endpoints` endpoints of `checks_each` http checks each, spread over
    `clusters` clusters c0..; the last endpoint is `/readyz` (secret, TTL 1
    min), the others `/scale/<j>`. Every check has its own name and path."""
    eps, checks = [], []
    for j in range(endpoints):
        names = [f"e{j}c{i}" for i in range(checks_each)]
        last = j == endpoints - 1
        eps.append({"name": "ready" if last else f"e{j}", "path": "/readyz" if last else f"/scale/{j}",
                    "checks": names, "ttl": "1m"})
        checks += [{"name": n, "cluster": f"c{i % clusters}", "path": f"/health/{j}/{i}"}
                   for i, n in enumerate(names)]
    return {"authorization": AUTH, "endpoints": eps, "checks": checks}


def patient(policy):
    """`policy` for an Envoy under valgrind, 50 times slower: callouts and
    probes may take 30 s, and a result stays fresh for an hour (the same
    work per request from cache)."""
    out = json.loads(json.dumps(policy))
    for e in out["endpoints"]:
        if e.get("checks"):
            e.update(deadline="30s", ttl="60m")
    for c in out["checks"]:
        c["timeout"] = "30s"
    return out


def storm(ttl_s=1):
    return {
        "endpoints": [{"name": "ready", "path": "/readyz", "access": "public", "ttl": f"{ttl_s}s",
                       "checks": ["a", "b", "c"]}],
        "checks": [{"name": n, "cluster": n} for n in "abc"],
    }


def fan_out(n=10):
    return {
        "endpoints": [{"name": "ready", "path": "/readyz", "access": "public", "ttl": "0s",
                       "checks": [f"d{i}" for i in range(n)]}],
        "checks": [{"name": f"d{i}", "cluster": f"d{i}", "timeout": "500ms"} for i in range(n)],
    }


def demo(repo):
    """The policy of `just demo` (envoy/demo/envoy.yaml: the block scalar of
    the filter's `configuration.value`) and the VM environment variables it
    needs (its `environment_variables.key_values`)."""
    lines = open(os.path.join(repo, "envoy", "demo", "envoy.yaml")).read().splitlines()

    def block_after(pattern):
        for i, line in enumerate(lines):
            if re.match(pattern, line):
                indent = len(line) - len(line.lstrip())
                out = []
                for l in lines[i + 1:]:
                    if l.strip() and len(l) - len(l.lstrip()) <= indent:
                        break
                    out.append(l)
                return out
        raise ValueError(f"envoy/demo/envoy.yaml: no line matching {pattern!r}")

    policy = json.loads("\n".join(block_after(r"^\s*value: \|\s*$")))
    env = {}
    for l in block_after(r"^\s*key_values:\s*$"):
        if ":" in l and not l.strip().startswith("#"):
            k, v = l.split(":", 1)
            env[k.strip()] = v.strip().strip("\"'")
    return policy, env


def clusters_of(policy):
    """The distinct clusters the policy's checks call, in order."""
    seen = []
    for c in policy["checks"]:
        if c["cluster"] not in seen:
            seen.append(c["cluster"])
    return seen
