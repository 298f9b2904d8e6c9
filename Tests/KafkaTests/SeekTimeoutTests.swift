@testable import Kafka
import Testing

/// librdkafka before 2.0.3 reads `rd_kafka_seek_partitions`'s timeout in microseconds (librdkafka #4230): a 30 s
/// seek gave up after 30 ms, and `KafkaConsumerPositionTests` and `fanout tail --from` failed with
/// "Timed out waiting for 1 remaining partition seek(s)" at load 8 and more. The wrapper scales the argument.
@Suite struct SeekTimeoutTests {
    @Test func theTimeoutIsScaledForLibrdkafkaBefore2_0_3Only() {
        #expect(RDKafkaConsumer.seekTimeoutArgument(30_000, version: 0x0200_02ff) == 30_000_000)
        #expect(RDKafkaConsumer.seekTimeoutArgument(30_000, version: 0x0200_03ff) == 30_000)
        #expect(RDKafkaConsumer.seekTimeoutArgument(30_000, version: 0x0203_00ff) == 30_000)
        // Past what fits, the longest wait there is.
        #expect(RDKafkaConsumer.seekTimeoutArgument(3_000_000, version: 0x0200_02ff) == Int32.max)
    }
}
