import GroveModel
import GroveTensor
import GroveTestSupport
import XCTest

/// The fixtures' `left_padded_batch` case: rows of different lengths padded on the left, each
/// real position's next-token log-prob against transformers' within `tolerance`. Padding must
/// change nothing a real token sees (positions count real tokens; pads are masked as keys).
func assertLeftPaddedBatchMatches(_ model: Transformer, _ batch: [String: Any], tolerance: Float = 1e-4,
                                  file: StaticString = #filePath, line: UInt = #line) {
    let rows = (batch["input_ids"] as! [[Int]]).map { $0.map(Int32.init) }
    let mask = (batch["attention_mask"] as! [[Int]]).flatMap { $0.map { $0 == 1 } }
    let T = rows[0].count
    let logits = GradMode.withoutGrad { model.forward(tokens: rows.flatMap { $0 }, batch: rows.count, attentionMask: mask) }
    let references = batch["next_token_logprobs"] as! [[Double]]
    for (b, row) in rows.enumerated() {
        // Targets: the next real token, for every real position that has one.
        var targets = [Int32](repeating: -1, count: rows.count * T)
        let real = (0..<T).filter { mask[b * T + $0] }
        for (i, t) in real.dropLast().enumerated() { targets[b * T + t] = row[real[i + 1]] }
        let logp = tokenLogProbs(logits, targets: targets)
        let ours = real.dropLast().map { logp.data[b * T + $0] }
        XCTAssertLessThan(maxAbsDiff(ours, references[b].map(Float.init)), tolerance, "row \(b)", file: file, line: line)
    }
}
