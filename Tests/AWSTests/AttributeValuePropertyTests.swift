import Foundation
import TestSupport
import Testing

@testable import AWS


/// Random attribute values: every type, nested maps and lists, numbers as
/// decimal strings of up to 38 significant digits, any Unicode in strings.
struct AttributeValueGenerator {
    var random: SeededGenerator

    static let scalars: [Unicode.Scalar] = Array("aZ09 _-.\"\\/\n\t{}[]:,é中😀".unicodeScalars) + ["\u{0}", "\u{1F}", "\u{FEFF}"]

    mutating func string(maxLength: Int = 12) -> String {
        var text = ""
        for _ in 0..<Int.random(in: 0...maxLength, using: &random) {
            text.unicodeScalars.append(Self.scalars.randomElement(using: &random)!)
        }
        return text
    }

    mutating func number() -> String {
        let digits = Int.random(in: 1...38, using: &random)
        var text = Bool.random(using: &random) ? "-" : ""
        var mantissa = String(Int.random(in: 1...9, using: &random))
        for _ in 1..<digits { mantissa.append(String(Int.random(in: 0...9, using: &random))) }
        let point = Int.random(in: 0...digits, using: &random)
        if point == digits {
            text += mantissa
        } else if point == 0 {
            text += "0." + mantissa
        } else {
            let index = mantissa.index(mantissa.startIndex, offsetBy: point)
            text += mantissa[..<index] + "." + mantissa[index...]
        }
        if Int.random(in: 0..<8, using: &random) == 0 { text += "E\(Int.random(in: -125...125, using: &random))" }
        return text
    }

    mutating func bytes() -> [UInt8] {
        (0..<Int.random(in: 0...16, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
    }

    mutating func value(depth: Int = 0) -> AttributeValue {
        let kinds = depth >= 4 ? 8 : 10
        switch Int.random(in: 0..<kinds, using: &random) {
        case 0: return .s(string())
        case 1: return .n(number())
        case 2: return .b(bytes())
        case 3: return .bool(Bool.random(using: &random))
        case 4: return .null
        case 5: return .ss(Array(Set((0..<Int.random(in: 1...4, using: &random)).map { _ in string() + "s" })))
        case 6: return .ns(Array(Set((0..<Int.random(in: 1...4, using: &random)).map { _ in number() })))
        case 7: return .bs((0..<Int.random(in: 1...3, using: &random)).map { _ in bytes() })
        case 8:
            var map: [String: AttributeValue] = [:]
            for _ in 0..<Int.random(in: 0...5, using: &random) { map[string()] = value(depth: depth + 1) }
            return .m(map)
        default:
            return .l((0..<Int.random(in: 0...5, using: &random)).map { _ in value(depth: depth + 1) })
        }
    }
}

@Suite struct AttributeValuePropertyTests {
    @Test(arguments: [1, 2, 3, 42, 2026] as [UInt64])
    func randomValuesSurviveAJSONRoundTrip(seed: UInt64) throws {
        var generator = AttributeValueGenerator(random: SeededGenerator(seed: seed))
        for iteration in 0..<60 {
            var item: DynamoDBItem = [:]
            for _ in 0..<Int.random(in: 1...6, using: &generator.random) { item[generator.string()] = generator.value() }
            let json = try JSONEncoder().encode(item)
            let decoded = try JSONDecoder().decode(DynamoDBItem.self, from: json)
            #expect(decoded == item, "seed \(seed), iteration \(iteration): \(String(decoding: json, as: UTF8.self))")
            // And once more through the wire text, byte for byte.
            #expect(try JSONDecoder().decode(DynamoDBItem.self, from: JSONEncoder().encode(decoded)) == item)
        }
    }

    @Test func numbersKeepEveryDigit() throws {
        var generator = AttributeValueGenerator(random: SeededGenerator(seed: 7))
        for _ in 0..<300 {
            let number = generator.number()
            let json = try JSONEncoder().encode(AttributeValue.n(number))
            #expect(try JSONDecoder().decode(AttributeValue.self, from: json).numberText == number)
        }
    }
}
