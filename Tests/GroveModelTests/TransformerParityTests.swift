import Foundation
import GroveTestSupport
import XCTest
@testable import GroveModel
@testable import GroveTensor

/// The model against Hugging Face transformers' own outputs on `model_a_qwen2`
/// (Qwen2ForCausalLM, eager attention, float32).
final class TransformerParityTests: XCTestCase {
    var model: Transformer!
    var expected: [String: Any]!

    override func setUpWithError() throws {
        model = try Transformer.load(from: Fixtures.modelA.appendingPathComponent("model"))
        expected = try Fixtures.json(Fixtures.modelA.appendingPathComponent("expected.json"))
    }

    var sequences: [[String: Any]] { expected["sequences"] as! [[String: Any]] }
    func ids(_ s: [String: Any]) -> [Int32] { (s["input_ids"] as! [Int]).map(Int32.init) }

    func testLogitsMatchTransformers() throws {
        for s in sequences {
            let reference = try NumpyFile.read(Fixtures.modelA.appendingPathComponent(s["logits_file"] as! String))
            let logits = GradMode.withoutGrad { model.forward(tokens: ids(s), batch: 1) }
            XCTAssertEqual(logits.shape, reference.shape)
            XCTAssertLessThan(maxAbsDiff(logits.values, reference.values), 1e-4, "\(s["logits_file"]!)")
        }
    }

    func testNextTokenLogProbsAndMeanNLL() {
        for s in sequences {
            let tokens = ids(s)
            let logits = GradMode.withoutGrad { model.forward(tokens: tokens, batch: 1) }
            let targets = Array(tokens.dropFirst()) + [-1]
            let logp = tokenLogProbs(logits, targets: targets).values.dropLast()
            let reference = (s["next_token_logprobs"] as! [Double]).map(Float.init)
            XCTAssertLessThan(maxAbsDiff(Array(logp), reference), 1e-4)
            let nll = -logp.reduce(0, +) / Float(logp.count)
            XCTAssertEqual(nll, Float(s["mean_nll"] as! Double), accuracy: 1e-4)
        }
    }

    func testLeftPaddedBatchMatchesUnpadded() {
        assertLeftPaddedBatchMatches(model, expected["left_padded_batch"] as! [String: Any])
    }

    func testGreedyContinuation() {
        let greedy = expected["greedy"] as! [String: Any]
        let prompt = (greedy["prompt_ids"] as! [Int]).map(Int32.init)
        let out = model.generate(prompts: [prompt], maxNewTokens: greedy["new_tokens"] as! Int, temperature: 0, seed: 0)
        XCTAssertEqual(out[0].map(Int.init), greedy["output_ids"] as! [Int])
    }

    func testGradientsMatchTransformers() throws {
        let gradient = expected["gradient"] as! [String: Any]
        let tokens = ids(sequences[2])
        let logits = model.forward(tokens: tokens, batch: 1)
        let loss = crossEntropy(logits, targets: Array(tokens.dropFirst()) + [-100])
        XCTAssertEqual(loss.item, Float(gradient["loss_value"] as! Double), accuracy: 1e-4)
        loss.backward()
        let reference = Dictionary(uniqueKeysWithValues: try SafetensorsFile.read(Fixtures.modelA.appendingPathComponent("grads.safetensors")))
        for (name, p) in model.namedParameters {
            let ref = try XCTUnwrap(reference[name], name)
            let ours = try XCTUnwrap(p.gradValues, name)
            let scale = max(ref.values.map(abs).max() ?? 0, 1e-3)
            XCTAssertLessThan(maxAbsDiff(ours, ref.values) / scale, 1e-3, name)
        }
    }

    func testParameterCount() {
        XCTAssertEqual(model.parameterCount, expected["num_parameters"] as! Int)
        XCTAssertEqual(model.config.parameterCount(), expected["num_parameters"] as! Int)
    }

    /// Generation cuts its rows into groups, prefills a prompt that several rows share only once,
    /// and decodes each thread's groups in step (on one thread: all three groups in one batch):
    /// every row's tokens and log-probs are those it gets when sampled alone, on one thread or two,
    /// and the log-probs on one thread are those on two, bit for bit.
    func testGroupedParallelSamplingEqualsEachRowAlone() {
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        let V = model.config.vocabSize
        var prompts: [[Int32]] = []
        for i in 0..<(2 * Transformer.decodeGroupRows + 3) {
            let p = i / 3  // rows 3p, 3p+1, 3p+2 share a prompt (and sample with their own generators)
            let length = 2 + p % 5  // lengths 2…6: groups are left-padded
            prompts.append((0..<length).map { t -> Int32 in Int32((7 * p + 3 * t + 1) % V) })
        }
        let rngs = prompts.indices.map { SeededRandom(seed: 5, streams: [UInt64($0)]) }
        // Without stop tokens every row runs 6 steps; with a quarter of the vocabulary as stop tokens
        // rows finish at different steps and leave the decode batch.
        let stops = Set((0..<Int32(V)).filter { $0 % 4 == 1 })
        for options in [SamplingOptions(temperature: 1, maxNewTokens: 6), SamplingOptions(temperature: 1, maxNewTokens: 6, stopTokens: stops)] {
            let alone = prompts.indices.map { model.generate(prompts: [prompts[$0]], options: options, rngs: [rngs[$0]])[0] }
            if !options.stopTokens.isEmpty { XCTAssertGreaterThan(Set(alone.map(\.tokens.count)).count, 2, "rows end at different steps") }
            var byThreads: [[GeneratedSequence]] = []
            for threads in [1, 2] {
                Parallel.threads = threads
                let together = model.generate(prompts: prompts, options: options, rngs: rngs)
                byThreads.append(together)
                for (i, (a, b)) in zip(alone, together).enumerated() {
                    XCTAssertEqual(a.tokens, b.tokens, "row \(i), \(threads) threads")
                    XCTAssertEqual(a.finishReason, b.finishReason, "row \(i)")
                    for (x, y) in zip(a.logprobs, b.logprobs) { XCTAssertEqual(x, y, accuracy: 1e-5, "row \(i)") }
                }
            }
            // One thread or two: the same prefill calls and row-exact decode steps, so the same bits.
            XCTAssertEqual(byThreads[0].map(\.logprobs), byThreads[1].map(\.logprobs))
        }
    }
}
