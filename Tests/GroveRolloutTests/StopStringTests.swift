import Foundation
import GroveTestSupport
import XCTest
@testable import GroveModel
@testable import GroveRollout
@testable import GroveTensor
@testable import GroveTokenizer

/// Stop strings on a model that writes a known text: each token's embedding is a one-hot vector,
/// the blocks add nothing (zero output projections), and the LM head maps token t to its successor
/// in `text`, so greedy decoding after "Q" spells `text` token by token, then repeats its last token.
final class StopStringTests: XCTestCase {
    static let specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

    /// `text` (its tokens all distinct) spelled by a model after the prompt "Q".
    func engine(_ tokenizer: Tokenizer, text: String, stops: [String], maxNewTokens: Int = 24) -> RolloutEngine {
        let chain = tokenizer.encode("Q" + text)
        precondition(Set(chain).count == chain.count, "a successor table needs distinct tokens")
        let V = tokenizer.vocabSize, C = (V + 7) / 8 * 8  // 4 heads of an even size
        let config = ModelConfig(vocabSize: V, hiddenSize: C, intermediateSize: 8, numHiddenLayers: 1,
                                 numAttentionHeads: 4, maxPositionEmbeddings: 64, tieWordEmbeddings: false)
        let model = Transformer(config: config, seed: 0)
        for layer in model.layers {
            layer.grouped.oProj.weight.data.update(repeating: 0, count: layer.grouped.oProj.weight.count)
            layer.dense.downProj.weight.data.update(repeating: 0, count: layer.dense.downProj.weight.count)
        }
        model.embedTokens.data.update(repeating: 0, count: V * C)
        model.lmHead.data.update(repeating: 0, count: V * C)
        for t in 0..<V { model.embedTokens.data[t * C + t] = 1 }
        for (i, t) in chain.enumerated() { model.lmHead.data[chain[min(i + 1, chain.count - 1)] * C + t] = 1 }
        return RolloutEngine(model: model, tokenizer: tokenizer, options: SamplingOptions(temperature: 0, maxNewTokens: maxNewTokens),
                             stopStrings: stops)
    }

    /// One token per byte: no merges.
    func byteTokenizer() throws -> Tokenizer { try Tokenizer.train(corpus: [], vocabSize: 259, specialTokens: Self.specials) }

    func rollout(_ engine: RolloutEngine) -> Completion {
        engine.rollouts(prompts: ["Q"], promptIds: [0], groupSize: 1, seed: 0, step: 0)[0]
    }

    /// The tokens of the first `n` characters of `text`.
    func ids(_ tokenizer: Tokenizer, _ text: String, through n: Int) -> [Int32] {
        tokenizer.encode(String(text.prefix(n))).map(Int32.init)
    }

    let text = "xé</answer>k"

    func testTheModelSpellsItsText() throws {
        let tok = try byteTokenizer()
        let out = rollout(engine(tok, text: text, stops: []))
        XCTAssertEqual(out.text, text + String(repeating: "k", count: 24 - tok.encode(text).count))
        XCTAssertEqual(out.finishReason, .length)
    }

    /// "</answer>" is nine one-byte tokens: longer than the eight-token tail the engine used to decode.
    func testStopStringLongerThanEightTokens() throws {
        let tok = try byteTokenizer()
        let out = rollout(engine(tok, text: text, stops: ["</answer>"]))
        XCTAssertEqual(out.finishReason, .stop)
        XCTAssertEqual(out.ids, ids(tok, text, through: 11), "generation ends at the token completing the stop string")
        XCTAssertEqual(out.text, "xé", "the stop string and what follows are cut from the text")
    }

    /// "/answer>" is exactly eight tokens, the old tail's edge.
    func testStopStringOfEightTokens() throws {
        let tok = try byteTokenizer()
        let out = rollout(engine(tok, text: text, stops: ["/answer>"]))
        XCTAssertEqual(out.finishReason, .stop)
        XCTAssertEqual(out.ids, ids(tok, text, through: 11))
        XCTAssertEqual(out.text, "xé<")
    }

    /// "é" is two byte tokens: the tail is counted in bytes, not characters.
    func testStopStringSplitInsideACharacter() throws {
        let tok = try byteTokenizer()
        let out = rollout(engine(tok, text: text, stops: ["é"]))
        XCTAssertEqual(out.ids.count, 3)
        XCTAssertEqual(out.text, "x")
    }

    /// The first stop string to appear ends the completion, whatever the list's order.
    func testEarliestOfSeveralStopStrings() throws {
        let tok = try byteTokenizer()
        let out = rollout(engine(tok, text: text, stops: ["swer>", "an", "zz"]))
        XCTAssertEqual(out.finishReason, .stop)
        XCTAssertEqual(out.ids, ids(tok, text, through: 6))
        XCTAssertEqual(out.text, "xé</")
        let never = rollout(engine(tok, text: text, stops: ["zz"]))
        XCTAssertEqual(never.finishReason, .length)
        XCTAssertEqual(never.ids.count, 24)
    }

    /// With multi-byte tokens a stop string can end inside a token: the token is kept, and the
    /// text is cut where the stop string starts (vLLM's `include_stop_str_in_output=False`).
    func testStopStringEndingInsideAToken() throws {
        // Five merges (of pairs seen at least twice) join "answer" into one token.
        let tok = try Tokenizer.train(corpus: ["answer answer"], vocabSize: 259 + 5, specialTokens: Self.specials)
        XCTAssertEqual(tok.encode(text).count, 8, "x, é as two bytes, <, /, answer, >, k")
        let inside = rollout(engine(tok, text: text, stops: ["ns"]))
        XCTAssertEqual(inside.ids, ids(tok, text, through: 10), "through the token answer")
        XCTAssertEqual(inside.text, "xé</a")
        let across = rollout(engine(tok, text: text, stops: ["/ans"]))
        XCTAssertEqual(across.ids, ids(tok, text, through: 10))
        XCTAssertEqual(across.text, "xé<")
    }
}
