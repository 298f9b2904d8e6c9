#!/usr/bin/env python3
"""A scripted DynamoDB Streams server for the StreamReader tests.

It speaks the real wire protocol (POST /, X-Amz-Target
DynamoDBStreams_20120810.<Operation>, application/x-amz-json-1.0, AWS JSON
error bodies) but plays a scenario instead of storing anything, so the tests
can have what moto_server does not model: several shards with parents, closed
shards, a rollover, DescribeStream paging, expired iterators, trimmed data,
throttling and HTTP 500s. Signatures are not verified.

    stream_server.py SCENARIO.json [--port P]

prints `listening on 127.0.0.1:PORT` on stdout once it accepts connections
(port 0, the default, picks a free one) and serves until killed.

Scenario (JSON):

    {
      "streamArn": "arn:aws:dynamodb:us-east-1:000000000000:table/events/stream/2024-01-01T00:00:00.000",
      "tableName": "events",
      "describePageSize": 100,          # shards per DescribeStream page at most
      "getRecordsDelay": 0.0,           # seconds each GetRecords takes
      "shards": [
        {
          "id": "shardId-1",
          "parent": null,               # ParentShardId, may name a shard not listed
          "closed": false,              # EndingSequenceNumber set from the start
          "closeAfter": null,           # seconds after start: the shard closes then
          "appearAfter": 0,             # seconds after start: listed from then on
          "records": [                  # events-table items, DynamoDB typed JSON
            {"item": {"aggregateId": {"S": "a"}, "sequenceNumber": {"N": "1"}, ...},
             "eventName": "INSERT",     # optional (INSERT, MODIFY, REMOVE)
             "appearAfter": 0}          # optional: written this many seconds after start
          ],
          "faults": [                   # on the Nth GetRecords of this shard (from 1)
            {"nth": 2, "error": "ExpiredIteratorException"},
            {"nth": 3, "error": "TrimmedDataAccessException", "trimTo": 5},
            {"nth": 1, "times": 4, "error": "LimitExceededException"},
            {"nth": 1, "times": 2, "status": 500}
          ]
        }
      ],
      "describeFaults": [{"nth": 1, "times": 1, "status": 500}]
    }

A fault with `times` fires on that many GetRecords calls starting at the Nth.
`trimTo: K` moves the shard's trim horizon to its Kth record (0-based) when it
fires: records before it are gone from then on.

GET /_stats answers what happened: calls per operation and shard, the largest
number of GetRecords in flight at once per shard, every GetShardIterator
request, and every GetRecords Limit.
"""

import argparse
import json
import os
import signal
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "com.amazonaws.dynamodb.v20120810#"


class AWSFault(Exception):
    def __init__(self, type_, message, status=400):
        super().__init__(message)
        self.type = type_
        self.message = message
        self.status = status


class Scenario:
    def __init__(self, spec):
        self.lock = threading.Lock()
        self.started = time.monotonic()
        self.arn = spec.get("streamArn", "arn:aws:dynamodb:us-east-1:000000000000:table/events/stream/2024-01-01T00:00:00.000")
        self.table = spec.get("tableName", "events")
        self.page_size = int(spec.get("describePageSize", 100))
        self.delay = float(spec.get("getRecordsDelay", 0))
        self.describe_faults = spec.get("describeFaults", [])
        self.describe_calls = 0
        self.shards = []
        self.by_id = {}
        counter = 0
        for index, s in enumerate(spec["shards"]):
            records = []
            for r in s.get("records", []):
                counter += 1
                records.append({"seq": str(10**20 + counter), "item": r["item"],
                                "eventName": r.get("eventName", "INSERT"),
                                "appearAfter": float(r.get("appearAfter", 0))})
            shard = {
                "id": s["id"], "parent": s.get("parent"),
                "closed": bool(s.get("closed", False)),
                "closeAfter": s.get("closeAfter"),
                "appearAfter": float(s.get("appearAfter", 0)),
                "records": records,
                "start": str(10**20 + counter - len(records) + 1) if records else str(10**20 + 10**6 * (index + 1)),
                "faults": s.get("faults", []),
                "trim": 0,
                "calls": 0,
                "inFlight": 0,
                "maxInFlight": 0,
            }
            self.shards.append(shard)
            self.by_id[shard["id"]] = shard
        self.iterators = {}
        self.expired = set()
        self.stats = {"calls": {}, "getShardIterator": [], "getRecordsLimits": [], "errors": []}

    def elapsed(self):
        return time.monotonic() - self.started

    def listed(self):
        now = self.elapsed()
        return [s for s in self.shards if s["appearAfter"] <= now]

    def visible(self, shard):
        """How many records of the shard exist now."""
        now = self.elapsed()
        n = 0
        for r in shard["records"]:
            if r["appearAfter"] > now:
                break
            n += 1
        return n

    def is_closed(self, shard):
        if shard["closed"]:
            return True
        after = shard["closeAfter"]
        return after is not None and self.elapsed() >= float(after)

    def count(self, op, shard=None):
        key = op if shard is None else f"{op}:{shard}"
        self.stats["calls"][key] = self.stats["calls"].get(key, 0) + 1

    # Operations

    def list_streams(self, body):
        self.count("ListStreams")
        return {"Streams": [{"StreamArn": self.arn, "TableName": self.table, "StreamLabel": self.arn.rsplit("/", 1)[-1]}]}

    def describe_stream(self, body):
        with self.lock:
            self.count("DescribeStream")
            self.describe_calls += 1
            fire(self.describe_faults, self.describe_calls)
            if body.get("StreamArn") != self.arn:
                raise AWSFault("ResourceNotFoundException", f"Requested resource not found: Stream: {body.get('StreamArn')} not found")
            shards = self.listed()
            start = body.get("ExclusiveStartShardId")
            if start is not None:
                ids = [s["id"] for s in shards]
                shards = shards[ids.index(start) + 1:] if start in ids else []
            limit = min(int(body.get("Limit") or 100), self.page_size)
            page, rest = shards[:limit], shards[limit:]
            out = []
            for s in page:
                entry = {"ShardId": s["id"], "SequenceNumberRange": {"StartingSequenceNumber": s["start"]}}
                if s["parent"]:
                    entry["ParentShardId"] = s["parent"]
                if self.is_closed(s):
                    end = s["records"][-1]["seq"] if s["records"] else s["start"]
                    entry["SequenceNumberRange"]["EndingSequenceNumber"] = end
                out.append(entry)
            description = {
                "StreamArn": self.arn, "StreamLabel": self.arn.rsplit("/", 1)[-1], "StreamStatus": "ENABLED",
                "StreamViewType": "NEW_AND_OLD_IMAGES", "TableName": self.table,
                "KeySchema": [{"AttributeName": "aggregateId", "KeyType": "HASH"},
                              {"AttributeName": "sequenceNumber", "KeyType": "RANGE"}],
                "Shards": out,
            }
            if rest:
                description["LastEvaluatedShardId"] = page[-1]["id"]
            return {"StreamDescription": description}

    def get_shard_iterator(self, body):
        with self.lock:
            shard_id = body.get("ShardId")
            kind = body.get("ShardIteratorType")
            seq = body.get("SequenceNumber")
            self.count("GetShardIterator", shard_id)
            self.stats["getShardIterator"].append({"shard": shard_id, "type": kind, "sequenceNumber": seq, "t": self.elapsed()})
            if body.get("StreamArn") != self.arn:
                raise AWSFault("ResourceNotFoundException", f"Requested resource not found: Stream: {body.get('StreamArn')} not found")
            shard = self.by_id.get(shard_id)
            if shard is None or shard not in self.listed():
                raise AWSFault("ResourceNotFoundException", f"Requested resource not found: Shard does not exist: {shard_id}")
            records = shard["records"]
            if kind == "TRIM_HORIZON":
                pos = shard["trim"]
            elif kind == "LATEST":
                pos = self.visible(shard)
            elif kind in ("AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER"):
                seqs = [r["seq"] for r in records]
                if seq not in seqs:
                    raise AWSFault("ValidationException", f"Invalid SequenceNumber {seq} for shard {shard_id}")
                pos = seqs.index(seq) + (1 if kind == "AFTER_SEQUENCE_NUMBER" else 0)
                if pos < shard["trim"]:
                    raise AWSFault("TrimmedDataAccessException", f"Sequence number {seq} is beyond the trim horizon of shard {shard_id}")
            else:
                raise AWSFault("ValidationException", f"Invalid ShardIteratorType: {kind}")
            return {"ShardIterator": self.make_iterator(shard_id, pos)}

    def make_iterator(self, shard_id, pos):
        token = f"arn:iterator/{shard_id}/{pos}/{uuid.uuid4().hex}"
        self.iterators[token] = (shard_id, pos)
        return token

    def get_records(self, body):
        token = body.get("ShardIterator")
        with self.lock:
            if token not in self.iterators:
                self.count("GetRecords")
                raise AWSFault("ValidationException", "Invalid ShardIterator")
            shard_id, pos = self.iterators[token]
            shard = self.by_id[shard_id]
            self.count("GetRecords", shard_id)
            shard["calls"] += 1
            shard["inFlight"] += 1
            shard["maxInFlight"] = max(shard["maxInFlight"], shard["inFlight"])
            limit = body.get("Limit")
            self.stats["getRecordsLimits"].append(limit)
        try:
            if self.delay:
                time.sleep(self.delay)
            with self.lock:
                if token in self.expired:
                    raise AWSFault("ExpiredIteratorException", "Iterator expired")
                try:
                    fire(shard["faults"], shard["calls"], shard)
                except AWSFault as fault:
                    if fault.type == "ExpiredIteratorException":
                        self.expired.add(token)  # it stays expired, as a real one does
                    raise
                if pos < shard["trim"]:
                    raise AWSFault("TrimmedDataAccessException", f"The iterator of shard {shard_id} points beyond the trim horizon")
                available = self.visible(shard)
                end = min(available, pos + int(limit or 1000))
                page = shard["records"][pos:end]
                out = [self.stream_record(r) for r in page]
                result = {"Records": out}
                if not (self.is_closed(shard) and end >= len(shard["records"])):
                    result["NextShardIterator"] = self.make_iterator(shard_id, end)
                return result
        finally:
            with self.lock:
                shard["inFlight"] -= 1

    def stream_record(self, r):
        item = r["item"]
        keys = {k: item[k] for k in ("aggregateId", "sequenceNumber") if k in item}
        change = {
            "ApproximateCreationDateTime": round(time.time() - 1, 3),
            "Keys": keys,
            "SequenceNumber": r["seq"],
            "SizeBytes": len(json.dumps(item)),
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        }
        if r["eventName"] != "REMOVE":
            change["NewImage"] = item
        if r["eventName"] != "INSERT":
            change["OldImage"] = item
        return {"eventID": uuid.uuid4().hex, "eventName": r["eventName"], "eventVersion": "1.1",
                "eventSource": "aws:dynamodb", "awsRegion": "us-east-1", "dynamodb": change}

    def snapshot(self):
        with self.lock:
            out = dict(self.stats)
            out["maxConcurrentGetRecords"] = {s["id"]: s["maxInFlight"] for s in self.shards}
            out["elapsed"] = self.elapsed()
            return json.loads(json.dumps(out))


def fire(faults, call, shard=None):
    """Raises the fault scheduled for this call number, if any."""
    for f in faults:
        first = int(f.get("nth", 1))
        if first <= call < first + int(f.get("times", 1)):
            if shard is not None and "trimTo" in f:
                shard["trim"] = max(shard["trim"], int(f["trimTo"]))
            if "status" in f:
                raise AWSFault("InternalServerError", "scripted HTTP failure", status=int(f["status"]))
            raise AWSFault(f["error"], f.get("message", f"scripted {f['error']}"))


OPERATIONS = {
    "ListStreams": Scenario.list_streams,
    "DescribeStream": Scenario.describe_stream,
    "GetShardIterator": Scenario.get_shard_iterator,
    "GetRecords": Scenario.get_records,
}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    scenario = None

    def log_message(self, format, *args):
        pass

    def send(self, status, body, content_type="application/x-amz-json-1.0"):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", uuid.uuid4().hex)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/_stats":
            self.send(200, json.dumps(self.scenario.snapshot()), "application/json")
        else:
            self.send(404, "not found", "text/plain")

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b"{}"
        target = self.headers.get("X-Amz-Target", "")
        prefix, _, operation = target.partition(".")
        handler = OPERATIONS.get(operation) if prefix == "DynamoDBStreams_20120810" else None
        if handler is None:
            self.send(400, json.dumps({"__type": "com.amazon.coral.service#UnknownOperationException", "message": f"unknown operation {target}"}))
            return
        try:
            body = json.loads(raw or b"{}")
            self.send(200, json.dumps(handler(self.scenario, body)))
        except AWSFault as fault:
            with self.scenario.lock:
                self.scenario.stats["errors"].append({"operation": operation, "type": fault.type, "status": fault.status})
            if fault.status >= 500:
                self.send(fault.status, "<html><head><title>500 Internal Server Error</title></head><body><h1>Internal Server Error</h1><p>scripted failure</p></body></html>", "text/html")
            else:
                self.send(fault.status, json.dumps({"__type": PREFIX + fault.type, "message": fault.message}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("scenario", help="scenario JSON file")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    with open(args.scenario) as f:
        Handler.scenario = Scenario(json.load(f))
    # A test runner may start us with SIGTERM blocked (the mask is inherited): unblock it.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    parent = os.getppid()

    def exit_with_parent():
        # Never outlive the test process that started us.
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=exit_with_parent, daemon=True).start()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(f"listening on 127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
