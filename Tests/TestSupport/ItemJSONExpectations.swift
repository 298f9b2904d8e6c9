import AWS

/// Whether a GetRecords page keeps `item` as checked typed JSON (`StreamRecord.newImageJSON`) when its JSON
/// is written by Foundation's `JSONEncoder` (`escapingSlashes` unless `.withoutEscapingSlashes`): no B or BS
/// value, every member name printable ASCII that the encoder writes without an escape, at most 64 members a map.
public func isKeptAsTypedJSON(_ item: DynamoDBItem, escapingSlashes: Bool = true) -> Bool {
    func plain(_ name: String) -> Bool {
        name.utf8.allSatisfy {
            $0 >= 0x20 && $0 < 0x80 && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") && !(escapingSlashes && $0 == UInt8(ascii: "/"))
        }
    }
    func kept(_ value: AttributeValue) -> Bool {
        switch value {
        case .b, .bs: false
        case .m(let map): isKeptAsTypedJSON(map, escapingSlashes: escapingSlashes)
        case .l(let list): list.allSatisfy(kept)
        default: true
        }
    }
    return item.count <= 64 && item.allSatisfy { plain($0.key) && kept($0.value) }
}
