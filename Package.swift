// swift-tools-version:6.0
import PackageDescription

// Release builds drop Swift's overflow/bounds traps in the numeric core only:
// the kernels there work on unsafe buffer pointers whose bounds are checked once,
// at the op boundary, with `precondition`s that -Ounchecked keeps out of the hot loops.
//
// SwiftPM refuses unsafe flags in a package that another depends on by version: such a consumer
// (or anyone) builds with GROVE_PORTABLE_FLAGS=1 set, which drops them (the checks stay in the
// kernels' loops: slower release builds, same results). Depending on Grove by path or branch
// keeps them.
let portable = Context.environment["GROVE_PORTABLE_FLAGS"] != nil
let fastMath: [SwiftSetting] = portable ? [] : [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]
let fastC: [CSetting] = portable ? [] : [.unsafeFlags(["-O3"])]

let package = Package(
    name: "Grove",
    products: [
        .executable(name: "grove", targets: ["grove"]),
        .library(name: "GroveModel", targets: ["GroveModel"]),
        .library(name: "GroveTokenizer", targets: ["GroveTokenizer"]),
        .library(name: "GroveRun", targets: ["GroveRun"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
    ],
    targets: [
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        // The decode-step GEMM, in C for its per-instruction-set builds (target_clones).
        .target(name: "CGroveKernels", cSettings: fastC),
        .target(name: "GroveTensor", dependencies: ["CGroveKernels"], swiftSettings: fastMath),
        .target(name: "GroveTokenizer"),
        .target(name: "GroveModel", dependencies: ["GroveTensor", "GroveTokenizer"], swiftSettings: fastMath),
        .target(name: "GroveData", dependencies: ["GroveTensor", "GroveTokenizer"]),
        .target(name: "GroveRollout", dependencies: ["GroveModel", "GroveTensor", "GroveTokenizer"]),
        .target(name: "GroveTrain", dependencies: ["GroveData", "GroveModel", "GroveRollout", "GroveTensor", "GroveTokenizer"],
                swiftSettings: fastMath),
        .target(name: "GroveStore", dependencies: ["CSQLite"]),
        // Open MPI through dlopen (no headers or library needed to build), and the Communicator over it:
        // `mpirun -np N grove run` trains one model on N processes.
        .target(name: "CGroveMPI", linkerSettings: [.linkedLibrary("dl")]),
        .target(name: "GroveMPI", dependencies: ["CGroveMPI", "GroveTrain"]),
        // report.html from run.sqlite.
        .target(name: "GroveReport", dependencies: ["GroveStore"]),
        // Recipe trees and typed field reading, shared by the run layer and the rewards (no YAML library).
        .target(name: "GroveConfig"),
        .target(name: "GroveTasks", dependencies: ["GroveTensor"], path: "Datasets", exclude: ["README.md", "arithmetic/README.md", "arithmetic/train.jsonl",
                                                             "arithmetic/eval.jsonl", "arithmetic/demos.jsonl", "arithmetic/prompts.jsonl", "arithmetic/chat_prompts.jsonl",
                                                             "arithmetic/chat_eval.jsonl", "arithmetic/make_chat_prompts.py", "countdown/README.md",
                                                             "countdown/train.jsonl", "countdown/eval.jsonl"]),
        .target(name: "Rewards", dependencies: ["GroveConfig", "GroveModel", "GroveRollout", "GroveTasks", "GroveTensor", "GroveTokenizer"],
                path: "Rewards", exclude: ["README.md", "examples"]),
        // The run layer: recipes as typed values, stages, the runner, the report as data.
        .target(name: "GroveRun", dependencies: ["GroveConfig", "GroveData", "GroveModel", "GroveRollout", "GroveStore", "GroveTasks",
                                                 "GroveTensor", "GroveTokenizer", "GroveTrain", "Rewards"]),
        .executableTarget(
            name: "grove",
            dependencies: [
                "GroveConfig", "GroveData", "GroveModel", "GroveMPI", "GroveReport", "GroveRollout", "GroveRun", "GroveStore", "GroveTasks", "GroveTensor",
                "GroveTokenizer", "GroveTrain", "Rewards",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Yams", package: "Yams"),
            ]),
        // Where tests find fixtures; shared by the test targets.
        .target(name: "GroveTestSupport", path: "Sources/GroveTestSupport"),
        .testTarget(name: "GroveTensorTests", dependencies: ["GroveTensor", "CGroveKernels", "GroveTestSupport"]),
        .testTarget(name: "GroveTokenizerTests", dependencies: ["GroveTokenizer", "GroveTestSupport"]),
        .testTarget(name: "GroveModelTests", dependencies: ["GroveModel", "GroveTensor", "GroveTokenizer", "GroveTestSupport"]),
        .testTarget(name: "GroveStoreTests", dependencies: ["GroveStore"]),
        .testTarget(name: "GroveReportTests", dependencies: ["GroveReport", "GroveStore"]),
        .testTarget(name: "GroveDataTests", dependencies: ["GroveData", "GroveTokenizer", "GroveTestSupport"]),
        .testTarget(name: "GroveRolloutTests", dependencies: ["GroveRollout", "GroveModel", "GroveTensor", "GroveTokenizer", "GroveTestSupport"]),
        .testTarget(name: "GroveTasksTests", dependencies: ["GroveTasks", "GroveTestSupport"]),
        .testTarget(name: "GroveTrainTests", dependencies: ["GroveTrain", "GroveData", "GroveModel", "GroveRollout", "GroveTensor", "GroveTokenizer",
                                                            "GroveTestSupport"]),
        .testTarget(name: "RewardsTests", dependencies: ["Rewards", "GroveRollout", "GroveTestSupport"]),
        .testTarget(name: "GroveCLITests", dependencies: ["grove", "GroveConfig", "GroveModel", "GroveRun", "GroveStore", "GroveTasks",
                                                          "GroveTensor", "GroveTestSupport", "GroveTokenizer", "GroveTrain"]),
        .testTarget(name: "GroveTestSupportTests", dependencies: ["GroveTestSupport"]),
    ],
    swiftLanguageModes: [.v5]
)
