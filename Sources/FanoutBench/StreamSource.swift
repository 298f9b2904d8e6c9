import CQRSCore
import Foundation
import HTTPTypes
import Hummingbird
import JSON
import Logging
import NIOCore

/// A DynamoDB Streams endpoint that is never the bottleneck: the records of every
/// shard are rendered once, up front, into one contiguous block of typed JSON, and
/// each GetRecords answer is a prefix, one slice of that block and a suffix.
///
/// It speaks the real JSON protocol (`POST /`, `X-Amz-Target:
/// DynamoDBStreams_20120810.DescribeStream|GetShardIterator|GetRecords`), so the
/// unmodified `fanout` binary reads it through `AWS_ENDPOINT_URL`, over HTTP/1.1
/// keep-alive. Signatures are not checked. Shards stay open: past the last record
/// GetRecords answers an empty page and the same iterator, as an idle shard does.
final class StreamSource: Sendable {
    static let streamARN = "arn:aws:dynamodb:us-east-1:000000000000:table/bench-events/stream/2026-01-01T00:00:00.000"
    /// The most records in one answer: AWS stops at 1 MB, which is ~650 of these records.
    static let maximumPageRecords = 650

    struct Shard: Sendable {
        var id: String
        /// The shard's records, comma-separated typed JSON.
        var block: [UInt8]
        /// Where record i starts in `block` (and, as the last element, the block's end plus one).
        var starts: [Int]
        var firstSequence: UInt64
        var count: Int { starts.count - 1 }
    }

    let shards: [Shard]
    let eventBytes: Int

    /// `events` events, dealt round-robin to `shardCount` shards: 1 KB events of four names
    /// (OrderPlaced, OrderShipped, PaymentReceived, CustomerRegistered) over 10,000 aggregates.
    init(events: Int, shardCount: Int) {
        let payloads = (0..<64).map { Self.typed(PipelineEvents.payload($0)) }
        var shards = (0..<shardCount).map { index in
            Shard(id: "shardId-\(String(format: "%020d", index))", block: [], starts: [], firstSequence: UInt64(index + 1) * 1_000_000_000_000)
        }
        for index in 0..<events {
            let shard = index % shardCount
            let sequence = shards[shard].firstSequence + UInt64(shards[shard].starts.count)
            let event = PipelineEvents.event(index)
            let image =
                #"{"aggregateId":{"S":"\#(event.aggregateID)"},"sequenceNumber":{"N":"\#(event.sequence)"},"eventName":{"S":"\#(event.name)"},"aggregateType":{"S":"\#(event.type)"},"messageId":{"S":"\#(event.messageID)"},"timestamp":{"S":"2026-11-27T12:00:00.000Z"},"payload":\#(payloads[index % payloads.count]),"metadata":{"M":{"correlationId":{"S":"c-\#(index)"}}}}"#
            let record =
                #"{"eventID":"e\#(index)","eventName":"INSERT","eventVersion":"1.1","eventSource":"aws:dynamodb","awsRegion":"us-east-1","dynamodb":{"ApproximateCreationDateTime":1795814466,"Keys":{"aggregateId":{"S":"\#(event.aggregateID)"},"sequenceNumber":{"N":"\#(event.sequence)"}},"NewImage":\#(image),"SequenceNumber":"\#(sequence)","SizeBytes":\#(image.utf8.count),"StreamViewType":"NEW_IMAGE"}}"#
            if !shards[shard].starts.isEmpty { shards[shard].block.append(UInt8(ascii: ",")) }
            shards[shard].starts.append(shards[shard].block.count)
            shards[shard].block.append(contentsOf: record.utf8)
        }
        for index in shards.indices { shards[index].starts.append(shards[index].block.count + 1) }
        self.shards = shards
        self.eventBytes = PipelineEvents.plainJSON(0).utf8.count
    }

    /// DynamoDB typed JSON of a plain JSON value (objects become M, arrays L).
    static func typed(_ value: JSONValue) -> String {
        switch value {
        case .null: return #"{"NULL":true}"#
        case .bool(let flag): return #"{"BOOL":\#(flag)}"#
        case .number(let text): return #"{"N":"\#(text)"}"#
        case .string(let text): return #"{"S":\#(JSONWriter.string(.string(text)))}"#
        case .array(let values): return #"{"L":[\#(values.map(typed).joined(separator: ","))]}"#
        case .object(let object):
            return #"{"M":{\#(object.map { "\(JSONWriter.string(.string($0.key))):\(typed($0.value))" }.joined(separator: ","))}}"#
        }
    }

    // MARK: The protocol

    func answer(target: String, body: [UInt8]) -> (status: Int, body: ByteBuffer) {
        let request = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] ?? [:]
        switch target {
        case "DynamoDBStreams_20120810.DescribeStream":
            let shardList = shards.map { #"{"ShardId":"\#($0.id)","SequenceNumberRange":{"StartingSequenceNumber":"\#($0.firstSequence)"}}"# }
            return (200, ByteBuffer(string: #"{"StreamDescription":{"StreamArn":"\#(Self.streamARN)","StreamLabel":"2026-01-01T00:00:00.000","StreamStatus":"ENABLED","StreamViewType":"NEW_IMAGE","TableName":"bench-events","KeySchema":[{"AttributeName":"aggregateId","KeyType":"HASH"},{"AttributeName":"sequenceNumber","KeyType":"RANGE"}],"Shards":[\#(shardList.joined(separator: ","))]}}"#))
        case "DynamoDBStreams_20120810.GetShardIterator":
            guard let shardID = request["ShardId"] as? String, let shard = shards.firstIndex(where: { $0.id == shardID }) else {
                return Self.fault("ResourceNotFoundException", "no shard \(request["ShardId"] ?? "")")
            }
            let count = shards[shard].count
            let position: Int
            switch request["ShardIteratorType"] as? String {
            case "TRIM_HORIZON": position = 0
            case "LATEST": position = count
            case let type? where type.hasSuffix("_SEQUENCE_NUMBER"):
                guard let text = request["SequenceNumber"] as? String, let sequence = UInt64(text), sequence >= shards[shard].firstSequence else {
                    return Self.fault("ValidationException", "bad SequenceNumber")
                }
                let at = Int(sequence - shards[shard].firstSequence)
                position = min(count, type == "AFTER_SEQUENCE_NUMBER" ? at + 1 : at)
            default: return Self.fault("ValidationException", "bad ShardIteratorType")
            }
            return (200, ByteBuffer(string: #"{"ShardIterator":"\#(shard)/\#(position)"}"#))
        case "DynamoDBStreams_20120810.GetRecords":
            guard let iterator = request["ShardIterator"] as? String, let slash = iterator.firstIndex(of: "/"),
                let shard = Int(iterator[..<slash]), shards.indices.contains(shard),
                let position = Int(iterator[iterator.index(after: slash)...]), (0...shards[shard].count).contains(position)
            else { return Self.fault("ValidationException", "Invalid ShardIterator") }
            let limit = min(max(1, request["Limit"] as? Int ?? 1000), Self.maximumPageRecords)
            let end = min(shards[shard].count, position + limit)
            var buffer = ByteBuffer()
            buffer.reserveCapacity(shards[shard].starts[end] - shards[shard].starts[position] + 64)
            buffer.writeString(#"{"Records":["#)
            if end > position {
                shards[shard].block.withUnsafeBufferPointer { block in
                    _ = buffer.writeBytes(UnsafeBufferPointer(rebasing: block[shards[shard].starts[position]..<(shards[shard].starts[end] - 1)]))
                }
            }
            buffer.writeString(#"],"NextShardIterator":"\#(shard)/\#(end)"}"#)
            return (200, buffer)
        default:
            return Self.fault("UnknownOperationException", "\(target) is not served by the bench stream source")
        }
    }

    static func fault(_ type: String, _ message: String) -> (status: Int, body: ByteBuffer) {
        (400, ByteBuffer(string: #"{"__type":"com.amazonaws.dynamodb.v20120810#\#(type)","message":"\#(message)"}"#))
    }

    /// Serves on 127.0.0.1 (a free port); returns the port once it accepts connections.
    func start() async throws -> Int {
        let router = Router()
        router.post("/") { request, _ -> Response in
            var request = request
            let body = try await request.collectBody(upTo: 1 << 20)
            let target = request.headers[HTTPField.Name("X-Amz-Target")!] ?? ""
            let (status, answer) = self.answer(target: target, body: Array(buffer: body))
            return Response(
                status: .init(code: status),
                headers: [.contentType: "application/x-amz-json-1.0"],
                body: ResponseBody(byteBuffer: answer)
            )
        }
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        var logger = Logger(label: "bench-stream-source")
        logger.logLevel = .warning
        let application = Application(
            router: router,
            configuration: ApplicationConfiguration(address: .hostname("127.0.0.1", port: 0), serverName: "bench-stream-source"),
            onServerRunning: { channel in continuation.yield(channel.localAddress?.port ?? 0) },
            logger: logger
        )
        Task { try await application.runService(gracefulShutdownSignals: []) }
        for await port in ports { return port }
        throw BenchError("the stream source did not start")
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
