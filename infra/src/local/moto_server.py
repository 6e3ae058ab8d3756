"""moto in server mode, with one local-speed fix and one correctness fix.

Requests are handled one at a time. moto serves on several threads but guards nothing: two
conditional updates of one item could both pass (two winners in 21 of 150 four-way races), a
cancelled transaction's rollback could drop stream records other requests wrote meanwhile, and
/moto-api/data.json could fail while it serialised state others were changing. DynamoDB gives
each item's conditional writes a strict order; one lock over moto gives the same, so the
concurrency tests mean something.

Transactions back up only the items they touch.

moto 5 rolls a failed TransactWriteItems back by deep-copying every table the call names, once per
operation, before it starts: O(table size) per transaction. The analysis writes every feedback item
in a transaction, so a local table of a few thousand items made each one cost ~0.1-0.3 s and the
stream fell behind. Here the table is not copied; the items the transaction touches are saved and
put back (with the stream records the cancelled transaction wrote dropped), which is the same
all-or-nothing outcome AWS gives. Anything unexpected falls back to moto's own code.

Queries read their partition, not the table.

moto 5 answers every Query by listing the whole table, sorted (`Table.all_items`: O(n log n)
DynamoType comparisons), then keeping the items of the partition asked for: with a few thousand
items each Query took tens of milliseconds, and a demo spent most of its time there (profiled:
Query was 60% of moto's time, `sorted` and `DynamoType.cast_value` most of it). Here a Query on the
table reads only its partition, and a Query on an index lists the items unsorted (moto sorts what it
keeps by the index's keys itself). Scans keep moto's sorted listing: their pages depend on it.

Port 0 is announced.

With `-p 0` the OS picks a free port when the server binds, and the first line on stdout says which
(`MOTO_PORT=<n>`). Picking a "free" port first and passing it on is a race: another process (a
parallel test's function host binding port 0) can take it in between, and the caller then talks to
the wrong server.

Run as: python moto_server.py -H 127.0.0.1 -p PORT   (the same arguments as moto_server)
"""

import copy
import inspect
import sys
import types

from moto.dynamodb import models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table
import threading

import werkzeug.serving

import moto.server
from moto.server import main

_original = DynamoDBBackend.transact_write_items
# moto's module calls copy.deepcopy(table) for the backup: make that the table itself; items and
# everything else are still copied for real.
dynamodb_models.copy = types.SimpleNamespace(
    deepcopy=lambda obj, memo=None: obj if isinstance(obj, Table) else copy.deepcopy(obj, memo)
)


def _key_of(table, op):
    if "Key" in op:
        return op["Key"]
    attrs = op["Item"]
    key = {table.hash_key_attr: attrs[table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = attrs[table.range_key_attr]
    return key


def _restore(table, key, before):
    hash_value = DynamoType(key[table.hash_key_attr])
    if table.range_key_attr is not None:
        range_value = DynamoType(key[table.range_key_attr])
        if before is None:
            table.items[hash_value].pop(range_value, None)
        else:
            table.items[hash_value][range_value] = before
    elif before is None:
        table.items.pop(hash_value, None)
    else:
        table.items[hash_value] = before


def transact_write_items(self, transact_items):
    saved, stream_lengths = [], {}
    try:
        for item in transact_items:
            _, op = next(iter(item.items()))
            table = self.tables.get(op.get("TableName"))
            if table is None:
                continue
            key = _key_of(table, op)
            saved.append((table, key, copy.deepcopy(self.get_item(op["TableName"], key))))
            if table.stream_shard is not None:
                stream_lengths.setdefault(id(table), (table, len(table.stream_shard.items)))
    except Exception:
        saved = None
    if saved is None:
        # Malformed input: moto's own code answers it (with its own, slow, backup).
        dynamodb_models.copy = copy
        try:
            return _original(self, transact_items)
        finally:
            dynamodb_models.copy = _fast_copy
    try:
        return _original(self, transact_items)
    except Exception:
        for table, key, before in reversed(saved):
            _restore(table, key, before)
        for table, length in stream_lengths.values():
            del table.stream_shard.items[length:]
        raise


_fast_copy = dynamodb_models.copy
DynamoDBBackend.transact_write_items = transact_write_items

_query_scope = threading.local()
_sorted_all_items = Table.all_items


def _all_items(self):
    partition = getattr(_query_scope, "partition", None)
    if partition is not None and partition[0] is self:
        found = self.items.get(partition[1])
        if found is None:
            return []
        return list(found.values()) if self.range_key_attr else [found]
    if getattr(_query_scope, "unsorted", None) is self:
        items = []
        for hash_set in self.items.values():
            if self.range_key_attr:
                items.extend(hash_set.values())
            else:
                items.append(hash_set)
        return items
    return _sorted_all_items(self)


_table_query = Table.query
_query_signature = inspect.signature(_table_query)


def _query(self, *args, **kwargs):
    try:
        bound = _query_signature.bind(self, *args, **kwargs).arguments
    except TypeError:
        return _table_query(self, *args, **kwargs)
    if bound.get("index_name"):
        _query_scope.unsorted = self
    elif bound.get("hash_key") is not None:
        _query_scope.partition = (self, bound["hash_key"])
    try:
        return _table_query(self, *args, **kwargs)
    finally:
        _query_scope.unsorted = None
        _query_scope.partition = None


Table.all_items = _all_items
Table.query = _query

_serial = threading.Lock()
_dispatch = moto.server.DomainDispatcherApplication.__call__


def _one_at_a_time(self, environ, start_response):
    with _serial:
        # The whole response is made inside the lock (moto's bodies are lists, not generators).
        return list(_dispatch(self, environ, start_response))


moto.server.DomainDispatcherApplication.__call__ = _one_at_a_time

_make_server = werkzeug.serving.make_server


def _announcing_make_server(*args, **kwargs):
    server = _make_server(*args, **kwargs)
    print(f"MOTO_PORT={server.server_port}", flush=True)
    return server


werkzeug.serving.make_server = _announcing_make_server

if __name__ == "__main__":
    main(sys.argv[1:])
