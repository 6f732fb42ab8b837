import Foundation
import GroveTestSupport
import XCTest
@testable import GroveModel
@testable import GroveTensor

/// An adapter Grove trained and saved loads in PEFT (`Tests/Fixtures/peft_logits.py`) and gives
/// Grove's logits. Needs python3 with torch, transformers and peft (or `GROVE_PYTHON` naming such
/// an interpreter); skipped without them.
final class PEFTInteropTests: XCTestCase {
    func python() throws -> String {
        let python = ProcessInfo.processInfo.environment["GROVE_PYTHON"] ?? "python3"
        guard (try? run(python, ["-c", "import numpy, torch, transformers, peft"])) == 0 else {
            throw XCTSkip("\(python) with numpy, torch, transformers and peft not found (pip install peft==0.21.2 torch transformers==5.23.0, or set GROVE_PYTHON)")
        }
        return python
    }

    @discardableResult
    func run(_ executable: String, _ arguments: [String]) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [executable] + arguments
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus
    }

    func testTrainedAdapterLoadsInPEFT() throws {
        let python = try python()
        let baseDir = Fixtures.modelA.appendingPathComponent("model")
        let model = try Transformer.load(from: baseDir)
        model.addAdapter(try LoRAConfig(r: 3, alpha: 5, targetModules: ["q_proj", "o_proj", "up_proj", "down_proj"], useRslora: true), seed: 11)
        // A few AdamW steps on one sequence: B leaves 0 and A moves.
        let tokens: [Int32] = [33, 68, 64, 327, 72, 69, 318, 258, 765, 324, 840, 220]
        let optimizer = AdamW(parameters: model.parameters.map { ($0, decay: true) })
        for _ in 0..<3 {
            for p in model.parameters { p.zeroGrad() }
            crossEntropy(model.forward(tokens: tokens, batch: 1), targets: Array(tokens.dropFirst()) + [-100]).backward()
            optimizer.step(lr: 1e-2)
        }
        let dir = Fixtures.temporaryDirectory(), out = dir.appendingPathComponent("peft_logits.npy")
        try model.save(to: dir.appendingPathComponent("adapter"))
        let ids = "[" + tokens.map(String.init).joined(separator: ",") + "]"
        let status = try run(python, [Fixtures.local.appendingPathComponent("peft_logits.py").path, baseDir.path,
                                      dir.appendingPathComponent("adapter").path, ids, out.path])
        XCTAssertEqual(status, 0, "peft_logits.py failed")
        let theirs = try NumpyFile.read(out), ours = GradMode.withoutGrad { model.forward(tokens: tokens, batch: 1) }
        let base = try Transformer.load(from: baseDir)
        XCTAssertGreaterThan(maxAbsDiff(ours.values, GradMode.withoutGrad { base.forward(tokens: tokens, batch: 1) }.values), 1e-2, "the adapter was trained")
        XCTAssertEqual(theirs.shape, ours.shape)
        let diff = maxAbsDiff(theirs.values, ours.values)
        print("LoRA parity: Grove-trained adapter in PEFT, logits max abs diff \(diff)")
        XCTAssertLessThan(diff, 1e-4)
    }
}
