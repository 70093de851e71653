// swift-tools-version:6.1
//
// QAQ — quality-adaptive quantization of the LLM KV cache, with SIMD kernels in Swift.
//
// The kernels live once, in Sources/QAQKernels, and are compiled three times
// (x86-64 baseline, x86-64-v3, x86-64-v4) into three modules; Sources/QAQKernelsV3
// and Sources/QAQKernelsV4 hold only symbolic links to those files. The library
// picks one at start from the CPU's feature level (see `ISALevel`).
import PackageDescription

#if arch(x86_64)
let isX86 = true
#else
let isX86 = false
#endif

/// Flags for one ISA variant of the kernels.
func kernelSettings(march: String?, extra: [String] = []) -> [SwiftSetting] {
    // Kernels are always optimized, without overflow traps (also in debug builds): unoptimized SIMD code is
    // 100× slower and leaves generic stdlib calls whose weak copies the linker could
    // share across ISA levels.
    var settings: [SwiftSetting] = [.unsafeFlags(["-Ounchecked", "-enforce-exclusivity=unchecked"])]
    if let march {
        settings.append(.unsafeFlags(["-Xcc", "-march=\(march)"] + extra.flatMap { ["-Xcc", $0] }))
        settings.append(.define("HAS_FMA"))
    }
    return settings
}

var kernelTargets: [Target] = [
    .target(
        name: "QAQKernelsBase",
        dependencies: ["QAQLayout", "_QAQSIMDShims"],
        path: "Sources/QAQKernels",
        swiftSettings: kernelSettings(march: nil)),
]
var kernelDependencies: [Target.Dependency] = ["QAQKernelsBase"]
if isX86 {
    kernelTargets += [
        .target(
            name: "QAQKernelsV3",
            dependencies: ["QAQLayout", "_QAQSIMDShims"],
            path: "Sources/QAQKernelsV3",
            swiftSettings: kernelSettings(march: "x86-64-v3")),
        .target(
            name: "QAQKernelsV4",
            dependencies: ["QAQLayout", "_QAQSIMDShims"],
            path: "Sources/QAQKernelsV4",
            // v4 includes AVX-512 VNNI (the int8 attention scores): Cascade Lake and later, Zen 4 and later.
            swiftSettings: kernelSettings(march: "x86-64-v4", extra: ["-mavx512vnni"])),
    ]
    kernelDependencies += ["QAQKernelsV3", "QAQKernelsV4"]
}

let package = Package(
    name: "QAQ",
    products: [
        .library(name: "QAQ", targets: ["QAQ"]),
        .library(name: "QAQTuning", targets: ["QAQTuning"]),
        .executable(name: "qaq", targets: ["qaq"]),
        .executable(name: "qaqtune", targets: ["qaqtune"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: kernelTargets + [
        .target(
            name: "CQAQSupport",
            cSettings: [.define("_GNU_SOURCE")]),
        .target(name: "QAQLayout"),
        // Header-only C: the variable lane permute the kernels' code-map lookups need.
        .target(name: "_QAQSIMDShims"),
        .systemLibrary(
            name: "CHwloc",
            pkgConfig: "hwloc",
            providers: [.apt(["libhwloc-dev"])]),
        .target(
            name: "QAQTuning",
            dependencies: ["QAQ", "CHwloc", "CQAQSupport"]),
        .target(
            name: "QAQ",
            dependencies: ["CQAQSupport", "QAQLayout"] + kernelDependencies),
        .executableTarget(
            name: "qaq",
            dependencies: [
                "QAQ",
                "QAQTuning",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .executableTarget(
            name: "qaqtune",
            dependencies: [
                "QAQ",
                "QAQTuning",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .target(
            name: "QAQTestSupport",
            dependencies: ["QAQ"],
            path: "Tests/QAQTestSupport"),
        .testTarget(
            name: "QAQKernelsTests",
            dependencies: ["QAQ", "QAQTestSupport"] + kernelDependencies),
        .testTarget(
            name: "QAQTuningTests",
            dependencies: ["QAQTuning", "QAQTestSupport"]),
        .testTarget(
            name: "QAQTests",
            dependencies: ["QAQ", "QAQTestSupport"],
            exclude: ["Fixtures"]),
    ],
    swiftLanguageModes: [.v6]
)
