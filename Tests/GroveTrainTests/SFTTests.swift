import Foundation
import GroveTestSupport
import XCTest
@testable import GroveData
@testable import GroveModel
@testable import GroveTensor
@testable import GroveTokenizer
@testable import GroveTrain

/// Data readers, completion-only masking, micro-batching and resumable training on a tiny model.
final class SFTTests: XCTestCase {
    static let specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

    func temp(_ name: String) -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("grove-sft-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir.appendingPathComponent(name)
    }

    /// A JSONL file of `n` tiny addition problems, `a+b=` → the sum; with `mixedLengths`, every
    /// third completion repeats the sum (`12=12=12=12`), so batches mix short and long rows.
    func additionFile(_ n: Int, mixedLengths: Bool = false) throws -> URL {
        let url = temp("train.jsonl")
        let lines = (0..<n).map { i in
            let sum = "\(i % 10 + i / 10 % 10)"
            let completion = mixedLengths && i % 3 == 0 ? Array(repeating: sum, count: 4).joined(separator: "=") : sum
            return "{\"prompt\": \"\(i % 10)+\(i / 10 % 10)=\", \"completion\": \"\(completion)\", \"id\": \"r\(i)\"}"
        }
        try (lines.joined(separator: "\n") + "\n\n").write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    func tokenizer() throws -> Tokenizer { try Tokenizer.train(corpus: ["0123456789+="], vocabSize: 262, specialTokens: Self.specials) }

    func testJSONLIndexesLinesAndReportsBadOnes() throws {
        let url = temp("d.jsonl")
        try "{\"a\": \"x\"}\n\n   \n{\"a\": \"y\"}\nnot json\n[1]\n".write(to: url, atomically: true, encoding: .utf8)
        let file = try JSONLFile(url: url)
        XCTAssertEqual(file.count, 4)
        XCTAssertEqual(try file.row(1)["a"] as? String, "y")
        XCTAssertEqual(file.lineNumber(of: 1), 4)
        XCTAssertThrowsError(try file.row(2)) { XCTAssertTrue("\($0)".contains("\(url.path):5"), "\($0)") }
        XCTAssertThrowsError(try file.row(3)) { XCTAssertTrue("\($0)".contains(":6"), "\($0)") }
        XCTAssertThrowsError(try JSONLFile(url: temp("missing.jsonl"))) { XCTAssertTrue("\($0)".contains("no such file"), "\($0)") }
    }

    func testFieldMappingOnGSM8K() throws {
        let file = try JSONLFile(url: Fixtures.require(Fixtures.sharedDatasets.appendingPathComponent("gsm8k/test.jsonl")))
        let ex = try file.example(0, format: .fields(prompt: "question", completion: "answer"), tokenizer: try tokenizer())
        XCTAssertFalse(ex.prompt.isEmpty)
        XCTAssertTrue(ex.completion.contains("####"))
        XCTAssertThrowsError(try file.example(0, format: .promptCompletion, tokenizer: try tokenizer())) { error in
            XCTAssertTrue("\(error)".contains("no field 'prompt'") && "\(error)".contains("question"), "\(error)")
        }
    }

    /// GRPO prompt files need no completion (TRL's prompt-only datasets); SFT still requires one.
    func testPromptOnlyRows() throws {
        let url = temp("prompts.jsonl")
        try "{\"prompt\": \"12+7=\", \"answer\": \"19\"}\n".write(to: url, atomically: true, encoding: .utf8)
        let file = try JSONLFile(url: url)
        let ex = try file.example(0, format: .promptCompletion, tokenizer: try tokenizer(), completionRequired: false)
        XCTAssertEqual(ex.prompt, "12+7=")
        XCTAssertEqual(ex.completion, "")
        XCTAssertEqual(ex.row["answer"] as? String, "19")
        XCTAssertThrowsError(try file.example(0, format: .promptCompletion, tokenizer: try tokenizer())) { error in
            XCTAssertTrue("\(error)".contains("no field 'completion'"), "\(error)")
        }
    }

    /// Held-out loss scores only rows with a reference completion: prompt-only rows (GRPO prompt
    /// files used as eval sets) add nothing, and a set of only those reports no `eval/loss`.
    func testHeldOutLossSkipsPromptOnlyRows() throws {
        let tok = try tokenizer()
        let config = ModelConfig(vocabSize: tok.vocabSize, hiddenSize: 16, intermediateSize: 32, numHiddenLayers: 1,
                                 numAttentionHeads: 2, numKeyValueHeads: 1, maxPositionEmbeddings: 32)
        let model = Transformer(config: config, seed: 3)
        let withCompletion = (0..<3).map { Example(id: "c\($0)", prompt: "\($0)+1=", completion: "\($0 + 1)", row: [:]) }
        let promptOnly = (0..<3).map { Example(id: "p\($0)", prompt: "\($0)+2=", completion: "", row: [:]) }
        func loss(_ examples: [Example]) -> Double? {
            Evaluator(examples: examples, tokenizer: tok, maxNewTokens: 2, maxLength: 16, isCorrect: nil).evaluate(model).metrics["eval/loss"]
        }
        let scored = try XCTUnwrap(loss(withCompletion))
        XCTAssertEqual(try XCTUnwrap(loss(withCompletion + promptOnly)), scored, accuracy: 1e-9)
        XCTAssertNil(loss(promptOnly))
    }

    /// pass@k: a problem passes when any of its k samples is judged correct; sample s of problem
    /// i has its own stream, so pass@k never falls as k grows, and per level is reported.
    func testPassAtK() throws {
        let tok = try tokenizer()
        let config = ModelConfig(vocabSize: tok.vocabSize, hiddenSize: 16, intermediateSize: 32, numHiddenLayers: 1,
                                 numAttentionHeads: 2, numKeyValueHeads: 1, maxPositionEmbeddings: 32)
        let model = Transformer(config: config, seed: 3)
        let examples = (0..<12).map { Example(id: "\($0)", prompt: "\($0)+1=", completion: "x", row: ["level": $0 < 6 ? "a" : "b"]) }
        // An untrained model's samples are near uniform: "correct" = the first character is a digit 0–4.
        let judge: (String, Example) -> Bool = { text, _ in text.first.map { "01234".contains($0) } ?? false }
        func evaluator(_ k: Int) -> Evaluator {
            var e = Evaluator(examples: examples, tokenizer: tok, maxNewTokens: 2, maxLength: 16, isCorrect: judge)
            e.passK = k
            e.batchSize = 8  // several generation batches
            return e
        }
        let m1 = evaluator(1).evaluate(model).metrics, m4 = evaluator(4).evaluate(model).metrics, m16 = evaluator(16).evaluate(model).metrics
        let p1 = try XCTUnwrap(m1["eval/pass@1"]), p4 = try XCTUnwrap(m4["eval/pass@4"]), p16 = try XCTUnwrap(m16["eval/pass@16"])
        XCTAssertLessThanOrEqual(p1, p4)
        XCTAssertLessThanOrEqual(p4, p16)
        XCTAssertLessThan(p1, p16, "16 samples find more than 1")
        XCTAssertNotNil(m4["eval/pass@4/a"])
        XCTAssertEqual(m4["eval/accuracy"], m1["eval/accuracy"], "greedy accuracy does not depend on k")
        // The verdict is any-of-k: recompute pass@4 by hand from the same streams.
        let eos = tok.eosTokenId.map(Int32.init)
        let options = SamplingOptions(temperature: 1, maxNewTokens: 2, stopTokens: Set([eos].compactMap { $0 }))
        var passed = 0
        for (i, ex) in examples.enumerated() {
            let prompt = tok.encode(ex.prompt).map(Int32.init)
            let outs = model.generate(prompts: Array(repeating: prompt, count: 4), options: options,
                                      rngs: (0..<4).map { SeededRandom(seed: 0, streams: [UInt64(i), UInt64($0)]) })
            if outs.contains(where: { judge(tok.decode($0.tokens.map(Int.init), skipSpecialTokens: true), ex) }) { passed += 1 }
        }
        XCTAssertEqual(p4, Double(passed) / Double(examples.count), accuracy: 1e-12)
    }

    func testMessagesRenderWithTheChatTemplate() throws {
        let url = temp("chat.jsonl")
        try #"{"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]}"#.write(to: url, atomically: true, encoding: .utf8)
        let ex = try JSONLFile(url: url).example(0, format: .messages(field: "messages"), tokenizer: try tokenizer())
        XCTAssertEqual(ex.prompt, "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n")
        XCTAssertEqual(ex.completion, "4<|im_end|>\n")
    }

    func testCompletionOnlyTargets() {
        // prompt [5, 6, 7], completion [8, 9]: only the positions predicting 8 and 9 have targets.
        let a = TokenizedExample(tokens: [5, 6, 7, 8, 9], promptLength: 3)
        let b = TokenizedExample(tokens: [1, 2, 3], promptLength: 1)
        let batch = SFTBatch([a, b], padToken: 0)
        XCTAssertEqual(batch.length, 5)
        XCTAssertEqual(batch.tokens, [5, 6, 7, 8, 9, 1, 2, 3, 0, 0])
        XCTAssertEqual(batch.targets, [-100, -100, 8, 9, -100, 2, 3, -100, -100, -100])
        XCTAssertEqual(batch.targetCount, 4)
    }

    func testEOSAppendedAndTruncation() throws {
        let tok = try tokenizer()
        let ex = Example(id: "x", prompt: "1+2=", completion: "3", row: [:])
        let t = TokenizedExample(ex, tokenizer: tok, eos: Int32(tok.eosTokenId!), maxLength: 100)
        XCTAssertEqual(t.tokens.last, Int32(tok.eosTokenId!))
        XCTAssertEqual(t.promptLength, tok.encode("1+2=").count)
        XCTAssertEqual(TokenizedExample(ex, tokenizer: tok, eos: nil, maxLength: 2).tokens.count, 2)
    }

    func makeTrainer(_ file: JSONLFile, _ tok: Tokenizer, steps: Int, micro: Int, checkpointEvery: Int = 0,
                     model: Transformer? = nil, optimizerState: AdamW.MomentStorage = .float32) -> SFTTrainer {
        let config = ModelConfig(vocabSize: tok.vocabSize, hiddenSize: 16, intermediateSize: 32, numHiddenLayers: 1,
                                 numAttentionHeads: 2, numKeyValueHeads: 1, maxPositionEmbeddings: 32)
        let stream = TrainingStream(file: file, rows: Array(0..<file.count), format: .promptCompletion, tokenizer: tok, maxLength: 16, seed: 3)
        var sft = SFTConfig(steps: steps, batchSize: 8, microBatchSize: micro, learningRate: 1e-2,
                            schedule: .warmupCosine(warmupSteps: 2, totalSteps: steps, minRatio: 0), checkpointEvery: checkpointEvery)
        sft.optimizerState = optimizerState
        return SFTTrainer(model: model ?? Transformer(config: config, seed: 1), data: stream, config: sft)
    }

    func losses(_ t: SFTTrainer) throws -> [Double] {
        var out: [Double] = []
        try t.train { if case .step(let report) = $0 { out.append((report.metrics as! SFTStepMetrics).loss) } }
        return out
    }

    /// The loss is averaged over the whole batch's target tokens, so splitting it into micro-batches changes nothing.
    func testMicroBatchesGiveTheSameTraining() throws {
        let file = try JSONLFile(url: try additionFile(40, mixedLengths: true)), tok = try tokenizer()
        let whole = try losses(makeTrainer(file, tok, steps: 4, micro: 8))
        let split = try losses(makeTrainer(file, tok, steps: 4, micro: 2))
        let uneven = try losses(makeTrainer(file, tok, steps: 4, micro: 3))  // need not divide the batch of 8
        for (a, b) in zip(whole, split) { XCTAssertEqual(a, b, accuracy: 1e-5) }
        for (a, b) in zip(whole, uneven) { XCTAssertEqual(a, b, accuracy: 1e-5) }
        XCTAssertLessThan(whole.last!, whole.first!)
    }

    /// Micro-batches come from the length-sorted batch, split where that saves padding: every
    /// example once, no part over `size` rows of the batch's longest length.
    func testMicroBatchesSplitTheLengthSortedBatch() {
        func parts(_ lengths: [Int], size: Int) -> [[Int]] {
            let examples = lengths.enumerated().map { i, n in TokenizedExample(tokens: [Int32](repeating: Int32(i), count: n), promptLength: 1) }
            return SFTTrainer.microBatches(examples, size: size).map { $0.map { Int($0.tokens[0]) } }
        }
        // Short rows apart from long ones: 4·5 + 80 + 4·80 + 80 = 500 < one pass, 8·80 + 80.
        XCTAssertEqual(parts([80, 5, 80, 5, 5, 80, 5, 80], size: 8), [[1, 3, 4, 6], [0, 2, 5, 7]])
        // Equal lengths: one pass, unless `size` caps it.
        XCTAssertEqual(parts([7, 7, 7, 7], size: 4), [[0, 1, 2, 3]])
        XCTAssertEqual(parts([7, 7, 7, 7], size: 2), [[0, 1], [2, 3]])
        XCTAssertEqual(parts([], size: 2), [])
    }

    /// Stopping at a checkpoint and resuming gives exactly the losses of an uninterrupted run.
    func testResumeFromCheckpointReproducesTheRun() throws {
        let file = try JSONLFile(url: try additionFile(30)), tok = try tokenizer()
        let straight = try losses(makeTrainer(file, tok, steps: 9, micro: 4))

        let first = makeTrainer(file, tok, steps: 9, micro: 4, checkpointEvery: 5)
        let root = temp("ckpt")
        first.loop.checkpoint = { [first] step in
            let state = TrainerState(stageIndex: 0, step: step, dataPosition: first.data.position, seed: 3, runID: 1)
            _ = try TrainingCheckpoint.save(model: first.model, tokenizer: tok, optimizer: first.optimizer, state: state, under: root)
            throw CancellationError()  // the process "dies" right after its checkpoint
        }
        XCTAssertThrowsError(try losses(first))
        let saved = try XCTUnwrap(TrainingCheckpoint.latest(under: root))
        XCTAssertEqual(saved.lastPathComponent, TrainingCheckpoint.name(stage: 0, step: 5))

        let (state, optimizer) = try TrainingCheckpoint.loadState(from: saved)
        let resumed = makeTrainer(file, try Tokenizer(directory: saved), steps: 9, micro: 4, model: try Transformer.load(from: saved))
        try resumed.restore(step: state.step, optimizerState: optimizer, dataPosition: state.dataPosition)
        XCTAssertEqual(try losses(resumed), Array(straight.dropFirst(5)))
    }

    /// With bfloat16 moments, stopping at a checkpoint and resuming gives exactly the losses and
    /// final weights of an uninterrupted run: the checkpoint holds the moments' exact values, and
    /// the rounding bits hash the step count, which the checkpoint restores.
    func testResumeWithBFloat16MomentsReproducesTheRun() throws {
        let file = try JSONLFile(url: try additionFile(30)), tok = try tokenizer()
        let straightTrainer = makeTrainer(file, tok, steps: 9, micro: 4, optimizerState: .bfloat16)
        let straight = try losses(straightTrainer)

        let first = makeTrainer(file, tok, steps: 9, micro: 4, checkpointEvery: 5, optimizerState: .bfloat16)
        let root = temp("ckpt")
        first.loop.checkpoint = { [first] step in
            let state = TrainerState(stageIndex: 0, step: step, dataPosition: first.data.position, seed: 3, runID: 1)
            _ = try TrainingCheckpoint.save(model: first.model, tokenizer: tok, optimizer: first.optimizer, state: state, under: root)
            throw CancellationError()
        }
        XCTAssertThrowsError(try losses(first))
        let saved = try XCTUnwrap(TrainingCheckpoint.latest(under: root))
        let (state, optimizer) = try TrainingCheckpoint.loadState(from: saved)
        let resumed = makeTrainer(file, try Tokenizer(directory: saved), steps: 9, micro: 4, model: try Transformer.load(from: saved),
                                  optimizerState: .bfloat16)
        try resumed.restore(step: state.step, optimizerState: optimizer, dataPosition: state.dataPosition)
        XCTAssertEqual(try losses(resumed), Array(straight.dropFirst(5)))
        XCTAssertEqual(resumed.model.parameters.map(\.values), straightTrainer.model.parameters.map(\.values))
    }

    /// bfloat16 moments train as float32 ones do: 40 steps on the addition rows end at a mean
    /// loss (last 5 steps) within 0.1 % of the float32 run's. Each stored moment carries up to
    /// 2⁻⁸ relative rounding noise, unbiased, so the runs part ways only slightly: 0.02 % here.
    /// Truncating instead (a rounding biased toward zero) ends 0.2 % away.
    func testBFloat16MomentsTrainLikeFloat32() throws {
        let file = try JSONLFile(url: try additionFile(40)), tok = try tokenizer()
        let exact = try losses(makeTrainer(file, tok, steps: 40, micro: 8))
        let rounded = try losses(makeTrainer(file, tok, steps: 40, micro: 8, optimizerState: .bfloat16))
        func tail(_ l: [Double]) -> Double { l.suffix(5).reduce(0, +) / 5 }
        XCTAssertEqual(rounded.first, exact.first, "the first step's loss comes before any update")
        XCTAssertNotEqual(rounded, exact, "the moments are rounded")
        XCTAssertLessThan(tail(exact), exact.first! / 2, "float32 training learns")
        XCTAssertEqual(tail(rounded) / tail(exact), 1, accuracy: 0.001)
    }

    func testNonFiniteLossStopsBeforeTheUpdate() throws {
        let file = try JSONLFile(url: try additionFile(16)), tok = try tokenizer()
        let t = makeTrainer(file, tok, steps: 2, micro: 8)
        t.model.norm.data[0] = .nan
        let before = t.model.embedTokens.values
        XCTAssertThrowsError(try t.train { _ in }) { XCTAssertTrue("\($0)".contains("not finite"), "\($0)") }
        XCTAssertEqual(t.model.embedTokens.values, before, "the weights were not touched")
    }
}
