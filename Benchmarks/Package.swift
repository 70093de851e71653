// swift-tools-version:6.1
//
// QAQ kernel benchmarks: a separate package so that package-benchmark and its
// dependencies (malloc interposer, histogram, …) stay out of the library's graph.
//
//   cd Benchmarks && swift package benchmark --target KernelBenchmarks
//   (also AttentionBenchmarks, PrefillBenchmarks, PlannerBenchmarks; see README.md)
//
// package-benchmark requires the suites under `Benchmarks/<Target>/` in this package's root.
import PackageDescription

let package = Package(
    name: "QAQBenchmarks",
    platforms: [.macOS(.v13)],
    dependencies: [
        // By path (the root uses unsafeFlags, allowed only for root and local packages);
        // `name:` so that `package: "QAQ"` works whatever the checkout directory is called.
        .package(name: "QAQ", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        // Shared metrics, configuration, clock, seeded data and cache filling of the suites
        // below (not a suite itself).
        .target(
            name: "QAQBenchSupport",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "QAQ", package: "QAQ"),
            ],
            path: "Support/QAQBenchSupport"),
        .executableTarget(
            name: "KernelBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "QAQ", package: "QAQ"),
            ],
            path: "Benchmarks/KernelBenchmarks",
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark"),
            ]),
        .executableTarget(
            name: "AttentionBenchmarks",
            dependencies: [
                "QAQBenchSupport",
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "QAQ", package: "QAQ"),
            ],
            path: "Benchmarks/AttentionBenchmarks",
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark"),
            ]),
        .executableTarget(
            name: "PrefillBenchmarks",
            dependencies: [
                "QAQBenchSupport",
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "QAQ", package: "QAQ"),
            ],
            path: "Benchmarks/PrefillBenchmarks",
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark"),
            ]),
        .executableTarget(
            name: "PlannerBenchmarks",
            dependencies: [
                "QAQBenchSupport",
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "QAQ", package: "QAQ"),
                .product(name: "QAQTuning", package: "QAQ"),
            ],
            path: "Benchmarks/PlannerBenchmarks",
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark"),
            ]),
    ],
    swiftLanguageModes: [.v6]
)
