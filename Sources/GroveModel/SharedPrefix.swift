import GroveTensor

/// Sequences that share prefixes, laid out so each prefix is computed once: P prefixes of Lp
/// tokens (left-padded) and B suffixes of Ls tokens (right-padded), suffix b continuing prefix
/// `prefixOf[b]`. GRPO's G completions of a prompt are G suffixes of one prefix.
///
/// Hidden rows come prefix rows first (p·Lp + t), then suffix rows (P·Lp + b·Ls + t).
public struct SharedPrefixBatch {
    public let prefixTokens: [Int32]  // (P, Lp)
    public let prefixMask: [Bool]     // (P, Lp), false on padding
    public let suffixTokens: [Int32]  // (B, Ls)
    public let suffixMask: [Bool]     // (B, Ls), false on padding
    public let prefixOf: [Int]        // (B)
    public let prefixCount: Int, prefixLength: Int, suffixCount: Int, suffixLength: Int

    /// Pads `prefixes` on the left and `suffixes` on the right with `pad`.
    public init(prefixes: [[Int32]], suffixes: [[Int32]], prefixOf: [Int], pad: Int32) {
        precondition(suffixes.count == prefixOf.count && prefixOf.allSatisfy { prefixes.indices.contains($0) }, "SharedPrefixBatch: prefixOf")
        prefixCount = prefixes.count; suffixCount = suffixes.count
        prefixLength = prefixes.map(\.count).max() ?? 0
        suffixLength = suffixes.map(\.count).max() ?? 0
        var pt = [Int32](repeating: pad, count: prefixCount * prefixLength), pm = [Bool](repeating: false, count: pt.count)
        for (p, ids) in prefixes.enumerated() {
            let start = p * prefixLength + prefixLength - ids.count
            for (t, id) in ids.enumerated() { pt[start + t] = id; pm[start + t] = true }
        }
        var st = [Int32](repeating: pad, count: suffixCount * suffixLength), sm = [Bool](repeating: false, count: st.count)
        for (b, ids) in suffixes.enumerated() {
            for (t, id) in ids.enumerated() { st[b * suffixLength + t] = id; sm[b * suffixLength + t] = true }
        }
        prefixTokens = pt; prefixMask = pm; suffixTokens = st; suffixMask = sm
        self.prefixOf = prefixOf
    }

    /// Each suffix with its own prompt, identical prompts becoming one prefix.
    public init(prompts: [[Int32]], suffixes: [[Int32]], pad: Int32) {
        let (distinct, prefixOf) = distinctSequences(prompts)
        self.init(prefixes: distinct, suffixes: suffixes, prefixOf: prefixOf, pad: pad)
    }

    /// The hidden row of position t of suffix b, and that of prefix p's last token (which
    /// predicts the first suffix token).
    public func suffixRow(_ b: Int, _ t: Int) -> Int { prefixCount * prefixLength + b * suffixLength + t }
    public func lastPrefixRow(_ p: Int) -> Int { p * prefixLength + prefixLength - 1 }
}

extension Transformer {
    /// Final normalised hidden states of a shared-prefix batch [P·Lp + B·Ls, C]: the same values
    /// as running every prefix + suffix sequence on its own, but each prefix's tokens go through
    /// the layers once. Suffix queries attend to their prefix's keys and values (gathered per
    /// suffix row, so the gradient of every suffix reaches the shared prefix) and to their own.
    /// With `gradientCheckpointing` each block keeps only its input, as in `hiddenStates(tokens:…)`.
    public func hiddenStates(_ batch: SharedPrefixBatch) -> Tensor {
        let P = batch.prefixCount, Lp = batch.prefixLength, B = batch.suffixCount, Ls = batch.suffixLength
        let prefixRows = P * Lp
        // RoPE positions: prefixes count their real tokens; a suffix continues its prefix's count.
        var positions = Transformer.positions(batch: P, length: Lp, attentionMask: batch.prefixMask)
        let prefixReal = (0..<P).map { p in (0..<Lp).reduce(0) { $0 + (batch.prefixMask[p * Lp + $1] ? 1 : 0) } }
        for b in 0..<B { positions += (0..<Ls).map { Int32(prefixReal[batch.prefixOf[b]] + $0) } }
        // Suffix b's keys: its prefix's Lp rows, then its own Ls rows (S = Lp + Ls, the last Ls are its queries).
        var keyRows: [Int32] = [], keyMask: [Bool] = []
        keyRows.reserveCapacity(B * (Lp + Ls)); keyMask.reserveCapacity(B * (Lp + Ls))
        for b in 0..<B {
            let p = batch.prefixOf[b]
            keyRows += (0..<Lp).map { Int32(p * Lp + $0) }
            keyRows += (0..<Ls).map { Int32(batch.suffixRow(b, $0)) }
            keyMask += batch.prefixMask[p * Lp..<(p + 1) * Lp]
            keyMask += batch.suffixMask[b * Ls..<(b + 1) * Ls]
        }

        var h = gatherRows(embedTokens, batch.prefixTokens + batch.suffixTokens)  // (P·Lp + B·Ls, C)
        for layer in layers {
            let attend = { (q: Tensor, k: Tensor, v: Tensor) -> Tensor in
                // Heads and head sizes as the block made them (latent attention's values are narrower).
                let qHeads = Array(q.shape.dropFirst()), kHeads = Array(k.shape.dropFirst()), vHeads = Array(v.shape.dropFirst())
                let k = k.reshaped([k.shape[0], -1]), v = v.reshaped([v.shape[0], -1]), N = prefixRows + B * Ls
                // Prefix rows and suffix queries are contiguous row ranges (views); suffix keys are gathered.
                let prefixOut = attention(q.rows(0..<prefixRows).reshaped([P, Lp] + qHeads), k.rows(0..<prefixRows).reshaped([P, Lp] + kHeads),
                                          v.rows(0..<prefixRows).reshaped([P, Lp] + vHeads), keyMask: batch.prefixMask)
                let suffixOut = attention(q.rows(prefixRows..<N).reshaped([B, Ls] + qHeads), gatherRows(k, keyRows).reshaped([B, Lp + Ls] + kHeads),
                                          gatherRows(v, keyRows).reshaped([B, Lp + Ls] + vHeads), keyMask: keyMask)
                return concatRows([prefixOut.reshaped([P * Lp, -1]), suffixOut.reshaped([B * Ls, -1])])
            }
            h = gradientCheckpointing && GradMode.isEnabled ? checkpointedBlock(layer, h, positions: positions, attend: attend)
                                                            : block(layer, h, positions: positions, attend: attend)
        }
        return rmsNorm(h, norm, eps: Float(config.rmsNormEps))
    }
}

/// The distinct sequences of `rows` in first-seen order, and for each row the index of its own:
/// a prompt that several rows share (GRPO's G samples) is computed once.
func distinctSequences(_ rows: [[Int32]]) -> (distinct: [[Int32]], index: [Int]) {
    var distinct: [[Int32]] = [], seen: [[Int32]: Int] = [:]
    let index = rows.map { row in
        if let i = seen[row] { return i }
        seen[row] = distinct.count
        distinct.append(row)
        return distinct.count - 1
    }
    return (distinct, index)
}
