#!/usr/bin/env python3
"""Writes the seed corpora (Fuzz/Corpus/<target>/) from the examples the tests and docs use.
Run it again after changing an example; libFuzzer adds its own finds only to a scratch corpus."""
import json, os, pathlib

root = pathlib.Path(__file__).resolve().parent
corpus = root / "Corpus"
repo = root.parent

def put(target, name, data):
    d = corpus / target
    d.mkdir(parents=True, exist_ok=True)
    if isinstance(data, (dict, list)):
        data = json.dumps(data, separators=(",", ":"))
    if isinstance(data, str):
        data = data.encode()
    (d / name).write_bytes(data)

# routes: the repository's routes files
put("routes", "root-routes.json", (repo / "routes.json").read_bytes())
for f in sorted((repo / "examples/routes").glob("*.json")):
    put("routes", f.name, f.read_bytes())
put("routes", "planner-test.json", """{"version":1,"topics":{"orders":{},"billing":{},"audit":{},"lost":{}},
"routes":[{"name":"orders","events":["Order*"],"to":["orders"]},
{"name":"billing","events":["OrderPlaced"],"to":["billing"],"key":"payload.customer.id"},
{"name":"audit","events":["*Placed"],"to":["audit","orders"]}],"unrouted":{"topic":"lost"},"deadLetterTopic":"dlq"}""")
put("routes", "bad-undeclared-topic.json", '{"version":1,"topics":{},"routes":[{"name":"a","events":["X"],"to":["nope"]}]}')

# patterns: name 0xFF where 0xFF event
event = {"messageId": "m-1", "eventName": "OrderPlaced", "aggregateId": "order-1", "aggregateType": "Order",
         "sequenceNumber": 3, "timestamp": "2026-01-02T03:04:05.678Z",
         "payload": {"total": 1200.5, "currency": "EUR", "customer": {"id": "cust-1"}, "source": "10.1.2.3",
                     "items": [{"sku": "a"}, {"sku": "b"}]},
         "metadata": {"correlationId": "corr", "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}}
ev = json.dumps(event).encode()
patterns = {
    "numeric": ("Order*", {"payload": {"total": [{"numeric": [">", 1000, "<=", 5000]}]}}),
    "prefix-suffix": ("*Placed", {"payload": {"currency": [{"prefix": "E"}, {"suffix": {"equals-ignore-case": "ur"}}]}}),
    "wildcard": ("Order*Pl*", {"aggregateId": [{"wildcard": "order-*-*"}]}),
    "anything-but": ("OrderPlaced", {"payload": {"currency": [{"anything-but": ["USD", "GBP"]}]}}),
    "exists-or": ("*", {"$or": [{"payload": {"coupon": [{"exists": True}]}}, {"payload": {"total": [{"numeric": ["=", 1200.5]}]}}]}),
    "cidr": ("Order*", {"payload": {"source": [{"cidr": "10.0.0.0/8"}, {"cidr": "2001:db8::/32"}]}}),
    "nested-array": ("*d", {"payload": {"items": {"sku": ["a", "z"]}}}),
    "ignore-case": ("O*", {"payload": {"currency": [{"equals-ignore-case": "eur"}]}}),
}
for name, (namepat, where) in patterns.items():
    put("patterns", name, namepat.encode() + b"\xff" + json.dumps(where).encode() + b"\xff" + ev)

# typed-json: DynamoDB items
item = {"aggregateId": {"S": "order-1"}, "sequenceNumber": {"N": "3"}, "eventName": {"S": "OrderPlaced"},
        "aggregateType": {"S": "Order"}, "messageId": {"S": "m-1"}, "timestamp": {"S": "2026-01-02T03:04:05.678Z"},
        "payload": {"M": {"total": {"N": "1200.5"}, "customer": {"M": {"id": {"S": "cust-1"}}},
                          "items": {"L": [{"M": {"sku": {"S": "a"}}}, {"NULL": True}]}, "flag": {"BOOL": False}}},
        "metadata": {"M": {"correlationId": {"S": "corr"}}}}
put("typed-json", "event-item.json", item)
put("typed-json", "every-type.json", {"n": {"N": "123456789012345678901234567890.5"}, "b": {"B": "aGVsbG8="}, "x": {"NULL": True},
    "l": {"L": [{"S": "a"}, {"BOOL": True}]}, "bs": {"BS": ["AQ==", "Ag=="]}, "ss": {"SS": ["a", "b"]}, "ns": {"NS": ["1", "2.5"]}})
put("typed-json", "string-sequence.json", dict(item, sequenceNumber={"S": "3"}))
put("typed-json", "not-an-event.json", {"pk": {"S": "x"}})

def record(seq, name="INSERT", image=item):
    change = {"ApproximateCreationDateTime": 1767323045.5, "Keys": {"aggregateId": {"S": "order-1"}, "sequenceNumber": {"N": "3"}},
              "SequenceNumber": seq, "SizeBytes": 412, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    if name != "REMOVE": change["NewImage"] = image
    if name != "INSERT": change["OldImage"] = image
    return {"eventID": "e1", "eventName": name, "eventVersion": "1.1", "eventSource": "aws:dynamodb", "awsRegion": "us-east-1", "dynamodb": change}

put("get-records", "page.json", {"Records": [record("000000000000000000101"), record("000000000000000000102", "MODIFY")],
    "NextShardIterator": "arn:aws:dynamodb:us-east-1:123:table/events/stream/2026|1|AAAA"})
put("get-records", "closed-end.json", {"Records": []})
put("get-records", "numeric-sequence.json", {"Records": [dict(record("1"), dynamodb=dict(record("1")["dynamodb"], SequenceNumber=12345678901234567890))]})
put("get-records", "poison.json", {"Records": [record("5", image={"pk": {"S": "x"}}), record("6", "REMOVE")], "NextShardIterator": "i"})

stream = "arn:aws:dynamodb:us-east-1:123456789012:table/events/stream/2026-01-01T00:00:00.000"
put("describe-stream", "lineage.json", {"StreamDescription": {"StreamArn": stream, "StreamLabel": "2026-01-01T00:00:00.000",
    "StreamStatus": "ENABLED", "StreamViewType": "NEW_AND_OLD_IMAGES", "TableName": "events",
    "KeySchema": [{"AttributeName": "aggregateId", "KeyType": "HASH"}, {"AttributeName": "sequenceNumber", "KeyType": "RANGE"}],
    "Shards": [{"ShardId": "shardId-1", "SequenceNumberRange": {"StartingSequenceNumber": "100", "EndingSequenceNumber": "200"}},
               {"ShardId": "shardId-2", "ParentShardId": "shardId-1", "SequenceNumberRange": {"StartingSequenceNumber": "201"}}],
    "LastEvaluatedShardId": "shardId-2"}})
put("describe-stream", "moto.json", {"StreamDescription": {"StreamArn": stream, "StreamStatus": "ENABLED",
    "Shards": [{"ShardId": "shardId-00000001", "SequenceNumberRange": {"StartingSequenceNumber": 100000000000000000000}}]}})
put("describe-stream", "minimal.json", {"StreamDescription": {"StreamArn": stream}})
# A hostile listing: parents in a cycle, a shard that is its own parent, a child of the cycle, a repeated id.
put("describe-stream", "parent-cycle.json", {"StreamDescription": {"StreamArn": stream, "StreamStatus": "ENABLED",
    "Shards": [{"ShardId": "shardId-a", "ParentShardId": "shardId-b", "SequenceNumberRange": {"StartingSequenceNumber": "1", "EndingSequenceNumber": "5"}},
               {"ShardId": "shardId-b", "ParentShardId": "shardId-a", "SequenceNumberRange": {"StartingSequenceNumber": "2"}},
               {"ShardId": "shardId-c", "ParentShardId": "shardId-a", "SequenceNumberRange": {"StartingSequenceNumber": "6"}},
               {"ShardId": "shardId-s", "ParentShardId": "shardId-s", "SequenceNumberRange": {"StartingSequenceNumber": "3"}},
               {"ShardId": "shardId-s", "SequenceNumberRange": {"StartingSequenceNumber": "3"}}]}})

put("kinesis", "get-records.json", {"Records": [{"SequenceNumber": "4959", "PartitionKey": "order-1", "Data": "eyJhIjoxfQ==",
    "ApproximateArrivalTimestamp": 1767323045.5}], "NextShardIterator": "AAAA", "MillisBehindLatest": 0})
put("kinesis", "list-shards.json", {"Shards": [{"ShardId": "shardId-000000000000", "HashKeyRange": {"StartingHashKey": "0", "EndingHashKey": "1"},
    "SequenceNumberRange": {"StartingSequenceNumber": "1", "EndingSequenceNumber": "9"}},
    {"ShardId": "shardId-000000000001", "ParentShardId": "shardId-000000000000", "AdjacentParentShardId": "shardId-000000000002",
     "SequenceNumberRange": {"StartingSequenceNumber": "10"}}], "NextToken": "t"})
put("kinesis", "closed.json", {"Records": [], "ChildShards": [{"ShardId": "shardId-2", "ParentShards": ["shardId-0"]}]})

errors = {
    "json-transaction": (0, b'{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","CancellationReasons":[{"Code":"None"},{"Code":"ConditionalCheckFailed","Message":"The conditional request failed"}],"Message":"Transaction cancelled, please refer cancellation reasons for specific reasons [None, ConditionalCheckFailed]"}'),
    "json-validation": (0, b'{"__type":"ValidationException:http://internal.amazon.com/coral/","message":"1 validation error"}'),
    "xml-moto": (3, b'<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse><Errors><Error><Code>SignatureDoesNotMatch</Code>\n<Message>The request signature we calculated does not match &amp; so on</Message></Error></Errors>\n<RequestId>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</RequestId></ErrorResponse>'),
    "html-500": (100, b'<!doctype html>\n<html lang=en>\n<title>500 Internal Server Error</title>\n<h1>Internal Server Error</h1>\n<p>The server encountered an internal error and was unable to complete your request.</p>'),
    "empty-503": (103, b''),
    "throttled-json": (0, b'{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"Rate exceeded"}'),
}
for name, (status, body) in errors.items():
    put("aws-error", name, bytes([status]) + body)

put("event-message", "order-placed.json", ev)
put("event-message", "minimal.json", {"eventName": "X", "aggregateId": "a"})
put("event-message", "exact-numbers.json", dict(event, payload={"total": 1000000000000000000000.01, "n": -0.0, "e": 1e-7}))
put("event-message", "wrong-type.json", dict(event, sequenceNumber="3"))

put("checkpoint", "written.json", {"streamArn": stream, "shardId": "shardId-1", "sequenceNumber": "000000000000000000101",
    "finished": False, "epoch": None, "writtenAt": "2026-01-02T03:04:05.678Z"})
put("checkpoint", "finished.json", {"streamArn": stream, "shardId": "shardId-1", "sequenceNumber": None, "finished": True, "epoch": 4})
put("checkpoint", "bad-sequence.json", {"shardId": "s", "sequenceNumber": "12a", "finished": False})

put("config", "every-kind.json", {"brokers": "kafka-1:9093,kafka-2:9093", "table": "events", "application": "orders-service",
    "exactlyOnce": True, "httpPort": 9400, "routesPollInterval": 5,
    "kafka": {"securityProtocol": "sasl_ssl", "saslMechanism": "SCRAM-SHA-512", "saslUsername": "fanout",
              "sslCaLocation": "/etc/fanout/ca.pem", "properties": ["linger.ms=10", "compression.type=zstd"]}})
put("config", "minimal.json", {"brokers": "127.0.0.1:9092", "streamArn": stream})
put("config", "typo.json", {"brokers": "b", "kafka": {"saslPasword": "x"}})
put("config", "wrong-type.json", {"httpPort": "ninety"})
