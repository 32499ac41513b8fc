// swift-tools-version: 6.1
// DiskLease: a shared-storage lease manager, byte-compatible with sanlock 3.8.x.
//
// Layers (dependencies point down only):
//   Tools/diskleased (daemon) → LeaseDaemon → LeaseRunner, DiskPaxos, DeltaLease
//   Tools/disklease (CLI)  →  DiskLeaseCLI → DiskLeaseClient (the daemon's wire protocol)
//   LeaseFormat  (on-disk records, CRC-32C, geometry; pure, no I/O)
//   DirectIO     (the storage port: aligned batched sector I/O with timeouts)
//   CDirectIO    (C shim over libaio, O_DIRECT and block-device ioctls)
import PackageDescription

let package = Package(
    name: "DiskLease",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "DirectIO", targets: ["DirectIO"]),
        .library(name: "LeaseFormat", targets: ["LeaseFormat"]),
        .library(name: "DeltaLease", targets: ["DeltaLease"]),
        .library(name: "DiskPaxos", targets: ["DiskPaxos"]),
        .library(name: "DiskLeaseClient", targets: ["DiskLeaseClient"]),
        .executable(name: "disklease", targets: ["disklease"]),
        .executable(name: "diskleased", targets: ["diskleased"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    ],
    targets: [
        .target(
            name: "CDirectIO",
            path: "Sources/CDirectIO",
            linkerSettings: [.linkedLibrary("aio")]
        ),
        .target(name: "DirectIO", dependencies: ["CDirectIO"]),
        .target(name: "LeaseFormat"),
        .target(name: "DeltaLease", dependencies: ["DirectIO", "LeaseFormat"]),
        .target(name: "DiskPaxos", dependencies: ["DeltaLease", "DirectIO", "LeaseFormat"]),
        .target(name: "LeaseRunner", dependencies: ["DeltaLease", "DirectIO"]),
        // The host's policy as a pure state machine: diskleased and the simulator both drive it.
        .target(name: "HostCore", dependencies: ["DeltaLease", "DiskPaxos", "LeaseFormat"]),
        .target(name: "Simulation", dependencies: ["DeltaLease", "DiskPaxos", "DirectIO", "LeaseFormat", "HostCore"]),
        .target(name: "DiskLeaseClient"),
        .target(
            name: "LeaseDaemon",
            dependencies: [
                "CDirectIO", "DirectIO", "LeaseFormat", "DeltaLease", "DiskPaxos", "LeaseRunner", "DiskLeaseClient", "HostCore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .executableTarget(
            name: "diskleased",
            dependencies: [
                "LeaseDaemon", "DiskLeaseClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Tools/diskleased"
        ),
        .target(
            name: "DiskLeaseCLI",
            dependencies: [
                "DirectIO", "LeaseFormat", "DeltaLease", "DiskPaxos", "Simulation", "LeaseRunner", "DiskLeaseClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(name: "disklease", dependencies: ["DiskLeaseCLI"], path: "Tools/disklease"),
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "LeaseFormatTests", dependencies: ["LeaseFormat"], resources: [.copy("Fixtures")]),
        .testTarget(name: "DirectIOTests", dependencies: ["DirectIO", "TestSupport"]),
        .testTarget(name: "ProtocolTests", dependencies: ["DeltaLease", "DiskPaxos", "LeaseRunner", "LeaseFormat", "DirectIO", "Simulation"]),
        .testTarget(name: "HostCoreTests", dependencies: ["HostCore", "DeltaLease", "DiskPaxos", "LeaseFormat", "DirectIO", "LeaseRunner"]),
        .testTarget(name: "CLITests", dependencies: ["DiskLeaseCLI", "LeaseFormat", "DirectIO", "TestSupport", "disklease"]),
        .testTarget(
            name: "DaemonTests",
            dependencies: [
                "DiskLeaseClient", "LeaseFormat", "LeaseDaemon", "TestSupport", "disklease", "diskleased",
                .product(name: "Logging", package: "swift-log"),
            ]),
    ]
)
