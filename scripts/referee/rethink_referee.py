#!/usr/bin/env python3
"""Referee for RethinkSim: the official RethinkDB Python driver (PyPI `rethinkdb` 2.4.10.post1)
runs a fixed scenario against a server and prints a JSON summary; exit 0 only if every check passes.

Usage: rethink_referee.py --port PORT --password PASSWORD [--host HOST] [--user USER] [--phase PHASE]

Phases: `scenario` (default) the full scenario; `restarted` a server inside a restart's
unavailability window (table `restart.items` holding row {"id": 1}): reads, writes and changefeeds
must raise ReqlOpFailedError (a ReqlAvailabilityError) with RethinkDB's "primary replica" messages,
while db_list still answers; `ready` the same server once its tables serve again.
"""
import argparse
import json
import sys
import threading
import traceback

try:
    from rethinkdb import RethinkDB
    from rethinkdb.errors import ReqlAuthError, ReqlAvailabilityError, ReqlOpFailedError
except ImportError as error:  # the Swift test reports this output
    print(json.dumps({"ok": False, "error": "python module rethinkdb missing: %s (pip install rethinkdb==2.4.10.post1)" % error}))
    sys.exit(3)

r = RethinkDB()
checks = []


def check(name, condition, detail=None):
    checks.append({"name": name, "ok": bool(condition), "detail": None if condition else repr(detail)})


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--user", default="admin")
    parser.add_argument("--password", required=True)
    parser.add_argument("--phase", default="scenario", choices=["scenario", "restarted", "ready"])
    args = parser.parse_args()

    def connect(password=args.password):
        return r.connect(host=args.host, port=args.port, user=args.user, password=password, timeout=10)

    if args.phase == "restarted":
        restarted(connect())
        return
    if args.phase == "ready":
        ready(connect())
        return

    conn = connect()
    check("server_info", conn.server()["name"] != "", conn.server())

    check("db_create", r.db_create("referee").run(conn)["dbs_created"] == 1)
    check("db_list", "referee" in r.db_list().run(conn))
    try:
        r.db("missing_db").table("t").run(conn)
        check("missing_db_error", False, "no error")
    except ReqlOpFailedError as error:
        check("missing_db_error", error.message == "Database `missing_db` does not exist.", error.message)

    conn.use("referee")
    check("table_create", r.table_create("heroes").run(conn)["tables_created"] == 1)
    check("table_list", r.table_list().run(conn) == ["heroes"], r.table_list().run(conn))
    check("index_create", r.table("heroes").index_create("team").run(conn) == {"created": 1})

    heroes = [
        {"id": 1, "name": "ada", "team": "red", "power": 7},
        {"id": 2, "name": "bob", "team": "blue", "power": 3},
        {"id": 3, "name": "cy", "team": "red", "power": 9},
        {"id": 4, "name": "di", "team": "blue", "power": 5},
    ]
    inserted = r.table("heroes").insert(heroes).run(conn)
    check("insert", inserted["inserted"] == 4 and inserted["errors"] == 0, inserted)
    generated = r.table("heroes").insert({"name": "eve", "team": "green", "power": 1}).run(conn)
    check("generated_keys", len(generated.get("generated_keys", [])) == 1, generated)
    eve_id = generated["generated_keys"][0]

    check("get", r.table("heroes").get(1).run(conn) == heroes[0], r.table("heroes").get(1).run(conn))
    check("get_missing", r.table("heroes").get(404).run(conn) is None)
    everyone = list(r.table("heroes").run(conn))
    check("read_back", len(everyone) == 5, everyone)
    reds = sorted(doc["id"] for doc in r.table("heroes").filter({"team": "red"}).run(conn))
    check("filter_object", reds == [1, 3], reds)
    strong = sorted(doc["id"] for doc in r.table("heroes").filter(lambda hero: hero["power"] > 4).run(conn))
    check("filter_lambda", strong == [1, 3, 4], strong)
    top = [doc["name"] for doc in r.table("heroes").order_by(r.desc("power")).limit(2).run(conn)]
    check("order_by_limit", top == ["cy", "ada"], top)
    indexed = [doc["id"] for doc in r.table("heroes").order_by(index=r.desc("id")).limit(2).run(conn)]
    check("order_by_index", indexed == [eve_id, 4], indexed)
    check("count", r.table("heroes").count().run(conn) == 5)
    blue = sorted(doc["id"] for doc in r.table("heroes").get_all("blue", index="team").run(conn))
    check("get_all_index", blue == [2, 4], blue)
    plucked = list(r.table("heroes").filter({"team": "blue"}).pluck("name").run(conn))
    check("pluck", sorted(doc["name"] for doc in plucked) == ["bob", "di"] and all(list(doc) == ["name"] for doc in plucked), plucked)

    updated = r.table("heroes").get(2).update({"power": r.row["power"] + 10}).run(conn)
    check("update", updated["replaced"] == 1 and r.table("heroes").get(2)["power"].run(conn) == 13, updated)
    deleted = r.table("heroes").get(eve_id).delete().run(conn)
    check("delete", deleted["deleted"] == 1 and r.table("heroes").count().run(conn) == 4, deleted)

    # Paging: more rows than one batch (1000) go through CONTINUE.
    r.table_create("bulk").run(conn)
    r.table("bulk").insert([{"id": n} for n in range(2345)]).run(conn)
    ids = [doc["id"] for doc in r.table("bulk").run(conn)]
    check("cursor_paging", sorted(ids) == list(range(2345)), len(ids))

    # Changefeed on this connection, writes from a second connection in a thread.
    feed = r.table("heroes").changes(include_types=True).run(conn)
    writer_errors = []

    def write():
        try:
            other = connect()
            other.use("referee")
            r.table("heroes").insert({"id": 10, "name": "fay", "team": "red", "power": 2}).run(other)
            r.table("heroes").get(10).update({"power": 4}).run(other)
            r.table("heroes").get(10).delete().run(other)
            other.close()
        except Exception as error:  # reported through the checks
            writer_errors.append(repr(error))

    writer = threading.Thread(target=write)
    writer.start()
    events = [feed.next(wait=10) for _ in range(3)]
    writer.join(10)
    feed.close()
    check("second_connection_writes", not writer_errors, writer_errors)
    expected = [
        {"type": "add", "old_val": None, "new_val": {"id": 10, "name": "fay", "team": "red", "power": 2}},
        {"type": "change", "old_val": {"id": 10, "name": "fay", "team": "red", "power": 2},
         "new_val": {"id": 10, "name": "fay", "team": "red", "power": 4}},
        {"type": "remove", "old_val": {"id": 10, "name": "fay", "team": "red", "power": 4}, "new_val": None},
    ]
    check("changefeed_in_order", events == expected, events)

    # The connection still works after closing the feed (STOP answered, no stray responses).
    check("after_feed_close", r.table("heroes").count().run(conn) == 4)

    # A slow reader: the server keeps the newest changes in a bounded queue (changefeed_queue_size)
    # and tells the reader, inside the feed, how many it skipped.
    r.table_create("burst").run(conn)
    slow = r.table("burst").changes(changefeed_queue_size=3).run(conn)
    other = connect()
    other.use("referee")
    for n in range(10):
        r.table("burst").insert({"id": n}).run(other)
    other.close()
    seen = []
    while not seen or (seen[-1].get("new_val") or {}).get("id") != 9:
        seen.append(slow.next(wait=10))
    slow.close()
    notices = [doc["error"] for doc in seen if "error" in doc]
    rows = [doc["new_val"]["id"] for doc in seen if "new_val" in doc]
    prefix = "Changefeed cache over array size limit, skipped "
    skipped = int(notices[0][len(prefix):].split(" ")[0]) if notices and notices[0].startswith(prefix) else -1
    check("feed_queue_overflow_notice", len(notices) == 1 and rows[-3:] == [7, 8, 9] and len(rows) + skipped == 10, seen)

    # max_batch_rows: the rows arrive in smaller batches, all of them.
    paged = [doc["id"] for doc in r.table("bulk").run(conn, max_batch_rows=100)]
    check("max_batch_rows_paging", sorted(paged) == list(range(2345)), len(paged))

    initial = r.table("heroes").changes(include_initial=True, include_states=True).run(conn)
    first = [initial.next(wait=10) for _ in range(6)]
    initial.close()
    check("include_initial_states", first[0] == {"state": "initializing"} and first[-1] == {"state": "ready"}
          and sorted(doc["new_val"]["id"] for doc in first[1:-1]) == [1, 2, 3, 4], first)

    try:
        connect(password="definitely-wrong")
        check("wrong_password_refused", False, "connected")
    except ReqlAuthError as error:
        check("wrong_password_refused", "Wrong password" in str(error), str(error))

    check("db_drop", r.db_drop("referee").run(conn)["dbs_dropped"] == 1)
    conn.close()


SHARD = 'primary replica for shard ["", +inf) not available'


def expect_op_failed(name, query, conn, message):
    """`query` must raise ReqlOpFailedError (a ReqlAvailabilityError) carrying `message`."""
    try:
        result = query.run(conn)
        check(name, False, "no error: %r" % (result,))
    except ReqlOpFailedError as error:
        check(name, isinstance(error, ReqlAvailabilityError) and error.message == message, error.message)
    except Exception as error:  # another class is a failed check, with its name
        check(name, False, "%s: %s" % (type(error).__name__, error))


def restarted(conn):
    """A restarted server before its tables are ready."""
    check("restart_db_list_answers", "restart" in r.db_list().run(conn), r.db_list().run(conn))
    items = r.db("restart").table("items")
    expect_op_failed("restart_read_op_failed", items.get(1), conn, "Cannot perform read: " + SHARD)
    expect_op_failed("restart_count_op_failed", items.count(), conn, "Cannot perform read: " + SHARD)
    expect_op_failed("restart_write_op_failed", items.insert({"id": 2}), conn, "Cannot perform write: " + SHARD)
    expect_op_failed("restart_changes_op_failed", items.changes(), conn, "cannot subscribe to table `restart.items`: " + SHARD)
    conn.close()


def ready(conn):
    """The same server once its tables serve again: nothing was written meanwhile."""
    rows = list(r.db("restart").table("items").order_by("id").run(conn))
    check("restart_ready_rows", rows == [{"id": 1}], rows)
    feed = r.db("restart").table("items").changes(include_initial=True).run(conn)
    first = next(feed)
    check("restart_ready_changes", first == {"new_val": {"id": 1}}, first)
    feed.close()
    conn.close()


if __name__ == "__main__":
    try:
        main()
    except Exception:
        checks.append({"name": "unexpected_exception", "ok": False, "detail": traceback.format_exc()})
    failed = [check["name"] for check in checks if not check["ok"]]
    print(json.dumps({"ok": not failed, "checks": len(checks), "failed": failed, "results": checks}))
    sys.exit(0 if not failed else 1)
