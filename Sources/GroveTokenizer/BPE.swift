/// Byte-level BPE merging: a pre-token's bytes start as one symbol each, then the
/// adjacent pair with the lowest merge rank is merged, repeatedly, until no pair has a rank.
/// This gives the same result as `tokenizers`' priority-queue implementation.
struct BPEModel {
    let vocab: [String: Int]
    let idToToken: [String]
    /// (left id, right id) packed in an Int → (rank, merged id).
    let merges: [Int: (rank: Int, id: Int)]
    /// The merges in rank order, as tokenizer.json lists them.
    let orderedMerges: [(String, String)]
    /// Llama-3's `ignore_merges`: a pre-token that is itself in the vocabulary is one token.
    let ignoreMerges: Bool
    /// The id of each byte's table character; nil when the vocabulary lacks it.
    let byteIds: [Int?]

    @inline(__always) static func key(_ a: Int, _ b: Int) -> Int { a << 32 | b }

    init(vocab: [String: Int], merges: [(String, String)], ignoreMerges: Bool, file: String) throws {
        self.vocab = vocab
        var idToToken = [String](repeating: "", count: (vocab.values.max() ?? -1) + 1)
        for (t, i) in vocab { idToToken[i] = t }
        self.idToToken = idToToken
        var table: [Int: (rank: Int, id: Int)] = [:]
        for (rank, (a, b)) in merges.enumerated() {
            guard let ia = vocab[a], let ib = vocab[b], let merged = vocab[a + b] else {
                throw TokenizerError.malformed(file: file, key: "model.merges", problem: "merge \(rank) ('\(a)' '\(b)') uses tokens missing from the vocabulary")
            }
            if table[BPEModel.key(ia, ib)] == nil { table[BPEModel.key(ia, ib)] = (rank, merged) }
        }
        self.merges = table
        orderedMerges = merges
        self.ignoreMerges = ignoreMerges
        byteIds = ByteLevel.byteToChar.map { vocab[String($0)] }
    }

    /// Token ids of one pre-token given as UTF-8 bytes.
    func encode(_ bytes: [UInt8], into out: inout [Int]) {
        if ignoreMerges, let id = vocab[String(bytes.map { ByteLevel.byteToChar[Int($0)] })] { out.append(id); return }
        // Byte-level alphabets contain all 256 byte characters; a vocabulary that lacks one
        // cannot encode this text (tokenizers drops it too, without byte_fallback).
        var symbols = bytes.compactMap { byteIds[Int($0)] }
        while symbols.count > 1 {
            var best = -1, bestRank = Int.max, bestId = 0
            for i in 0..<(symbols.count - 1) {
                if let m = merges[BPEModel.key(symbols[i], symbols[i + 1])], m.rank < bestRank {
                    best = i; bestRank = m.rank; bestId = m.id
                }
            }
            if best < 0 { break }
            // Merge every occurrence of this pair, left to right.
            let left = symbols[best], right = symbols[best + 1]
            var merged: [Int] = []
            merged.reserveCapacity(symbols.count)
            var i = 0
            while i < symbols.count {
                if i < symbols.count - 1 && symbols[i] == left && symbols[i + 1] == right {
                    merged.append(bestId); i += 2
                } else {
                    merged.append(symbols[i]); i += 1
                }
            }
            symbols = merged
        }
        out.append(contentsOf: symbols)
    }
}
