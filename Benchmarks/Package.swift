// swift-tools-version: 6.1
// In-process benchmarks (ordo-one/benchmark), nested so a plain `swift test` at the top level
// does not build the benchmark toolchain. Run: swift package --package-path Benchmarks benchmark
import Foundation
import PackageDescription

// The root package's identity is its folder name, which a checkout does not control.
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()

let package = Package(
    name: "DiskLeaseBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: root.path),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "FormatAndIO",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "DirectIO", package: root.lastPathComponent),
                .product(name: "LeaseFormat", package: root.lastPathComponent),
            ],
            path: "Benchmarks/FormatAndIO",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        )
    ]
)
