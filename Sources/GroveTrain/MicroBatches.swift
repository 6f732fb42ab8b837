// Splitting a batch of rows of different lengths into micro-batches that waste little padding:
// the GRPO trainer's completions and the SFT trainer's examples both go through it.

/// Row indices grouped into micro-batches of rows sorted by length (ties by index, so the
/// split is reproducible). A micro-batch costs rows × its longest row, plus `partOverhead`
/// (the price of one more pass: GRPO's prompts are computed again in every micro-batch); the
/// split minimises the total cost (dynamic programming over the sorted rows) with rows ×
/// longest ≤ `tokenBudget` unless a row alone exceeds it.
func lengthSortedMicroBatches(lengths: [Int], tokenBudget: Int, partOverhead: Int) -> [[Int]] {
    let order = lengths.indices.sorted { (lengths[$0], $0) < (lengths[$1], $1) }
    let n = order.count
    // best[i]: the cheapest split of the i shortest rows; start[i]: where its last part begins.
    var best = [Int](repeating: .max, count: n + 1), start = [Int](repeating: 0, count: n + 1)
    best[0] = 0
    for i in stride(from: 1, through: n, by: 1) {
        let longest = lengths[order[i - 1]]
        for j in stride(from: i - 1, through: 0, by: -1) {
            let rows = i - j
            if rows > 1 && rows * longest > tokenBudget { break }
            let cost = best[j] + rows * longest + partOverhead
            if cost < best[i] { best[i] = cost; start[i] = j }
        }
    }
    var parts: [[Int]] = [], end = n
    while end > 0 { parts.append(Array(order[start[end]..<end])); end = start[end] }
    return parts.reversed()
}
