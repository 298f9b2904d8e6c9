import CQRSCore
import Testing

@Suite struct ValidationTests {
    struct Line: Sendable {
        var sku: String
        var quantity: Int
    }

    struct Address: Sendable {
        var country: String
        var postcode: String?
    }

    struct Order: Sendable {
        var id: String
        var customer: String
        var total: Double
        var lines: [Line]
        var address: Address
    }

    static let rules = Validation<Order> {
        ValidationRule.required(\.id, "id")
        ValidationRule.pattern(\.id, "id", "o-[0-9]+")
        ValidationRule.length(\.customer, "customer", 1...8)
        ValidationRule.range(\.total, "total", 0.01...1000)
        ValidationRule.count(\.lines, "lines", 1...3)
        ValidationRule.each(\.lines, "lines") {
            ValidationRule.required(\.sku, "sku")
            ValidationRule.range(\.quantity, "quantity", 1...99)
        }
        ValidationRule.nested(\.address, "address") {
            ValidationRule.length(\.country, "country", 2...2)
            ValidationRule.required(\.postcode, "postcode")
        }
    }

    @Test func aValidValueHasNoViolations() {
        let order = Order(id: "o-1", customer: "alice", total: 10, lines: [Line(sku: "a", quantity: 1)], address: Address(country: "DE", postcode: "10115"))
        #expect(Self.rules.violations(of: order).isEmpty)
    }

    @Test func everyViolationIsReportedWithItsPath() {
        let order = Order(
            id: "x-1", customer: "somebody-long", total: 0,
            lines: [Line(sku: "a", quantity: 1), Line(sku: " ", quantity: 0), Line(sku: "c", quantity: 100), Line(sku: "d", quantity: 1)],
            address: Address(country: "DEU", postcode: nil)
        )
        #expect(Self.rules.violations(of: order).map(\.description) == [
            "id: \"x-1\" does not match o-[0-9]+",
            "customer: must be 1 to 8 characters long, was 13",
            "total: must be between 0.01 and 1000.0, was 0.0",
            "lines: must hold 1 to 3 items, held 4",
            "lines[1].sku: is required",
            "lines[1].quantity: must be between 1 and 99, was 0",
            "lines[2].quantity: must be between 1 and 99, was 100",
            "address.country: must be 2 to 2 characters long, was 3",
            "address.postcode: is required",
        ])
    }

    @Test func anEmptyRequiredFieldIsNotAlsoAPatternViolation() {
        let order = Order(id: "", customer: "a", total: 1, lines: [Line(sku: "a", quantity: 1)], address: Address(country: "DE", postcode: "1"))
        #expect(Self.rules.violations(of: order).map(\.path) == ["id"])
    }
}
