import GroveTensor

/// Multi-head latent attention's weights (DeepSeek-V2 §2.1), Hugging Face's names in camelCase.
/// Sizes: NH heads, dn = qk_nope_head_dim, dr = qk_rope_head_dim, dv = v_head_dim, r = kv_lora_rank,
/// qr = q_lora_rank.
public struct LatentAttention {
    /// W_Q [NH·(dn + dr), C] when queries are not compressed (`q_lora_rank` null, V2-Lite).
    public internal(set) var qProj: Linear?
    /// W_DQ [qr, C], the RMSNorm of c_Q [qr] and W_UQ [NH·(dn + dr), qr] when they are.
    public internal(set) var qAProj: Linear?
    public let qALayernorm: Tensor?
    public internal(set) var qBProj: Linear?
    /// W_DKV and W_KR stacked, [r + dr, C]: the latent c_KV and the RoPE key shared by all heads.
    public internal(set) var kvAProjWithMqa: Linear
    public let kvALayernorm: Tensor  // (r)
    /// W_UK and W_UV, per head [dn rows of k_C | dv rows of v]: [NH·(dn + dv), r].
    public internal(set) var kvBProj: Linear
    public internal(set) var oProj: Linear  // (C, NH·dv)

    /// Fresh weights from `proj(out, in)` (drawn in this order) and `ones(n)` norm weights.
    init(_ c: LatentAttentionConfig, heads NH: Int, hidden C: Int, proj: (Int, Int) -> Linear, ones: (Int) -> Tensor) {
        if let qr = c.qLoraRank {
            qAProj = proj(qr, C); qALayernorm = ones(qr); qBProj = proj(NH * c.qkHeadDim, qr)
        } else {
            qProj = proj(NH * c.qkHeadDim, C); qALayernorm = nil
        }
        kvAProjWithMqa = proj(c.kvLoraRank + c.qkRopeHeadDim, C)
        kvALayernorm = ones(c.kvLoraRank)
        kvBProj = proj(NH * (c.qkNopeHeadDim + c.vHeadDim), c.kvLoraRank)
        oProj = proj(C, NH * c.vHeadDim)
    }
}

extension Transformer {
    /// MLA on N rows of normalised hidden states a [N, C] → [N, C], as transformers computes it
    /// (keys and values expanded from the latent; `LatentCache` decodes from the latent itself):
    ///
    ///   q = W_UQ·norm(W_DQ·a) (or W_Q·a),  per head q = [q_C | q_R]
    ///   [c_KV | k_R] = W_DKV·a,  per head [k_C | v] = W_UKV·norm(c_KV)
    ///   query = [q_C | RoPE(q_R)],  key = [k_C | RoPE(k_R)] (k_R shared by every head)
    ///   o = W_O·attend(query, key, v),  softmax scale (dn + dr)^−½ · mscale²  (YaRN, `queryScale`)
    ///
    /// The two inner norms use transformers' default eps, 1e-6, not rms_norm_eps.
    func latentAttention(_ l: LatentAttention, _ a: Tensor, positions: [Int32], packed: DecodeWeights? = nil,
                         attend: (Tensor, Tensor, Tensor) -> Tensor) -> Tensor {
        guard case .latent(let c) = config.attention else { preconditionFailure("latentAttention: the config's attention is grouped") }
        let N = a.shape[0], NH = config.numAttentionHeads, dn = c.qkNopeHeadDim, dr = c.qkRopeHeadDim, dv = c.vHeadDim, r = c.kvLoraRank
        let q = l.qProj.map { project($0, a, packed: packed) }
            ?? project(l.qBProj!, rmsNorm(project(l.qAProj!, a, packed: packed), l.qALayernorm!, eps: 1e-6), packed: packed)
        let qHeads = q.reshaped([N, NH, dn + dr])
        var query = concatHeads(columns(qHeads, 0..<dn), rope(columns(qHeads, dn..<dn + dr), positions: positions, table: ropeTable))
        if queryScale != 1 { query = scale(query, queryScale) }
        let latent = project(l.kvAProjWithMqa, a, packed: packed)  // (N, r + dr)
        let kRope = rope(columns(latent, r..<r + dr).reshaped([N, 1, dr]), positions: positions, table: ropeTable)
        let kv = project(l.kvBProj, rmsNorm(columns(latent, 0..<r), l.kvALayernorm, eps: 1e-6), packed: packed).reshaped([N, NH, dn + dv])
        let o = attend(query, concatHeads(columns(kv, 0..<dn), kRope), columns(kv, dn..<dn + dv))  // (N, NH, dv)
        return project(l.oProj, o.reshaped([N, NH * dv]), packed: packed)
    }
}

extension Transformer {
    /// MLA decoding from the latent cache (`KVCache.Layout.latent`; DeepSeek-V2 §2.1.4): W_UK is absorbed
    /// into the query and W_UV into the output, so attention reads the cached [c_KV | k_R] rows as they are:
    ///
    ///   score_h(t, s) = q_C,h(t)·W_UK,h c(s) + q_R,h(t)·k_R(s) = [W_UK,hᵀ q_C,h(t) | q_R,h(t)] · [c(s) | k_R(s)]
    ///   o_h(t) = Σ_s p_h(t, s) W_UV,h c(s) = W_UV,h · Σ_s p_h(t, s) c(s)
    ///
    /// `attend` maps the absorbed queries [N, NH, r + dr] and the rows' new latents [N, 1, r + dr] to
    /// Σ_s p c(s) [N, NH, r] (one KV head shared by every query head, values the latent's first r).
    /// Inference only: the products with W_UK and W_UV are per-head GEMMs outside the graph.
    func latentAttentionAbsorbed(_ l: LatentAttention, _ a: Tensor, positions: [Int32], packed: DecodeWeights?,
                                 attend: (Tensor, Tensor) -> Tensor) -> Tensor {
        guard case .latent(let c) = config.attention else { preconditionFailure("latentAttentionAbsorbed: the config's attention is grouped") }
        precondition(!GradMode.isEnabled, "latentAttentionAbsorbed: inference only")
        let N = a.shape[0], NH = config.numAttentionHeads, dn = c.qkNopeHeadDim, dr = c.qkRopeHeadDim, dv = c.vHeadDim, r = c.kvLoraRank
        let q = l.qProj.map { project($0, a, packed: packed) }
            ?? project(l.qBProj!, rmsNorm(project(l.qAProj!, a, packed: packed), l.qALayernorm!, eps: 1e-6), packed: packed)
        let qHeads = q.reshaped([N, NH, dn + dr])
        let qRope = rope(columns(qHeads, dn..<dn + dr), positions: positions, table: ropeTable)
        let qNope = columns(qHeads, 0..<dn)  // (N, NH, dn)
        // (NH·(dn + dv), r): per head [W_UK,h; W_UV,h], with the adapter merged in when it is on
        let kvB = packed?.mergedKVB[ObjectIdentifier(l.kvBProj.weight)] ?? (adapterEnabled ? mergedWeight(l.kvBProj) : l.kvBProj.weight)
        let absorbed = Tensor(zeros: [N, NH, r])
        let blas = BLAS.shared
        for h in 0..<NH {  // q̃_C,h = q_C,h · W_UK,h: [N, dn]·[dn, r]
            blas.sgemm(.none, .none, m: N, n: r, k: dn, a: qNope.data + h * dn, lda: NH * dn, b: kvB.data + h * (dn + dv) * r, ldb: r,
                       beta: 0, c: absorbed.data + h * r, ldc: NH * r)
        }
        // attention's 1/√(r + dr) becomes MLA's (dn + dr)^−½ · mscale².
        let query = scale(concatHeads(absorbed, qRope), queryScale * (Float(r + dr) / Float(dn + dr)).squareRoot())
        let latent = project(l.kvAProjWithMqa, a, packed: packed)  // (N, r + dr)
        let kRope = rope(columns(latent, r..<r + dr).reshaped([N, 1, dr]), positions: positions, table: ropeTable)
        let latents = concatHeads(rmsNorm(columns(latent, 0..<r), l.kvALayernorm, eps: 1e-6).reshaped([N, 1, r]), kRope)
        let weighted = attend(query, latents)  // (N, NH, r)
        let o = Tensor(zeros: [N, NH, dv])
        for h in 0..<NH {  // o_h = W_UV,h · Σ p c: [N, r]·[r, dv]
            blas.sgemm(.none, .transpose, m: N, n: dv, k: r, a: weighted.data + h * r, lda: NH * r, b: kvB.data + (h * (dn + dv) + dn) * r, ldb: r,
                       beta: 0, c: o.data + h * dv, ldc: NH * dv)
        }
        return project(l.oProj, o.reshaped([N, NH * dv]), packed: packed)
    }
}
