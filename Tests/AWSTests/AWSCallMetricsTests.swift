@testable import AWS
import CoreMetrics
import Testing

/// An AWS client's metrics are created once (not per call attempt) and their labels are bounded
/// (docs/operations.md, "Metrics").
@Suite struct AWSCallMetricsTests {
    @Test func eachOperationsMetricsAreCreatedOnce() {
        let metrics = AWSCallMetrics()
        let first = metrics.operation("DynamoDBStreams.GetRecords")
        let again = metrics.operation("DynamoDBStreams.GetRecords")
        #expect(first.requests === again.requests)
        #expect(first.duration === again.duration)
        #expect(first.throttles === again.throttles)
        #expect(metrics.operation("DynamoDB.Query").requests !== first.requests)
        #expect(metrics.errors("DynamoDB.Query", code: "ThrottlingException") === metrics.errors("DynamoDB.Query", code: "ThrottlingException"))
    }

    @Test func errorCodesFromTheServerShareOneLabelPastTheBound() {
        let metrics = AWSCallMetrics()
        let labels = (0..<100).map { index in
            metrics.errors("Kinesis.GetRecords", code: "Invented\(index)").dimensions.first { $0.0 == "code" }?.1
        }
        #expect(Set(labels).count == AWSCallMetrics.maximumErrorCodes + 1)
        #expect(labels.prefix(AWSCallMetrics.maximumErrorCodes) == (0..<AWSCallMetrics.maximumErrorCodes).map { "Invented\($0)" }[...])
        #expect(labels.dropFirst(AWSCallMetrics.maximumErrorCodes).allSatisfy { $0 == AWSCallMetrics.otherErrorCode })
        // A code labelled before the bound keeps its label.
        #expect(metrics.errors("Kinesis.GetRecords", code: "Invented3").dimensions.first { $0.0 == "code" }?.1 == "Invented3")
    }
}
