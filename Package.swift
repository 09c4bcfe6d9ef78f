// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "Rumor",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "rumor", targets: ["rumor"]),
        .executable(name: "rumor-agent", targets: ["RumorAgentCommand"]),
        .executable(name: "rumor-mcp", targets: ["RumorMCPCommand"]),
        .executable(name: "rumor-bench", targets: ["RumorBenchmarks"]),
        .library(name: "RumorCore", targets: ["RumorCore"]),
        .library(name: "RumorWire", targets: ["RumorWire"]),
        .library(name: "RumorAgent", targets: ["RumorAgent"]),
        .library(name: "RumorAPI", targets: ["RumorAPI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/modelcontextprotocol/swift-sdk", exact: "0.12.1"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
    ],
    targets: [
        // Pure protocol core: no I/O, no clock, no global randomness.
        .target(name: "RumorCore", dependencies: [.product(name: "HeapModule", package: "swift-collections")]),
        // Wire codecs: memberlist-compatible bytes <-> RumorCore messages.
        .target(name: "RumorWire", dependencies: ["RumorCore", .product(name: "Crypto", package: "swift-crypto")]),
        // The simulator: the real core machines on a virtual clock and network.
        .target(name: "RumorSimulation", dependencies: ["RumorCore", "RumorWire"]),
        // Micro-benchmarks of the hot paths (`swift run -c release rumor-bench`).
        .executableTarget(name: "RumorBenchmarks", dependencies: ["RumorCore", "RumorWire"]),
        // What the local API offers (the AgentControl protocol, its types, request decoding).
        .target(name: "RumorAPI", dependencies: ["RumorCore", "RumorWire"]),
        // The NIO runtime that drives the core over real sockets, plus the local HTTP API.
        .target(
            name: "RumorAgent",
            dependencies: [
                "RumorCore",
                "RumorWire",
                "RumorAPI",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "TOMLKit", package: "TOMLKit"),
            ],
            resources: [.embedInCode("API/StatusPage.html")]
        ),
        // The CLI's client side: commands that talk to an agent over a plain-socket HTTP client.
        // No Foundation, so that `rumor put` starts and finishes in a few milliseconds.
        .target(name: "RumorCLI", dependencies: [.product(name: "ArgumentParser", package: "swift-argument-parser")]),
        // `rumor`, the command users type: the client commands, linked statically; it hands
        // `agent`, `sim` and `context` to `rumor-agent`.
        .executableTarget(
            name: "rumor",
            dependencies: ["RumorCLI", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            linkerSettings: [.unsafeFlags(["-static-stdlib", "-l_FoundationCShims", "-l_FoundationCollections", "-lswiftSynchronization"])]
        ),
        // `rumor-agent`: the agent, the simulator and `context`, plus the client commands for help.
        .executableTarget(
            name: "RumorAgentCommand",
            dependencies: [
                "RumorAgent",
                "RumorCLI",
                "RumorCore",
                "RumorSimulation",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // `rumor-mcp`: the MCP server (`rumor mcp`), apart from the agent.
        .executableTarget(
            name: "RumorMCPCommand",
            dependencies: [
                "RumorCLI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "MCP", package: "swift-sdk"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // libFuzzer targets, one per decoder family (built with the fuzzer flags by Fuzz/run.sh).
        .executableTarget(name: "FuzzPacket", dependencies: ["RumorWire"], path: "Fuzz/FuzzPacket"),
        .executableTarget(name: "FuzzStream", dependencies: ["RumorWire"], path: "Fuzz/FuzzStream"),
        .executableTarget(name: "FuzzReplication", dependencies: ["RumorWire"], path: "Fuzz/FuzzReplication"),
        .executableTarget(name: "FuzzAPI", dependencies: ["RumorAPI"], path: "Fuzz/FuzzAPI"),
        .testTarget(
            name: "RumorCoreTests",
            dependencies: ["RumorCore", "RumorSimulation", .product(name: "PropertyBased", package: "swift-property-based")]
        ),
        .testTarget(name: "RumorSimulationTests", dependencies: ["RumorSimulation", "RumorCore"]),
        .testTarget(
            name: "RumorCLITests",
            dependencies: ["RumorCLI", "RumorAPI", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .testTarget(name: "RumorWireTests", dependencies: ["RumorWire", "RumorCore"], resources: [.copy("Fixtures")]),
        .testTarget(
            name: "RumorAgentTests",
            dependencies: [
                "RumorAgent", "RumorCore", "RumorWire", "RumorAPI",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ]
        ),
    ]
)
