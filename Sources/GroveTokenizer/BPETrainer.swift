import Foundation

/// Learns a byte-level BPE vocabulary from text, for models made from scratch.
///
/// Words are the Qwen2 pre-tokenizer's pieces, counted once per distinct piece and weighted
/// by frequency. The vocabulary starts with the 256 byte characters (in byte order); each
/// round merges the most frequent adjacent pair (ties: the pair whose merged string sorts
/// first), until `vocabSize` minus the special tokens is reached. Pair counts are updated
/// only for the words a merge touches.
public enum BPETrainer {
    public static func train(corpus: [String], vocabSize: Int, specialTokens: [String]) throws -> Tokenizer {
        let pre = PreTokenizer.split(.qwen2Family(maxDigits: 1), .isolated, invert: false)
        var wordCounts: [[UInt8]: Int] = [:]  // bytes, not String: String equality is canonical equivalence
        for text in corpus {
            for piece in pre.split(Normalizer.nfc.apply(Array(text.unicodeScalars))) {
                wordCounts[piece.flatMap { Array(UTF8.encode($0)!) }, default: 0] += 1
            }
        }
        var tokens: [String] = ByteLevel.byteToChar.map { String($0) }
        var ids: [String: Int] = Dictionary(uniqueKeysWithValues: tokens.enumerated().map { ($1, $0) })
        let sortedWords = wordCounts.sorted { $0.key.lexicographicallyPrecedes($1.key) }  // a fixed order: reproducible training
        var words: [[Int]] = sortedWords.map { w in w.key.map { Int($0) } }
        let freq = sortedWords.map(\.value)

        var pairCounts: [Int: Int] = [:]
        var wordsWithPair: [Int: Set<Int>] = [:]
        func key(_ a: Int, _ b: Int) -> Int { a << 32 | b }
        func count(_ w: Int, _ sign: Int) {
            let s = words[w]
            guard s.count > 1 else { return }
            for i in 0..<(s.count - 1) {
                let k = key(s[i], s[i + 1])
                pairCounts[k, default: 0] += sign * freq[w]
                if sign > 0 { wordsWithPair[k, default: []].insert(w) }
            }
        }
        for w in words.indices { count(w, 1) }

        var merges: [(String, String)] = []
        let target = max(vocabSize - specialTokens.count, 256)
        while tokens.count < target {
            var best: (key: Int, count: Int, merged: String)?
            for (k, c) in pairCounts where c > 0 {
                if let b = best, c < b.count { continue }
                let merged = tokens[k >> 32] + tokens[k & 0xFFFF_FFFF]
                if let b = best, c == b.count, merged >= b.merged { continue }
                best = (k, c, merged)
            }
            guard let chosen = best, chosen.count >= 2 else { break }  // nothing left worth a token
            let a = chosen.key >> 32, b = chosen.key & 0xFFFF_FFFF
            let newId = tokens.count
            tokens.append(chosen.merged)
            ids[chosen.merged] = newId
            merges.append((tokens[a], tokens[b]))
            for w in wordsWithPair[chosen.key] ?? [] {
                count(w, -1)
                var s = words[w], out: [Int] = [], i = 0
                while i < s.count {
                    if i < s.count - 1 && s[i] == a && s[i + 1] == b { out.append(newId); i += 2 } else { out.append(s[i]); i += 1 }
                }
                s = out
                words[w] = s
                count(w, 1)
            }
            wordsWithPair[chosen.key] = nil
            pairCounts[chosen.key] = nil
        }
        var added: [AddedToken] = []
        for special in specialTokens where ids[special] == nil {
            added.append(AddedToken(id: tokens.count + added.count, content: special, special: true, lstrip: false, rstrip: false))
        }
        return try Tokenizer(vocab: ids, merges: merges, added: added,
                         eos: specialTokens.last.flatMap { s in added.first { $0.content == s }?.id },
                         pad: specialTokens.first.flatMap { s in added.first { $0.content == s }?.id },
                         chatTemplate: specialTokens.contains("<|im_start|>") ? .chatML : nil)
    }
}

extension Tokenizer {
    /// Trains a byte-level BPE tokenizer (see `BPETrainer`). The first special token is the
    /// padding token and the last the end-of-sequence token, as in `["<|endoftext|>", "<|im_start|>", "<|im_end|>"]`.
    public static func train(corpus: [String], vocabSize: Int, specialTokens: [String]) throws -> Tokenizer {
        try BPETrainer.train(corpus: corpus, vocabSize: vocabSize, specialTokens: specialTokens)
    }
}
