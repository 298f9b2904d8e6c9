import CRdKafka

/// Properties handed to librdkafka, rendered in one place.
///
/// Any librdkafka property may be set (see librdkafka's CONFIGURATION.md); the
/// producer, consumer and admin client each add their own defaults for the keys
/// the configuration leaves unset. An unknown property or a bad value makes the
/// client's initialiser throw a ``KafkaError`` naming the property.
public struct KafkaConfiguration: Sendable {
    /// Every property, by its librdkafka name (`bootstrap.servers`, `linger.ms`, ...).
    public var properties: [String: String]

    /// - Parameters:
    ///   - bootstrapServers: `bootstrap.servers`, a comma-separated `host:port` list.
    ///   - properties: any other librdkafka properties.
    public init(bootstrapServers: String, properties: [String: String] = [:]) {
        self.properties = properties
        self.properties["bootstrap.servers"] = bootstrapServers
    }

    /// The value of one librdkafka property.
    public subscript(key: String) -> String? {
        get { properties[key] }
        set { properties[key] = newValue }
    }

    /// `bootstrap.servers`.
    public var bootstrapServers: String {
        get { properties["bootstrap.servers"] ?? "" }
        set { properties["bootstrap.servers"] = newValue }
    }

    /// The first property librdkafka itself refuses (in order of name), with librdkafka's reason; nil when it
    /// accepts them all. Nothing connects: each property is set on an `rd_kafka_conf_t` that is then destroyed.
    public func firstRejectedProperty() -> (key: String, reason: String)? {
        for (key, value) in properties.sorted(by: { $0.key < $1.key }) {
            do {
                let conf = try RDKafkaConfig.make([key: value])
                rd_kafka_conf_destroy(conf)
            } catch let error as KafkaError {
                return (key, error.message)
            } catch {
                return (key, "\(error)")
            }
        }
        return nil
    }

    /// The properties with `defaults` filled in where this configuration leaves them unset.
    func rendered(defaults: [String: String]) -> [String: String] {
        properties.merging(defaults) { explicit, _ in explicit }
    }
}
