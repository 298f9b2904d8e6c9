// swift-tools-version:6.2
import PackageDescription

/// With the `Fuzzing` trait (`scripts/fuzz` builds `--traits Fuzzing`), Fanout's own modules are
/// compiled for libFuzzer's coverage feedback and AddressSanitizer. The dependencies are compiled
/// exactly as for `swift build --build-tests`, so the fuzz driver and the tests share one build of them.
let fuzzing: [SwiftSetting] = [.unsafeFlags(["-sanitize=fuzzer,address"], .when(traits: ["Fuzzing"]))]

/// Every target's Swift settings: the upcoming features, and the Fuzzing trait's flags.
let upcoming: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
] + fuzzing

let package = Package(
    name: "fanout",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "fanout", targets: ["fanout"]),
        .executable(name: "fanout-demo", targets: ["FanoutDemo"]),
        .executable(name: "fanout-bench", targets: ["FanoutBench"]),
        .library(name: "CQRSCore", targets: ["CQRSCore"]),
        .library(name: "Subscribers", targets: ["Subscribers"]),
        .executable(name: "fanout-fuzz", targets: ["FanoutFuzz"]),
    ],
    traits: [
        .trait(name: "Fuzzing", description: "Instrument Fanout's own modules for libFuzzer and AddressSanitizer (scripts/fuzz)"),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-configuration.git", from: "1.4.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CRdKafka",
            pkgConfig: "rdkafka",
            providers: [.apt(["librdkafka-dev"])]
        ),
        // The one byte-level JSON scanner, value, parser and writer.
        .target(name: "JSON", swiftSettings: upcoming),
        // What Fanout writes that others read: the Kafka record as a value, its header names, log metadata keys.
        .target(name: "Contracts", swiftSettings: upcoming),
        .target(
            name: "Kafka",
            dependencies: [
                "CRdKafka", "Contracts",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: upcoming
        ),
        .target(
            name: "AWS",
            dependencies: [
                "JSON", "Contracts",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: upcoming
        ),
        .target(
            name: "CQRSCore",
            dependencies: [
                "JSON", "AWS",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: upcoming
        ),
        .target(
            name: "StreamReader",
            dependencies: [
                "AWS", "Contracts",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: upcoming
        ),
        .target(
            name: "Router",
            dependencies: [
                "JSON", "AWS", "CQRSCore", "StreamReader", "Contracts",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: upcoming
        ),
        .target(
            name: "Delivery",
            dependencies: [
                "JSON", "CQRSCore", "StreamReader", "Router", "Contracts", "Kafka",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: upcoming
        ),
        .target(
            name: "Subscribers",
            dependencies: [
                "JSON", "CQRSCore", "Contracts", "Kafka",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: upcoming
        ),
        .target(
            name: "ExampleDomain",
            dependencies: ["CQRSCore"],
            swiftSettings: upcoming
        ),
        // The settings of every command: flags, FANOUT_* variables, the configuration file and defaults, resolved and
        // checked, and the sidecar's configuration made from them (the fuzz driver parses through it alone).
        .target(
            name: "Settings",
            dependencies: [
                "AWS", "Contracts", "Kafka", "StreamReader", "Delivery",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Configuration", package: "swift-configuration"),
            ],
            swiftSettings: upcoming
        ),
        .target(
            name: "FanoutApp",
            dependencies: [
                "JSON", "Contracts", "AWS", "Kafka", "CQRSCore", "StreamReader", "Router", "Delivery", "Subscribers", "ExampleDomain", "Settings",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Configuration", package: "swift-configuration"),
            ],
            swiftSettings: upcoming
        ),
        .executableTarget(
            name: "fanout",
            dependencies: [
                "FanoutApp", "Settings", "Kafka",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: upcoming
        ),
        .target(
            name: "TestSupport",
            dependencies: ["AWS", "JSON", .product(name: "AsyncHTTPClient", package: "async-http-client")],
            path: "Tests/TestSupport",
            swiftSettings: upcoming
        ),
        .executableTarget(
            name: "FanoutDemo",
            dependencies: [
                "JSON", "Contracts", "AWS", "CQRSCore", "ExampleDomain", "Kafka", "Router", "Delivery", "Subscribers",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: upcoming
        ),
        .executableTarget(
            name: "FanoutBench",
            dependencies: [
                "JSON", "Contracts", "AWS", "CQRSCore", "Router", "Delivery", "Kafka", "Subscribers",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            swiftSettings: upcoming
        ),
        // Fuzz targets of every parser of outside input; scripts/fuzz builds the driver with libFuzzer.
        .target(
            name: "FuzzTargets",
            dependencies: ["JSON", "AWS", "CQRSCore", "Settings", "Kafka", "Router", "Delivery", "StreamReader"],
            path: "Fuzz/Targets",
            swiftSettings: upcoming
        ),
        // With the Fuzzing trait libFuzzer supplies the entry point (Fuzz/Driver's `#if LIBFUZZER`).
        .executableTarget(
            name: "FanoutFuzz",
            dependencies: ["FuzzTargets"],
            path: "Fuzz/Driver",
            swiftSettings: upcoming + [
                .unsafeFlags(["-parse-as-library"], .when(traits: ["Fuzzing"])),
                .define("LIBFUZZER", .when(traits: ["Fuzzing"])),
            ],
            linkerSettings: [.unsafeFlags(["-sanitize=fuzzer,address"], .when(traits: ["Fuzzing"]))]
        ),
        .testTarget(name: "FuzzTests", dependencies: ["FuzzTargets"], swiftSettings: upcoming),
        .testTarget(name: "JSONTests", dependencies: ["JSON", "AWS", "TestSupport"], swiftSettings: upcoming),
        .testTarget(name: "KafkaTests", dependencies: ["Kafka", "Contracts", "TestSupport"], swiftSettings: upcoming),
        .testTarget(name: "AWSTests", dependencies: ["AWS", "JSON", "TestSupport", .product(name: "Metrics", package: "swift-metrics")], swiftSettings: upcoming),
        .testTarget(name: "CQRSCoreTests", dependencies: ["CQRSCore", "JSON", "ExampleDomain", "TestSupport"], swiftSettings: upcoming),
        .testTarget(name: "StreamReaderTests", dependencies: ["StreamReader", "TestSupport"], swiftSettings: upcoming),
        .testTarget(
            name: "RouterTests",
            dependencies: [
                "Router", "JSON", "Contracts", "TestSupport",
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
            ],
            swiftSettings: upcoming
        ),
        .testTarget(
            name: "DeliveryTests",
            dependencies: ["Delivery", "Router", "JSON", "Contracts", "Kafka", "TestSupport", .product(name: "MetricsTestKit", package: "swift-metrics")],
            swiftSettings: upcoming
        ),
        .testTarget(name: "SubscribersTests", dependencies: ["Subscribers", "JSON", "Contracts", "TestSupport"], swiftSettings: upcoming),
        .testTarget(
            name: "EndToEndTests",
            dependencies: [
                "FanoutApp", "Settings", "Delivery", "JSON", "Contracts", "ExampleDomain", "TestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
            ],
            swiftSettings: upcoming
        ),
    ],
    swiftLanguageModes: [.v6]
)
