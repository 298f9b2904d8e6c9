import Foundation
import JSON
import TestSupport
import Testing

@testable import AWS

/// The hand-written decoders of the GetRecords hot path (`AttributeValue.item(jsonBytes:)`,
/// `GetRecordsOutput(jsonBytes:)`): the same values as the Codable path, and a clear error,
/// never a crash, for hostile input.
@Suite struct TypedJSONScanningTests {
    static func scanError(_ body: () throws(JSONScanError) -> Void) -> JSONScanError? {
        do {
            try body()
            return nil
        } catch {
            return error
        }
    }

    @Test(arguments: [1, 2, 3, 42, 2026] as [UInt64])
    func agreesWithTheCodablePathOnRandomItems(seed: UInt64) throws {
        var generator = AttributeValueGenerator(random: SeededGenerator(seed: seed))
        for iteration in 0..<60 {
            var item: DynamoDBItem = [:]
            for _ in 0..<Int.random(in: 1...6, using: &generator.random) { item[generator.string()] = generator.value() }
            let json = Array(try JSONEncoder().encode(item))
            #expect(try AttributeValue.item(jsonBytes: json) == item, "seed \(seed), iteration \(iteration): \(String(decoding: json, as: UTF8.self))")
        }
    }

    @Test func numbersKeepEveryDigit() throws {
        var generator = AttributeValueGenerator(random: SeededGenerator(seed: 11))
        for _ in 0..<300 {
            let number = generator.number()
            let json = Array(try JSONEncoder().encode(["n": AttributeValue.n(number)]))
            #expect(try AttributeValue.item(jsonBytes: json)["n"]?.numberText == number)
        }
    }

    @Test func decodesAWSWireFormat() throws {
        let json = #"""
            {"n":{"N":"123456789012345678901234567890.5"},"b":{"B":"aGVsbG8="},"x":{"NULL":true},
             "l":{"L":[{"S":"a"},{"BOOL":true}]},"bs":{"BS":["AQ==","Ag=="]}, "e": {"S": "\u00e9\ud83d\ude00\n"},
             "m": {"M": {}}, "ns": {"NS": ["1", "-2.5E+3"]}}
            """#
        let item = try AttributeValue.item(jsonBytes: Array(json.utf8))
        #expect(item["n"] == .n("123456789012345678901234567890.5"))
        #expect(item["b"] == .b(Array("hello".utf8)))
        #expect(item["x"] == .null)
        #expect(item["l"] == .l([.s("a"), .bool(true)]))
        #expect(item["bs"] == .bs([[1], [2]]))
        #expect(item["e"] == .s("é😀\n"))
        #expect(item["m"] == .m([:]))
        #expect(item["ns"] == .ns(["1", "-2.5E+3"]))
    }

    @Test(arguments: [
        (#"{"a": {}}"#, "exactly one of S, N, B, BOOL, NULL, M, L, SS, NS, BS; found none", "$.a"),
        (#"{"a": {"S": "x", "N": "1"}}"#, "found S and N", "$.a"),
        (#"{"a": {"Q": "x"}}"#, #"unknown AttributeValue type "Q""#, "$.a.Q"),
        (#"{"a": {"B": "not base64!"}}"#, "not base64", "$.a.B"),
        (#"{"a": {"N": 1}}"#, "expected a string", "$.a.N"),
        (#"{"a": {"N": "12abc"}}"#, #""12abc" is not a number"#, "$.a.N"),
        (#"{"a": {"N": "NaN"}}"#, "is not a number", "$.a.N"),
        (#"{"a": {"NULL": false}}"#, "NULL must be true", "$.a.NULL"),
        (#"{"a": {"M": []}}"#, "expected an object", "$.a.M"),
        (#"{"a": {"L": [{"S": "x"}, {"S": 5}]}}"#, "expected a string", "$.a.L[1].S"),
        (#"{"a": {"S": "x"}, "a": {"S": "y"}}"#, #"duplicate attribute name "a""#, nil),
        (#"{"a": {"S": "x"}"#, "end of file", nil),
        ("{\"a\": {\"S\": \"\u{01}\"}}", "control character", "$.a.S"),
        (#"{"a": {"S": "x"}} trailing"#, "after the end of the document", nil),
    ] as [(String, String, String?)])
    func rejectsMalformedItemsNamingWhere(json: String, reason: String, path: String?) {
        let error = Self.scanError { () throws(JSONScanError) in _ = try AttributeValue.item(jsonBytes: Array(json.utf8)) }
        #expect(error != nil, "\(json) was accepted")
        #expect(error?.reason.contains(reason) == true, "\(error.map(String.init(describing:)) ?? "")")
        #expect(error?.path == path, "\(error.map(String.init(describing:)) ?? "")")
    }

    @Test func refusesNestingBeyondTheBoundWithoutCrashing() {
        let depth = 100_000
        let json = String(repeating: #"{"L":["#, count: depth) + String(repeating: "]}", count: depth)
        let error = Self.scanError { () throws(JSONScanError) in _ = try AttributeValue.item(jsonBytes: Array(("{\"a\":" + json + "}").utf8)) }
        #expect(error?.reason.contains("nesting deeper than 128 levels") == true, "\(String(describing: error))")
        // Within the bound is fine.
        let shallow = String(repeating: #"{"L":["#, count: 40) + #"{"S":"x"}"# + String(repeating: "]}", count: 40)
        #expect(throws: Never.self) { try AttributeValue.item(jsonBytes: Array(("{\"a\":" + shallow + "}").utf8)) }
    }

    static let page = #"""
        {"Records": [
          {"eventID": "e1", "eventName": "INSERT", "eventVersion": "1.1", "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
           "userIdentity": {"type": "Service", "principalId": "dynamodb.amazonaws.com"},
           "dynamodb": {"ApproximateCreationDateTime": 1795814466.5, "Keys": {"aggregateId": {"S": "a"}, "sequenceNumber": {"N": "1"}},
                        "NewImage": {"aggregateId": {"S": "a"}, "sequenceNumber": {"N": "1"}, "payload": {"M": {"total": {"N": "12.50"}}}},
                        "SequenceNumber": "100000000000000000001", "SizeBytes": 77, "StreamViewType": "NEW_IMAGE"}},
          {"eventID": "e2", "eventName": "REMOVE", "awsRegion": null,
           "dynamodb": {"Keys": {"aggregateId": {"S": "a"}}, "OldImage": {"aggregateId": {"S": "a"}}, "NewImage": null,
                        "SequenceNumber": 200000000000000000002, "ApproximateCreationDateTime": "1795814467"}}
        ], "NextShardIterator": null}
        """#

    @Test func decodesAGetRecordsPageLikeTheCodablePath() throws {
        let scanned = try GetRecordsOutput(jsonBytes: Array(Self.page.utf8))
        let decoded = try JSONDecoder().decode(GetRecordsOutput.self, from: Data(Self.page.utf8))
        #expect(scanned == decoded)
        #expect(scanned.records.count == 2)
        #expect(scanned.records[0].newImage?["payload"] == .m(["total": .n("12.50")]))
        #expect(scanned.records[0].approximateCreationDateTime == Date(timeIntervalSince1970: 1_795_814_466.5))
        #expect(scanned.records[0].sizeBytes == 77)
        #expect(scanned.records[1].sequenceNumber == "200000000000000000002")
        #expect(scanned.records[1].newImage == nil)
        #expect(scanned.records[1].awsRegion == nil)
        #expect(scanned.nextShardIterator == nil)
        #expect(try GetRecordsOutput(jsonBytes: Array(#"{"Records": [], "NextShardIterator": "it-2"}"#.utf8)).nextShardIterator == "it-2")
    }

    @Test(arguments: [
        (#"{"Records":[{"eventID":"1","eventName":"INSERT","dynamodb":{"Keys":{}}}]}"#, "needs a dynamodb.SequenceNumber", "$.Records[0]"),
        (#"{"Records":[{"eventName":"INSERT","dynamodb":{"SequenceNumber":"1"}}]}"#, "needs an eventID", "$.Records[0]"),
        (#"{"Records":[{"eventID":"1","eventName":"INSERT","dynamodb":{"SequenceNumber":"1","NewImage":{"total":{"N":"x"}}}}]}"#,
         #""x" is not a number"#, "$.Records[0].dynamodb.NewImage.total.N"),
        (#"{"Records": {}}"#, "expected an array", "$.Records"),
        ("not json at all", "expected an object", nil),
    ] as [(String, String, String?)])
    func rejectsMalformedPagesNamingWhere(json: String, reason: String, path: String?) {
        let error = Self.scanError { () throws(JSONScanError) in _ = try GetRecordsOutput(jsonBytes: Array(json.utf8)) }
        #expect(error?.reason.contains(reason) == true, "\(String(describing: error))")
        #expect(error?.path == path, "\(String(describing: error))")
    }

    /// `json` as the NewImage of the only record of a page.
    static func page(newImage json: String) -> [UInt8] {
        Array(#"{"Records":[{"eventID":"1","eventName":"INSERT","dynamodb":{"SequenceNumber":"1","NewImage":"#.utf8)
            + Array(json.utf8) + Array("}}]}".utf8)
    }

    /// A page's NewImages are checked, not built (`newImageJSON`), and read back as `readItem` reads them; only
    /// those the check leaves to `readItem` (B or BS values, names with escapes or past ASCII, maps past 64
    /// members) are built when the page is read.
    @Test(arguments: [7, 8, 9] as [UInt64])
    func aPagesNewImagesAreKeptAsCheckedJSON(seed: UInt64) throws {
        var generator = AttributeValueGenerator(random: SeededGenerator(seed: seed))
        var kept = 0
        for iteration in 0..<200 {
            var item: DynamoDBItem = [:]
            // Some maps past 64 members.
            for _ in 0..<Int.random(in: 0...(iteration % 5 == 0 ? 80 : 6), using: &generator.random) { item[generator.string()] = generator.value() }
            // Names the check reads itself.
            if iteration % 2 == 0 { item = Dictionary(uniqueKeysWithValues: item.enumerated().map { ("n\($0.offset)", $0.element.value) }) }
            let json = String(decoding: try JSONEncoder().encode(item), as: UTF8.self)
            let record = try #require(try GetRecordsOutput(jsonBytes: Self.page(newImage: json)).records.first)
            #expect(record.newImage == item, "seed \(seed), iteration \(iteration): \(json)")
            #expect((record.newImageJSON != nil) == isKeptAsTypedJSON(item), "seed \(seed), iteration \(iteration): \(json)")
            if let kept = record.newImageJSON { #expect(String(decoding: kept.bytes[kept.range], as: UTF8.self) == json) }
            if record.newImageJSON != nil { kept += 1 }
        }
        #expect(kept > 20)
    }

    /// Whatever the check refuses, `readItem` words: a page holding a malformed NewImage fails as before.
    @Test func aMalformedNewImageFailsThePageWithReadItemsError() {
        let many = (0..<20).map { #""n\#($0)": {"S": "x"}"# }.joined(separator: ", ")
        let items = [
            #"{"a": {}}"#, #"{"a": {"S": "x", "N": "1"}}"#, #"{"a": {"Q": "x"}}"#, #"{"a": {"B": "not base64!"}}"#,
            #"{"a": {"N": 1}}"#, #"{"a": {"N": "12abc"}}"#, #"{"a": {"N": " 1"}}"#, #"{"a": {"N": "01"}}"#, #"{"a": {"NULL": false}}"#,
            #"{"a": {"M": []}}"#, #"{"a": {"L": [{"S": "x"}, {"S": 5}]}}"#, #"{"a": {"S": "x"}, "a": {"S": "y"}}"#,
            #"{"m": {"M": {"b": {"S": "x"}, "b": {"N": "1"}}}}"#, "{\(many), \"n3\": {\"S\": \"again\"}}",
            "{\(many), \"n19\": {\"S\": \"again\"}}", "{\"a\": {\"S\": \"\u{01}\"}}", #"{"a": {"SS": ["x", 1]}}"#,
            #"{"a": {"NS": ["1", "x"]}}"#, #"{"a": {"BOOL": "true"}}"#, #"{"a": {"L": {}}}"#,
            // Equal as Strings (canonically equivalent), not as bytes.
            "{\"\u{E9}\": {\"S\": \"x\"}, \"e\u{301}\": {\"S\": \"y\"}}",
            #"{"a": {"S": "\ud800"}}"#, #"{"a": {"S": "\udc00"}}"#, #"{"a": {"S": "\x"}}"#, #"{"a": {"BOOL": tru}}"#,
            #"{"a": {"N": "-"}}"#, #"{"a": {"N": "1."}}"#, #"{"a": {"N": "1e"}}"#, #"{"a": {"NULL": true, "S": "x"}}"#,
        ]
        for json in items {
            let itemError = Self.scanError { () throws(JSONScanError) in _ = try AttributeValue.item(jsonBytes: Array(json.utf8)) }
            let pageError = Self.scanError { () throws(JSONScanError) in _ = try GetRecordsOutput(jsonBytes: Self.page(newImage: json)) }
            #expect(itemError != nil, "\(json)")
            #expect(pageError?.reason == itemError?.reason, "\(json)")
            #expect(pageError?.path == itemError?.path.map { "$.Records[0].dynamodb.NewImage" + $0.dropFirst() } ?? "$.Records[0].dynamodb.NewImage", "\(json)")
        }
        // What the check leaves to readItem and readItem reads: built when the page is read.
        let wide = "{" + (0..<65).map { #""n\#($0)": {"S": "x"}"# }.joined(separator: ", ") + "}"
        for json in [
            #"{"a": {"N": "\u0031"}}"#, #"{"a": {"B": "AQ=="}}"#, #"{"a": {"BS": ["AQ=="]}}"#, #"{"\u0061": {"S": "x"}}"#, #"{"é": {"S": "x"}}"#,
            #"{"a": {"\u0053": "x"}}"#, wide,
        ] {
            let record = try? GetRecordsOutput(jsonBytes: Self.page(newImage: json)).records.first
            #expect(record?.newImageJSON == nil && record?.newImage == (try? AttributeValue.item(jsonBytes: Array(json.utf8))), "\(json)")
        }
    }

    @Test func everyTruncationOfAPageIsAnErrorNotACrash() {
        let bytes = Array(Self.page.utf8)
        for length in 1..<bytes.count {
            let error = Self.scanError { () throws(JSONScanError) in _ = try GetRecordsOutput(jsonBytes: Array(bytes[..<length])) }
            #expect(error != nil, "accepted a page cut at \(length)")
        }
    }

    @Test func randomCorruptionsAreErrorsOrValuesNeverCrashes() {
        var random = SeededGenerator(seed: 99)
        let bytes = Array(Self.page.utf8)
        let interesting: [UInt8] = Array("{}[]\",:\\0-eE.nt \u{7F}".utf8) + [0x00, 0x1F, 0xC3, 0xFF]
        var rejected = 0
        for _ in 0..<3000 {
            var mutated = bytes
            for _ in 0..<Int.random(in: 1...4, using: &random) {
                let at = Int.random(in: 0..<mutated.count, using: &random)
                switch Int.random(in: 0..<3, using: &random) {
                case 0: mutated[at] = interesting.randomElement(using: &random)!
                case 1: mutated.remove(at: at)
                default: mutated.insert(interesting.randomElement(using: &random)!, at: at)
                }
            }
            if let page = try? GetRecordsOutput(jsonBytes: mutated) {
                // A NewImage kept as checked JSON reads as an item.
                for record in page.records {
                    guard let json = record.newImageJSON else { continue }
                    var scanner = json.scanner
                    #expect((try? AttributeValue.readItem(from: &scanner)) != nil, "\(String(decoding: mutated, as: UTF8.self))")
                }
            }
            if (try? GetRecordsOutput(jsonBytes: mutated)) == nil {
                rejected += 1
            } else {
                // Strict: whatever it accepts is valid JSON.
                #expect((try? JSONSerialization.jsonObject(with: Data(mutated))) != nil, "\(String(decoding: mutated, as: UTF8.self))")
            }
        }
        #expect(rejected > 0)
    }

    /// `JSONBytes.skipPlainRun` stops at the first `"`, `\`, control character or byte past ASCII (or fewer than
    /// eight bytes before the end), never past one, wherever it lies in a word.
    @Test func skippingAPlainRunStopsAtTheFirstByteThatEndsIt() {
        let plain = Array(" !#[]~\u{7F}aZ09".utf8)
        for stop: UInt8 in [0x22, 0x5C, 0x00, 0x0A, 0x1F, 0x80, 0xC3, 0xFF] {
            for length in 1...26 {
                for at in 0..<length {
                    var bytes = (0..<length).map { plain[$0 % plain.count] }
                    bytes[at] = stop
                    for start in 0...min(at, 3) {
                        let end = bytes.withUnsafeBufferPointer { JSONBytes.skipPlainRun($0, from: start) }
                        #expect(end <= at && (end == at || length - end < 8), "stop \(stop) at \(at) of \(length), from \(start): \(end)")
                    }
                }
            }
        }
        for length in 0...26 {
            let bytes = (0..<length).map { plain[$0 % plain.count] }
            let end = bytes.withUnsafeBufferPointer { JSONBytes.skipPlainRun($0, from: 0) }
            #expect(end == length - length % 8, "plain bytes, \(length)")
        }
    }
}
