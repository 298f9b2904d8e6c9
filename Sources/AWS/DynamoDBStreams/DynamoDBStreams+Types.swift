import Foundation

public struct StreamSummary: Sendable, Hashable, Decodable {
    public var streamARN: String
    public var tableName: String?
    public var streamLabel: String?

    public init(streamARN: String, tableName: String? = nil, streamLabel: String? = nil) {
        self.streamARN = streamARN
        self.tableName = tableName
        self.streamLabel = streamLabel
    }

    enum CodingKeys: String, CodingKey {
        case streamARN = "StreamArn"
        case tableName = "TableName"
        case streamLabel = "StreamLabel"
    }
}

public struct Shard: Sendable, Hashable, Codable {
    public var shardID: String
    public var parentShardID: String?
    /// The second parent of a shard made by merging two (Kinesis only; DynamoDB Streams never merges).
    public var adjacentParentShardID: String?
    public var startingSequenceNumber: String?
    /// Set once the shard is closed: no record after it will ever come.
    public var endingSequenceNumber: String?

    public init(
        shardID: String,
        parentShardID: String? = nil,
        adjacentParentShardID: String? = nil,
        startingSequenceNumber: String? = nil,
        endingSequenceNumber: String? = nil
    ) {
        self.shardID = shardID
        self.parentShardID = parentShardID
        self.adjacentParentShardID = adjacentParentShardID
        self.startingSequenceNumber = startingSequenceNumber
        self.endingSequenceNumber = endingSequenceNumber
    }

    public var isClosed: Bool { endingSequenceNumber != nil }

    /// The shards that must be read to their end before this one: its parent and, after a merge, the adjacent parent.
    public var parentShardIDs: [String] { [parentShardID, adjacentParentShardID].compactMap { $0 } }

    enum CodingKeys: String, CodingKey {
        case shardID = "ShardId"
        case parentShardID = "ParentShardId"
        case adjacentParentShardID = "AdjacentParentShardId"
        case sequenceNumberRange = "SequenceNumberRange"
    }

    enum RangeKeys: String, CodingKey {
        case startingSequenceNumber = "StartingSequenceNumber"
        case endingSequenceNumber = "EndingSequenceNumber"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        shardID = try c.decode(String.self, forKey: .shardID)
        parentShardID = try c.decodeIfPresent(String.self, forKey: .parentShardID)
        adjacentParentShardID = try c.decodeIfPresent(String.self, forKey: .adjacentParentShardID)
        if c.contains(.sequenceNumberRange), try !c.decodeNil(forKey: .sequenceNumberRange) {
            let range = try c.nestedContainer(keyedBy: RangeKeys.self, forKey: .sequenceNumberRange)
            startingSequenceNumber = try range.decodeLenientString(forKey: .startingSequenceNumber)
            endingSequenceNumber = try range.decodeLenientString(forKey: .endingSequenceNumber)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(shardID, forKey: .shardID)
        try c.encodeIfPresent(parentShardID, forKey: .parentShardID)
        try c.encodeIfPresent(adjacentParentShardID, forKey: .adjacentParentShardID)
        if startingSequenceNumber != nil || endingSequenceNumber != nil {
            var range = c.nestedContainer(keyedBy: RangeKeys.self, forKey: .sequenceNumberRange)
            try range.encodeIfPresent(startingSequenceNumber, forKey: .startingSequenceNumber)
            try range.encodeIfPresent(endingSequenceNumber, forKey: .endingSequenceNumber)
        }
    }
}

public struct StreamDescription: Sendable, Hashable, Decodable {
    public var streamARN: String
    public var streamLabel: String?
    /// `ENABLING`, `ENABLED`, `DISABLING`, `DISABLED`.
    public var streamStatus: String
    public var streamViewType: StreamViewType?
    public var tableName: String?
    public var keySchema: [KeySchemaElement]
    public var shards: [Shard]
    /// Set when more shards follow: pass it as `exclusiveStartShardID`.
    public var lastEvaluatedShardID: String?

    public init(
        streamARN: String,
        streamLabel: String? = nil,
        streamStatus: String,
        streamViewType: StreamViewType? = nil,
        tableName: String? = nil,
        keySchema: [KeySchemaElement] = [],
        shards: [Shard] = [],
        lastEvaluatedShardID: String? = nil
    ) {
        self.streamARN = streamARN
        self.streamLabel = streamLabel
        self.streamStatus = streamStatus
        self.streamViewType = streamViewType
        self.tableName = tableName
        self.keySchema = keySchema
        self.shards = shards
        self.lastEvaluatedShardID = lastEvaluatedShardID
    }

    enum CodingKeys: String, CodingKey {
        case streamARN = "StreamArn"
        case streamLabel = "StreamLabel"
        case streamStatus = "StreamStatus"
        case streamViewType = "StreamViewType"
        case tableName = "TableName"
        case keySchema = "KeySchema"
        case shards = "Shards"
        case lastEvaluatedShardID = "LastEvaluatedShardId"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        streamARN = try c.decode(String.self, forKey: .streamARN)
        streamLabel = try c.decodeIfPresent(String.self, forKey: .streamLabel)
        streamStatus = try c.decodeIfPresent(String.self, forKey: .streamStatus) ?? "UNKNOWN"
        streamViewType = try c.decodeIfPresent(String.self, forKey: .streamViewType).flatMap(StreamViewType.init(rawValue:))
        tableName = try c.decodeIfPresent(String.self, forKey: .tableName)
        keySchema = try c.decodeIfPresent([KeySchemaElement].self, forKey: .keySchema) ?? []
        shards = try c.decodeIfPresent([Shard].self, forKey: .shards) ?? []
        lastEvaluatedShardID = try c.decodeIfPresent(String.self, forKey: .lastEvaluatedShardID)
    }
}

/// Where a shard iterator starts.
public enum ShardIteratorType: Sendable, Hashable {
    /// The oldest record still in the shard.
    case trimHorizon
    /// Just after the newest record: only records written from now on.
    case latest
    case atSequenceNumber(String)
    case afterSequenceNumber(String)

    var wireName: String {
        switch self {
        case .trimHorizon: "TRIM_HORIZON"
        case .latest: "LATEST"
        case .atSequenceNumber: "AT_SEQUENCE_NUMBER"
        case .afterSequenceNumber: "AFTER_SEQUENCE_NUMBER"
        }
    }

    var sequenceNumber: String? {
        switch self {
        case .trimHorizon, .latest: nil
        case .atSequenceNumber(let s), .afterSequenceNumber(let s): s
        }
    }
}

/// One change of one item.
public struct StreamRecord: Sendable, Hashable, Decodable {
    public var eventID: String
    /// `INSERT`, `MODIFY` or `REMOVE`.
    public var eventName: String
    /// The item's key attributes. Read from a GetRecords page they are built from their typed JSON when
    /// asked for (only dead letters use them).
    public var keys: DynamoDBItem {
        get { keysJSON?.item ?? builtKeys }
        set {
            builtKeys = newValue
            keysJSON = nil
        }
    }
    private var keysJSON: ItemJSON?
    private var builtKeys: DynamoDBItem
    /// The item after the change. Read from a GetRecords page it is built from `newImageJSON` each time it
    /// is asked for: the router writes most events from those bytes without building it.
    public var newImage: DynamoDBItem? {
        get { newImageJSON?.item ?? builtNewImage }
        set {
            builtNewImage = newValue
            newImageJSON = nil
        }
    }
    /// The NewImage's typed JSON as the GetRecords page held it, checked when the page was read; nil when
    /// the record has no NewImage, was made from values, or its NewImage holds what the check leaves to
    /// `AttributeValue.readItem` (B or BS values, for one): then `newImage` was built when it was read.
    public private(set) var newImageJSON: ItemJSON?
    private var builtNewImage: DynamoDBItem?
    public var oldImage: DynamoDBItem?
    public var sequenceNumber: String
    public var approximateCreationDateTime: Date?
    public var sizeBytes: Int?
    public var awsRegion: String?
    /// Set when the source record is not a DynamoDB change at all (a Kinesis record whose data is
    /// something else): the record is carried, not dropped, so the router can dead-letter it.
    /// `eventName` is then empty and `keys` empty.
    public var unreadable: UnreadableRecord?

    public init(
        eventID: String,
        eventName: String,
        keys: DynamoDBItem,
        newImage: DynamoDBItem? = nil,
        oldImage: DynamoDBItem? = nil,
        sequenceNumber: String,
        approximateCreationDateTime: Date? = nil,
        sizeBytes: Int? = nil,
        awsRegion: String? = nil,
        unreadable: UnreadableRecord? = nil
    ) {
        self.eventID = eventID
        self.eventName = eventName
        self.builtKeys = keys
        self.builtNewImage = newImage
        self.oldImage = oldImage
        self.sequenceNumber = sequenceNumber
        self.approximateCreationDateTime = approximateCreationDateTime
        self.sizeBytes = sizeBytes
        self.awsRegion = awsRegion
        self.unreadable = unreadable
    }

    /// A record read from a page, its NewImage kept as typed JSON.
    init(
        eventID: String, eventName: String, keysJSON: ItemJSON?, builtKeys: DynamoDBItem, newImageJSON: ItemJSON?, builtNewImage: DynamoDBItem?,
        oldImage: DynamoDBItem?, sequenceNumber: String, approximateCreationDateTime: Date?, sizeBytes: Int?, awsRegion: String?
    ) {
        self.init(
            eventID: eventID, eventName: eventName, keys: builtKeys, newImage: builtNewImage, oldImage: oldImage, sequenceNumber: sequenceNumber,
            approximateCreationDateTime: approximateCreationDateTime, sizeBytes: sizeBytes, awsRegion: awsRegion
        )
        self.keysJSON = keysJSON
        self.newImageJSON = newImageJSON
    }

    /// Equal when every field is, the NewImage compared as items (however each record holds it).
    public static func == (lhs: StreamRecord, rhs: StreamRecord) -> Bool {
        lhs.eventID == rhs.eventID && lhs.eventName == rhs.eventName && lhs.keys == rhs.keys && lhs.newImage == rhs.newImage
            && lhs.oldImage == rhs.oldImage && lhs.sequenceNumber == rhs.sequenceNumber
            && lhs.approximateCreationDateTime == rhs.approximateCreationDateTime && lhs.sizeBytes == rhs.sizeBytes
            && lhs.awsRegion == rhs.awsRegion && lhs.unreadable == rhs.unreadable
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(eventID)
        hasher.combine(sequenceNumber)
        hasher.combine(newImage)
    }

    /// A record that could not be read as a DynamoDB change, with why.
    public static func makeUnreadable(sequenceNumber: String, data: [UInt8], partitionKey: String?, arrival: Date?, reason: String) -> StreamRecord {
        StreamRecord(
            eventID: "", eventName: "", keys: [:], sequenceNumber: sequenceNumber, approximateCreationDateTime: arrival,
            sizeBytes: data.count, unreadable: UnreadableRecord(data: data, partitionKey: partitionKey, reason: reason)
        )
    }

    enum CodingKeys: String, CodingKey {
        case eventID, eventName, awsRegion, dynamodb
    }

    enum ChangeKeys: String, CodingKey {
        case keys = "Keys"
        case newImage = "NewImage"
        case oldImage = "OldImage"
        case sequenceNumber = "SequenceNumber"
        case approximateCreationDateTime = "ApproximateCreationDateTime"
        case sizeBytes = "SizeBytes"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        eventID = try c.decode(String.self, forKey: .eventID)
        eventName = try c.decode(String.self, forKey: .eventName)
        awsRegion = try c.decodeIfPresent(String.self, forKey: .awsRegion)
        let change = try c.nestedContainer(keyedBy: ChangeKeys.self, forKey: .dynamodb)
        builtKeys = try change.decodeIfPresent(DynamoDBItem.self, forKey: .keys) ?? [:]
        builtNewImage = try change.decodeIfPresent(DynamoDBItem.self, forKey: .newImage)
        oldImage = try change.decodeIfPresent(DynamoDBItem.self, forKey: .oldImage)
        guard let sequence = try change.decodeLenientString(forKey: .sequenceNumber) else {
            throw DecodingError.keyNotFound(
                ChangeKeys.sequenceNumber,
                .init(codingPath: change.codingPath, debugDescription: "a stream record needs a SequenceNumber")
            )
        }
        sequenceNumber = sequence
        // Epoch seconds as a JSON number (AWS and moto); accept a numeric string too.
        if let seconds = try? change.decodeIfPresent(Double.self, forKey: .approximateCreationDateTime) {
            approximateCreationDateTime = Date(timeIntervalSince1970: seconds)
        } else if let text = try? change.decodeIfPresent(String.self, forKey: .approximateCreationDateTime),
            let seconds = Double(text)
        {
            approximateCreationDateTime = Date(timeIntervalSince1970: seconds)
        }
        sizeBytes = try? change.decodeIfPresent(Int.self, forKey: .sizeBytes)
    }
}

/// The bytes of a source record that is not a DynamoDB change, and why it could not be read as one.
public struct UnreadableRecord: Sendable, Hashable {
    public var data: [UInt8]
    /// The Kinesis partition key, when the record has one.
    public var partitionKey: String?
    /// One line: what was expected and what was found.
    public var reason: String

    public init(data: [UInt8], partitionKey: String?, reason: String) {
        self.data = data
        self.partitionKey = partitionKey
        self.reason = reason
    }
}

public struct GetRecordsOutput: Sendable, Hashable, Decodable {
    public var records: [StreamRecord]
    /// nil once the shard is closed and read to its end.
    public var nextShardIterator: String?

    public init(records: [StreamRecord], nextShardIterator: String?) {
        self.records = records
        self.nextShardIterator = nextShardIterator
    }

    enum CodingKeys: String, CodingKey {
        case records = "Records"
        case nextShardIterator = "NextShardIterator"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        records = try c.decodeIfPresent([StreamRecord].self, forKey: .records) ?? []
        nextShardIterator = try c.decodeIfPresent(String.self, forKey: .nextShardIterator)
    }
}

extension KeyedDecodingContainer {
    /// A string, or a number given as a JSON number (kept as its decimal text).
    func decodeLenientString(forKey key: Key) throws -> String? {
        guard contains(key), try !decodeNil(forKey: key) else { return nil }
        if let text = try? decode(String.self, forKey: key) { return text }
        if let integer = try? decode(UInt64.self, forKey: key) { return String(integer) }
        if let decimal = try? decode(Decimal.self, forKey: key) { return "\(decimal)" }
        throw DecodingError.typeMismatch(
            String.self,
            .init(codingPath: codingPath + [key], debugDescription: "expected a sequence number (string or number)")
        )
    }
}
