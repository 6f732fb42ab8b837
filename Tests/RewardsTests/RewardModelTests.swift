import Foundation
import GroveRollout
import GroveTestSupport
import Rewards
import XCTest

/// The reward-model scorer against transformers' Qwen2ForSequenceClassification (Tests/Fixtures/qwen2_reward_model).
final class RewardModelTests: XCTestCase {
    func testScoresMatchTransformers() throws {
        let dir = Fixtures.local.appendingPathComponent("qwen2_reward_model")
        let scorer = try RewardModelScorer(directory: dir, tokenizerDir: Fixtures.publicDir.appendingPathComponent("tokenizer"))
        let expected = try Fixtures.json(dir.appendingPathComponent("expected.json"))
        for (ids, score) in zip(expected["sequences"] as! [[Int]], expected["scores"] as! [Double]) {
            XCTAssertEqual(Double(scorer.scoreTokens(ids.map(Int32.init))), score, accuracy: 1e-4)
        }
    }

    func testFolderWithoutScoreHeadIsAnError() {
        XCTAssertThrowsError(try RewardModelScorer(directory: Fixtures.modelA.appendingPathComponent("model"))) {
            XCTAssertTrue("\($0)".contains("score.weight"), "\($0)")
        }
    }
}
