import Foundation
import Testing

@testable import AWS

@Suite struct AttributeValueTests {
    static let item: DynamoDBItem = [
        "pk": .s("order-1"),
        "big": .n("123456789012345678901234567890.5"),
        "tiny": .n("-0.000000000000000000000000000000000000001"),
        "blob": .b([0, 1, 2, 0xFE, 0xFF]),
        "flag": .bool(false),
        "nothing": .null,
        "payload": .m([
            "lines": .l([.m(["sku": .s("ä-1"), "qty": .n("2")]), .n("1E+30"), .l([])]),
            "empty": .m([:]),
        ]),
        "tags": .ss(["a", "b"]),
        "scores": .ns(["1", "99999999999999999999999999999999999999"]),
        "blobs": .bs([[1], [2, 3], []]),
    ]

    @Test func roundTripIsLossless() throws {
        let data = try JSONEncoder().encode(Self.item)
        let decoded = try JSONDecoder().decode(DynamoDBItem.self, from: data)
        #expect(decoded == Self.item)
        let text = String(decoding: data, as: UTF8.self)
        #expect(text.contains(#""N":"123456789012345678901234567890.5""#))
        #expect(text.contains(#""B":"AAEC\/v8=""#) || text.contains(#""B":"AAEC/v8=""#))
    }

    @Test func decodesAWSWireFormat() throws {
        let json = #"""
            {"n":{"N":"123456789012345678901234567890.5"},"b":{"B":"aGVsbG8="},"x":{"NULL":true},
             "l":{"L":[{"S":"a"},{"BOOL":true}]},"bs":{"BS":["AQ==","Ag=="]}}
            """#
        let item = try JSONDecoder().decode(DynamoDBItem.self, from: Data(json.utf8))
        #expect(item["n"] == .n("123456789012345678901234567890.5"))
        #expect(item["b"] == .b(Array("hello".utf8)))
        #expect(item["x"] == .null)
        #expect(item["l"] == .l([.s("a"), .bool(true)]))
        #expect(item["bs"] == .bs([[1], [2]]))
    }

    @Test(arguments: [
        #"{}"#, #"{"S":"a","N":"1"}"#, #"{"Q":"a"}"#, #"{"B":"not base64!"}"#, #"{"N":1}"#, #"{"NULL":false}"#,
        #"{"M":[]}"#,
    ])
    func rejectsMalformedValues(_ json: String) {
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(AttributeValue.self, from: Data(json.utf8))
        }
    }
}
