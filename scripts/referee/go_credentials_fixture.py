#!/usr/bin/env python3
"""Writes a legacy guildnet.sqlite whose `credentials` records have the shapes the Go GuildNet host
writes, encrypted by an implementation independent of hostapp: Python `cryptography`'s AESGCM with
the Go app's key derivation (secrets.Manager: the master key string's bytes copied into a
zero-filled 32-byte buffer; value = base64(nonce(12) || ciphertext || tag(16)), no associated data).

One cluster per case; each cluster's kubeconfig record is:
  plain          {"value": <yaml>}                          (the Go bootstrap path)
  plain-flagged  full record, "encrypted": false, plaintext
  enc-flagged    full record, "encrypted": true, under --key
  enc-unflagged  full record without "encrypted", under --key
  zero-key       full record, "encrypted": true, under the all-zero key (Go with no master key)
  wrong-key      full record, "encrypted": true, under --wrong-key
plus `cl:enc-flagged:ts_client_auth` (encrypted under --key), a headscale and its
`hs:hs-1:preauth` credential (host-wide), and a few records per cluster.

Usage: go_credentials_fixture.py --db PATH --key KEY [--wrong-key KEY] [--kubeconfig-file PATH]
Prints one JSON line: {"ok": true, "clusters": {...case...}, "kubeconfigs": {id: yaml}}.
"""
import argparse
import base64
import json
import os
import sqlite3
import sys
import uuid

try:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
except ImportError as error:  # the Swift test reports this output
    print(json.dumps({"ok": False, "error": "python module cryptography missing: %s (pip install cryptography)" % error}))
    sys.exit(3)

CASES = ["plain", "plain-flagged", "enc-flagged", "enc-unflagged", "zero-key", "wrong-key"]


def go_key(master_key):
    """secrets.New: b := make([]byte, 32); copy(b, []byte(masterKey))."""
    raw = master_key.encode("utf-8")[:32]
    return raw + b"\0" * (32 - len(raw))


def go_encrypt(master_key, plaintext):
    """secrets.Manager.Encrypt: gcm.Seal(nonce, nonce, plaintext, nil), standard base64."""
    nonce = os.urandom(12)
    sealed = AESGCM(go_key(master_key)).encrypt(nonce, plaintext.encode("utf-8"), None)
    return base64.b64encode(nonce + sealed).decode("ascii")


def kubeconfig(cluster):
    return (
        "apiVersion: v1\nkind: Config\ncurrent-context: %s\nclusters:\n- name: %s\n  cluster:\n"
        "    server: https://%s.example:6443\nusers:\n- name: %s-user\n  user:\n    token: token-%s\n"
        "contexts:\n- name: %s\n  context:\n    cluster: %s\n    user: %s-user\n"
    ) % ((cluster,) * 8)


def record(cluster, kind, value, encrypted):
    fields = {
        "id": str(uuid.uuid4()) if kind == "cluster.kubeconfig" else "cred-%s-%s" % (cluster, kind),
        "scopeType": "cluster",
        "scopeId": cluster,
        "kind": kind,
        "value": value,
        "rotatedAt": "2026-01-02T03:04:05Z",
    }
    if encrypted is not None:
        fields["encrypted"] = encrypted
    return fields


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--key", required=True, help="GUILDNET_MASTER_KEY of the encrypted cases")
    parser.add_argument("--wrong-key", default="a-different-master-key")
    parser.add_argument("--kubeconfig-file", help="kubeconfig YAML every cluster gets (default: a fictitious one per cluster)")
    args = parser.parse_args()
    shared = None
    if args.kubeconfig_file:
        with open(args.kubeconfig_file, encoding="utf-8") as handle:
            shared = handle.read()

    rows = [
        ("headscales", "hs-1", {"id": "hs-1", "url": "https://hs.example"}),
        ("credentials", "hs:hs-1:preauth", dict(record("hs-1", "headscale.preauth", go_encrypt(args.key, "preauth-secret"), True), scopeType="headscale")),
    ]
    kubeconfigs = {}
    for case in CASES:
        yaml = shared if shared is not None else kubeconfig(case)
        kubeconfigs[case] = yaml
        rows.append(("clusters", case, {"id": case, "name": "Cluster " + case}))
        rows.append(("published_services", case + ":web", {"port": 80}))
        rows.append(("jobs", "job-" + case, {"clusterId": case, "kind": "deploy"}))
        if case == "plain":
            value = {"value": yaml}
        elif case == "plain-flagged":
            value = record(case, "cluster.kubeconfig", yaml, False)
        elif case == "enc-flagged":
            value = record(case, "cluster.kubeconfig", go_encrypt(args.key, yaml), True)
            rows.append(("credentials", "cl:%s:ts_client_auth" % case,
                         record(case, "cluster.ts_client_auth", go_encrypt(args.key, "tskey-client-" + case), True)))
        elif case == "enc-unflagged":
            value = record(case, "cluster.kubeconfig", go_encrypt(args.key, yaml), None)
        elif case == "zero-key":
            value = record(case, "cluster.kubeconfig", go_encrypt("", yaml), True)
        else:
            value = record(case, "cluster.kubeconfig", go_encrypt(args.wrong_key, yaml), True)
        rows.append(("credentials", "cl:%s:kubeconfig" % case, value))

    connection = sqlite3.connect(args.db)
    with connection:
        connection.execute(
            "CREATE TABLE IF NOT EXISTS kv (collection TEXT NOT NULL, key TEXT NOT NULL, value BLOB, PRIMARY KEY (collection, key))")
        connection.executemany(
            "INSERT INTO kv(collection, key, value) VALUES (?, ?, ?)",
            [(collection, key, json.dumps(value).encode("utf-8")) for collection, key, value in rows])
    connection.close()
    print(json.dumps({"ok": True, "clusters": CASES, "rows": len(rows), "kubeconfigs": kubeconfigs}))


if __name__ == "__main__":
    main()
