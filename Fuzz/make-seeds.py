#!/usr/bin/env python3
"""Writes the seed corpora in Fuzz/Corpus/<target>/ (issue 18).

Seeds follow the test fixtures (Tests/GuildNetKubeTests/KubeconfigTests.swift, the control-protocol
tests) and the traffic of the simulators (KubeSim watch lines and Status bodies, RethinkSim's
handshake and response frames). Regenerate with `python3 Fuzz/make-seeds.py`; files the fuzzers add
to the corpus directories are kept.
"""
import base64, hashlib, json, os, struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "Corpus")


def write(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


# JSON
for i, text in enumerate([
    '{}', '[]', 'null', 'true', 'false', '0', '-0', '1.5e10', '-12345678901234567890', '"a\\u00e9\\ud83d\\ude00"',
    '{"a":[1,2,{"b":null}],"c":"\\n\\t\\"\\\\"}', '[' * 64 + ']' * 64, '[' * 65 + ']' * 65,
    '{"kind":"Status","code":410,"reason":"Expired"}', '  {"k" : [ true , false ] }  ', '1e400', '"\xc3\xa9"',
    '{"t":1,"r":[{"id":"x","v":1.25}],"n":[]}',
]):
    write("FuzzJSON", f"{i:02}", text)

# Control lines (first byte: chunk size selector)
lines = [
    {"id": 1, "op": "host.status"},
    {"id": "a", "op": "cluster.list"},
    {"id": 2, "op": "cluster.register", "cluster": "c1", "kubeconfig": "/tmp/kc", "context": "prod"},
    {"id": 3, "op": "db.put", "cluster": "c1", "key": "k", "value": {"a": [1, 2]}},
    {"id": 4, "op": "db.get", "cluster": "c1", "key": "k"},
    {"id": 5, "op": "settings.set", "cluster": "c1", "key": "custom.x", "value": 3},
    {"id": 6, "op": "k8s.list", "cluster": "c1", "resource": "pods", "namespace": "default"},
    {"id": 7, "op": "rethink.query", "cluster": "c1", "query": [15, [[14, ["db"]], "t"]]},
    {"id": 8, "op": "nope"},
    {"id": 9, "op": "host.status", "clsuter": "x"},
    {"op": 1},
    {"id": [1], "op": "x"},
]
write("FuzzControlLine", "all", b"\x05" + b"\n".join(json.dumps(l).encode() for l in lines) + b"\n")
for i, l in enumerate(lines):
    write("FuzzControlLine", f"{i:02}", bytes([i * 7 % 64]) + json.dumps(l).encode() + b"\r\n")
write("FuzzControlLine", "long", b"\x3f" + b"x" * 600 + b"\n" + b'{"id":1,"op":"host.status"}\n')
write("FuzzControlLine", "badjson", b"\x01{\"id\":1,\"op\":\n\n[]\n\"s\"\n")

# Kubeconfigs (as in KubeconfigTests.Fixtures)
ca = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n").decode()
cert = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nCERT\n-----END CERTIFICATE-----\n").decode()
key = base64.b64encode(b"-----BEGIN EC PRIVATE KEY-----\nKEY\n-----END EC PRIVATE KEY-----\n").decode()


def kubeconfig(cluster="", user="", context="", current="prod"):
    return f"""apiVersion: v1
kind: Config
current-context: {current}
clusters:
- name: prod-cluster
  cluster:
    server: https://10.0.0.1:6443
{cluster}
users:
- name: prod-user
  user:
{user}
contexts:
- name: prod
  context:
    cluster: prod-cluster
    user: prod-user
{context}
"""


kc = [
    kubeconfig(cluster=f"    certificate-authority-data: {ca}", user="    token: tok"),
    kubeconfig(user=f"    client-certificate-data: {cert}\n    client-key-data: {key}"),
    kubeconfig(user="    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: /bin/get-token\n"
               "      args: [\"--x\"]\n      env:\n      - name: A\n        value: b\n      interactiveMode: Never",
               context="    namespace: apps"),
    kubeconfig(cluster="    insecure-skip-tls-verify: true\n    proxy-url: socks5://127.0.0.1:1080\n    tls-server-name: kube",
               user="    username: u\n    password: p"),
    kubeconfig(current=""),
    kubeconfig(user="    auth-provider:\n      name: gcp"),
    '{"apiVersion":"v1","kind":"Config","current-context":"c","clusters":[{"name":"k","cluster":{"server":"http://h:1"}}],'
    '"contexts":[{"name":"c","context":{"cluster":"k"}}],"users":[]}',
    "a: &x [1, 2]\nb: *x\nclusters: !!str 3\n",
]
for i, text in enumerate(kc):
    write("FuzzKubeconfig", f"{i:02}", text)

# Watch bodies (KubeSim's lines) and Status bodies
pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p1", "namespace": "default", "resourceVersion": "17"}}
events = [
    {"type": "ADDED", "object": pod},
    {"type": "MODIFIED", "object": pod},
    {"type": "DELETED", "object": pod},
    {"type": "BOOKMARK", "object": {"kind": "Pod", "apiVersion": "v1", "metadata": {"resourceVersion": "20"}}},
    {"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                  "message": "too old resource version: 1 (20)", "reason": "Expired", "code": 410}},
]
body = b"".join(json.dumps(e, separators=(",", ":")).encode() + b"\n" for e in events)
write("FuzzKubeWatch", "events", b"\x07" + body)
write("FuzzKubeWatch", "events-1byte", b"\x00" + body)
write("FuzzKubeWatch", "partial", b"\x10" + body[:-10])
write("FuzzKubeWatch", "status-429", b"\x1d" + json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure",
      "reason": "TooManyRequests", "code": 429, "details": {"retryAfterSeconds": 3}}).encode())
write("FuzzKubeWatch", "status-403", b"\x03" + json.dumps({"kind": "Status", "reason": "Forbidden", "message": "no", "code": 403}).encode())
write("FuzzKubeWatch", "blank", b"\x02\n\r\n \n" + body[:40])

# RethinkDB: response frames and handshake messages
def frame(token, obj):
    p = json.dumps(obj, separators=(",", ":")).encode()
    return struct.pack("<QI", token, len(p)) + p

responses = [
    {"t": 1, "r": [{"id": "a", "v": 1}]},
    {"t": 2, "r": [[1, 2], [3]]},
    {"t": 3, "r": [{"new_val": {"id": 1}, "old_val": None}], "n": [1, 5]},
    {"t": 18, "r": ["Table `x` does not exist."], "e": 3100000, "b": []},
    {"t": 16, "r": ["bad"], "e": 1000000},
    {"t": 4, "r": []},
]
write("FuzzRethinkWire", "frames", b"".join(frame(i + 1, r) for i, r in enumerate(responses)))
write("FuzzRethinkWire", "frame-large", struct.pack("<QI", 1, 1 << 31) + b"{}")
write("FuzzRethinkWire", "frame-short", struct.pack("<QI", 1, 10) + b"{}")

nonce = "fyko+d2lbbFgONRv9qkxdawL"
server_nonce = nonce + "3rfcNHYJY1ZVvWVs7j"
salt = base64.b64encode(b"QSXCR+Q6sek8bf92").decode()
iterations = 16
hello = {"success": True, "min_protocol_version": 0, "max_protocol_version": 0, "server_version": "2.4.4"}
server_first_text = f"r={server_nonce},s={salt},i={iterations}"
client_first_bare = f"n=admin,r={nonce}"
client_final_wo = f"c=biws,r={server_nonce}"
auth = f"{client_first_bare},{server_first_text},{client_final_wo}"
salted = hashlib.pbkdf2_hmac("sha256", b"pencil", base64.b64decode(salt), iterations, 32)
import hmac
server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
signature = base64.b64encode(hmac.new(server_key, auth.encode(), hashlib.sha256).digest()).decode()


def msg(o):
    return json.dumps(o, separators=(",", ":")).encode() + b"\0"

write("FuzzRethinkWire", "handshake-ok", msg(hello) + msg({"success": True, "authentication": server_first_text})
      + msg({"success": True, "authentication": f"v={signature}"}))
write("FuzzRethinkWire", "handshake-badsig", msg(hello) + msg({"success": True, "authentication": server_first_text})
      + msg({"success": True, "authentication": "v=AAAA"}))
write("FuzzRethinkWire", "handshake-autherr", msg(hello) + msg({"success": False, "error": "Wrong password", "error_code": 12}))
write("FuzzRethinkWire", "handshake-version", msg({"success": True, "min_protocol_version": 1, "max_protocol_version": 2}))

# Legacy records: byte 0 picks the collection (see FuzzLegacyRecord.swift), then key, NUL, value.
collections = ["clusters", "cluster-settings", "credentials", "published_services", "cluster-kv", "jobs", "joblogs",
               "audit", "orgs", "settings", "nodes", "unknown"]
records = [
    ("clusters", "c1", {"id": "c1", "name": "one"}),
    ("cluster-settings", "prod", {"rethink_addr": "127.0.0.1:28015"}),
    ("credentials", "cl:c1:kubeconfig", "apiVersion: v1"),
    ("credentials", "cl:prod:token", {"enc": "aes-256-gcm", "nonce": base64.b64encode(b"\1" * 12).decode(),
                                       "ciphertext": base64.b64encode(b"\2" * 24).decode()}),
    ("published_services", "c1:web", {"port": 80}),
    ("cluster-kv", "c1/some/key", [1, 2]),
    ("jobs", "j1", {"cluster_id": "c1", "state": "done"}),
    ("audit", "a1", {"clusterId": "nope"}),
    ("orgs", "o1", {}),
]
for i, (c, k, v) in enumerate(records):
    write("FuzzLegacyRecord", f"{i:02}", bytes([collections.index(c)]) + k.encode() + b"\0" + json.dumps(v).encode())
write("FuzzLegacyRecord", "masterkey-hex", bytes([2]) + b"ab" * 32 + b"\0\"plain\"")
write("FuzzLegacyRecord", "masterkey-b64", bytes([2]) + base64.b64encode(b"k" * 32) + b"\0\"plain\"")

# GuildNet's own files (first byte: 0 config.json, 1 .env, 2 guildnet.config), from Tests/Fixtures/guildnet
FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "Tests", "Fixtures", "guildnet")
for selector, name in [(0, "config.json"), (1, "guildnet.env"), (2, "guildnet.config")]:
    with open(os.path.join(FIXTURES, name), "rb") as f:
        write("FuzzGuildNetConfig", name, bytes([selector]) + f.read())
for i, (selector, text) in enumerate([
    (0, '{"login_server":"https://hs.example","auth_key":"tskey-x","hostname":"h","listen_local":"127.0.0.1:8080","dial_timeout_ms":3000,"name":"n"}'),
    (0, '{"login_server":1}'), (0, '{"unknown":true}'), (0, '['),
    (1, 'export A="x ${B:-y}"\n# c\nB=\'z\'\nTS_AUTHKEY=k # comment\n'), (1, 'A="unterminated\n'), (1, 'A=${'),
    (2, '{"version":2,"cluster":{"name":"c","namespace":"ns","use_port_forward":true},"tailscale":{"login_server":"x","preauth_key":"k"}}'),
    (2, '{"version":1,"name":"c"}'), (2, '{"version":3}'), (2, '{"version":2,"cluster":[]}'),
]):
    write("FuzzGuildNetConfig", f"{i:02}", bytes([selector]) + text.encode())
