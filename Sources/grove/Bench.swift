import ArgumentParser
import Foundation
import GroveRun
import GroveData
import GroveModel
import GroveRollout
import GroveTensor
import GroveTokenizer
import GroveTrain
import Rewards

/// `grove bench`: the throughput figures of the PyTorch/TRL reference (`../shared/reference/`),
/// measured the same way on Grove, one JSON line each, so that `make bench-compare` can put
/// them side by side:
///
/// - `grove_train_step`: forward + backward + AdamW on batch × 256 random tokens; median after warm-up.
/// - `grove_forward`: the same batch without gradients (what scoring log-probs costs).
/// - `grove_generate`: 16 prompts × 16 tokens, 64 new tokens each, temperature 1, KV cache, with the
///   cache's bytes per token (the `mla` shape once from its latent cache and once from expanded keys and values).
/// - `grove_grpo_step`: `bench_trl_grpo.py`'s setting: the small shape with the fixture
///   tokenizer, SFT'd on "What is a+b?" so that completions are short and rewards vary,
///   then GRPO steps of 8 prompts × 8 completions, ≤ 16 new tokens, β 0.04.
///
/// Every line carries the process's peak resident memory so far; `--isolate` runs each
/// (model, part) in a fresh process so that each peak is that measurement's own.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure training, forward, generation and GRPO-step throughput (JSON lines).")

    @Option(help: "Comma-separated model shapes: small, big, smollm2, mla (DeepSeek-V2 latent attention), gqa (Qwen2 of mla's parameter count).")
    var models = "small,big"

    @Option(help: "Comma-separated parts: train, forward, generate, grpo.")
    var parts = "train,forward,generate,grpo"

    @Option(help: "Sequences per training/forward batch (each 256 tokens).")
    var batch = 8

    @Option(help: "Untimed steps before measuring.")
    var warmup = 3

    @Option(help: "Timed training/forward steps (the median is reported).")
    var steps = 10

    @Option(help: "Timed generation runs after one warm-up run.")
    var genRuns = 3

    @Option(help: "Timed GRPO steps after one warm-up step.")
    var grpoSteps = 5

    @Option(help: "SFT steps before the GRPO steps (bench_trl_grpo.py's --sft-steps).")
    var sftSteps = 300

    @Option(help: "GRPO β (0 loads no reference model).")
    var beta = 0.04

    @Option(help: "Tokenizer folder of the GRPO step (the reference uses the fixture tokenizer).")
    var tokenizer = "../shared/fixtures/public/tokenizer"

    @Option(help: "Train a LoRA adapter of this rank (alpha 2r, every linear layer) in the train and grpo parts; 0: full fine-tuning.")
    var loraR = 0

    @Option(help: "AdamW's moments in the train and grpo parts: float32 or bfloat16 (2 bytes each, stochastically rounded).",
            transform: { name in
                guard let storage = AdamW.MomentStorage(rawValue: name) else {
                    throw ValidationError("--optimizer-state: '\(name)' is not one of float32, bfloat16")
                }
                return storage
            })
    var optimizerState: AdamW.MomentStorage = .float32

    @Flag(help: "Activation checkpointing in the train and grpo parts (recompute each block in backward).")
    var gradientCheckpointing = false

    @Flag(help: "Run each (model, part) in its own process, so that each peak memory is its own.")
    var isolate = false

    @Flag(help: "A few seconds' run of every part with tiny counts (CI checks that it works, not its speed).")
    var smoke = false

    func run() throws {
        let blas = BLAS.shared
        emit(["bench": "grove_env", "blas_core": blas.coreName, "blas_threads": blas.threads,
              "sgemm_2048_gflops": round1(SgemmBenchmark.gflops(size: 2048)), "grove": GroveVersion.string])
        let shapes = try models.split(separator: ",").map { name in
            guard let s = BenchShape(rawValue: String(name)) else {
                throw ValidationError("--models: unknown shape '\(name)' (small, big, smollm2, mla, gqa)")
            }
            return s
        }
        let partList = try parts.split(separator: ",").map { name in
            guard let p = BenchPart(rawValue: String(name)) else {
                throw ValidationError("--parts: unknown part '\(name)' (train, forward, generate, grpo)")
            }
            return p
        }
        for shape in shapes {
            for part in partList {
                if isolate { try runIsolated(shape, part) } else { try measure(shape, part).forEach(emit) }
            }
        }
    }

    /// Re-runs this executable for one (model, part) and passes its lines through.
    func runIsolated(_ shape: BenchShape, _ part: BenchPart) throws {
        var arguments = Array(CommandLine.arguments.dropFirst()).filter { $0 != "--isolate" }
        arguments += ["--models", shape.rawValue, "--parts", part.rawValue]
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/proc/self/exe")
        process.arguments = ["bench"] + arguments.drop { $0 == "bench" }
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw ValidationError("bench \(shape.rawValue) \(part.rawValue) exited with status \(process.terminationStatus)")
        }
        for line in String(decoding: output, as: UTF8.self).split(separator: "\n") where !line.contains("grove_env") {
            print(line.replacingOccurrences(of: "}", with: ", \"isolated_process\": true}", options: .backwards,
                                            range: line.range(of: "}", options: .backwards)))
        }
        fflush(stdout)
    }

    /// The JSON records of one measurement.
    func measure(_ shape: BenchShape, _ part: BenchPart) throws -> [[String: Any]] {
        let (warm, timed, runs, grpoTimed) = smoke ? (0, 1, 1, 1) : (warmup, steps, genRuns, grpoSteps)
        switch part {
        case .train: return [measureTraining(shape, warmup: warm, steps: timed)]
        case .forward: return [measureForward(shape, warmup: warm, steps: timed)]
        case .generate:
            let model = Transformer(config: shape.config(), seed: 0)
            let (prompts, newTokens) = smoke ? (2, 4) : (16, 64)
            let first = measureGeneration(model, shape, runs: runs, prompts: prompts, newTokens: newTokens)
            guard model.config.attention != .grouped else { return [first] }  // latent attention: again from expanded keys and values
            model.decodeCacheLayout = .keysAndValues
            return [first, measureGeneration(model, shape, runs: runs, prompts: prompts, newTokens: newTokens)]
        case .grpo: return try measureGRPO(shape, sftSteps: smoke ? 5 : sftSteps, steps: grpoTimed)
        }
    }

    static let sequenceLength = 256

    /// `batch` rows of 256 random token ids, drawn from `seed`.
    func randomTokens(_ V: Int, rows: Int, length: Int, seed: UInt64) -> [Int32] {
        var rng = SeededRandom(seed: seed)
        return (0..<rows * length).map { _ in Int32(rng.next() % UInt64(V)) }
    }

    func measureTraining(_ shape: BenchShape, warmup: Int, steps: Int) -> [String: Any] {
        let model = Transformer(config: shape.config(), seed: 0)
        adapt(model)
        model.gradientCheckpointing = gradientCheckpointing
        let V = model.config.vocabSize, T = Bench.sequenceLength, tokens = batch * T
        // The reference's settings: AdamW(lr 1e-4, weight decay 0.01), labels = inputs shifted by one.
        let optimizer = AdamW(parameters: model.decayGroups, beta1: 0.9, beta2: 0.999, weightDecay: 0.01, momentStorage: optimizerState)
        var times: [Double] = [], losses: [Float] = []
        for i in 0..<(warmup + steps) {
            let ids = randomTokens(V, rows: batch, length: T, seed: UInt64(i))
            var targets = [Int32](repeating: -1, count: tokens)
            for b in 0..<batch { for t in 0..<(T - 1) { targets[b * T + t] = ids[b * T + t + 1] } }
            let start = seconds()
            for p in model.parameters { p.zeroGrad() }
            let loss = scale(sum(tokenLogProbs(model.forward(tokens: ids, batch: batch), targets: targets)),
                             -1 / Float(batch * (T - 1)))
            loss.backward()
            optimizer.step(lr: 1e-4)
            if i >= warmup { times.append(seconds() - start) }
            losses.append(loss.item)
        }
        let med = median(times), params = model.parameterCount
        return ["bench": "grove_train_step", "model": shape.rawValue, "params": params, "batch": batch, "seq": T,
              "tokens_per_step": tokens, "warmup": warmup, "steps": steps, "median_step_s": round4(med),
              "min_step_s": round4(times.min()!), "tokens_per_s": round1(Double(tokens) / med),
              "approx_model_gflops": round1(6 * Double(params) * Double(tokens) / med / 1e9),
              "first_loss": round4(Double(losses.first!)), "last_loss": round4(Double(losses.last!)),
              "lora_r": loraR, "gradient_checkpointing": gradientCheckpointing, "optimizer_state": optimizerState.rawValue]
    }

    /// Adds the `--lora-r` adapter (PEFT's initialisation, so the model is unchanged until trained).
    func adapt(_ model: Transformer) {
        guard loraR > 0 else { return }
        model.addAdapter(try! LoRAConfig(r: loraR, alpha: Double(2 * loraR)), seed: 0)
    }

    func measureForward(_ shape: BenchShape, warmup: Int, steps: Int) -> [String: Any] {
        let model = Transformer(config: shape.config(), seed: 0)
        let T = Bench.sequenceLength
        var times: [Double] = []
        GradMode.withoutGrad {
            for i in 0..<(warmup + steps) {
                let ids = randomTokens(model.config.vocabSize, rows: batch, length: T, seed: UInt64(i))
                let start = seconds()
                _ = model.forward(tokens: ids, batch: batch)
                if i >= warmup { times.append(seconds() - start) }
            }
        }
        let med = median(times)
        return ["bench": "grove_forward", "model": shape.rawValue, "params": model.parameterCount, "batch": batch, "seq": T,
                "median_s": round4(med), "tokens_per_s": round1(Double(batch * T) / med)]
    }

    func measureGeneration(_ model: Transformer, _ shape: BenchShape, runs: Int, prompts: Int = 16, promptLength: Int = 16,
                           newTokens: Int = 64) -> [String: Any] {
        let ids = randomTokens(model.config.vocabSize - 1, rows: prompts, length: promptLength, seed: 2).map { $0 + 1 }
        let batch = (0..<prompts).map { Array(ids[$0 * promptLength..<($0 + 1) * promptLength]) }
        let options = SamplingOptions(temperature: 1, maxNewTokens: newTokens)  // no stop token: always 64 new tokens
        var times: [Double] = []
        for run in 0...runs {
            let rngs = (0..<prompts).map { SeededRandom(seed: UInt64(100 + run), streams: [UInt64($0)]) }
            let start = seconds()
            let out = model.generate(prompts: batch, options: options, rngs: rngs)
            precondition(out.allSatisfy { $0.tokens.count == newTokens })
            if run > 0 { times.append(seconds() - start) }
        }
        let med = median(times)
        let cache = KVCache(config: model.config, batch: 1, capacity: 1, layout: model.decodeCacheLayout)
        return ["bench": "grove_generate", "model": shape.rawValue, "params": model.parameterCount, "prompts": prompts, "prompt_len": promptLength,
                "new_tokens": newTokens, "runs": runs, "median_s": round4(med),
                "new_tokens_per_s": round1(Double(prompts * newTokens) / med),
                "cache": cache.layout == .latent ? "latent" : "keys_and_values", "cache_bytes_per_token": cache.bytesPerToken]
    }

    /// bench_trl_grpo.py's job: SFT on "What is a+b?" → "a+b", then GRPO steps; the first is a warm-up.
    func measureGRPO(_ shape: BenchShape, sftSteps: Int, steps: Int) throws -> [[String: Any]] {
        let tok = try loadOrTrainTokenizer()
        var config = shape.config(vocabSize: max(tok.vocabSize, 1024))
        config.eosTokenIds = tok.eosTokenId.map { [$0] } ?? []
        config.padTokenId = tok.padTokenId
        let model = Transformer(config: config, seed: 0)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("grove-bench-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }

        // SFT: batch 64, lr 3e-3, 20 warm-up steps, no weight decay, as the reference.
        let sftFile = try writeAdditionRows(max(sftSteps, 1) * 64, seed: 1, to: dir.appendingPathComponent("sft.jsonl"))
        let sftStart = seconds()
        if sftSteps > 0 {
            let stream = TrainingStream(file: sftFile, rows: Array(0..<sftFile.count), format: .messages(field: "messages"),
                                        tokenizer: tok, maxLength: 64, seed: 1)
            var sftConfig = SFTConfig(steps: sftSteps, batchSize: 64, microBatchSize: 64, learningRate: 3e-3,
                                      schedule: .warmupCosine(warmupSteps: 20, totalSteps: sftSteps, minRatio: 0.05), weightDecay: 0)
            sftConfig.optimizerState = optimizerState
            try SFTTrainer(model: model, data: stream, config: sftConfig).train { _ in }
        }
        let sftRecord: [String: Any] = ["bench": "grove_grpo_sft", "model": shape.rawValue, "sft_steps": sftSteps,
                                        "sft_seconds": round4(seconds() - sftStart)]

        adapt(model)  // after the SFT, which trains every weight as the reference's does
        let promptFile = try writeAdditionRows(8 * (steps + 1) * 4, seed: 2, to: dir.appendingPathComponent("prompts.jsonl"))
        let prompts = TrainingStream(file: promptFile, rows: Array(0..<promptFile.count), format: .messages(field: "messages"),
                                     tokenizer: tok, maxLength: 64, seed: 2)
        var grpoConfig = GRPOConfig(steps: steps + 1, promptsPerStep: 8, groupSize: 8,
                                    sampling: SamplingOptions(temperature: 1, maxNewTokens: 16),
                                    loss: GRPOLossConfig(beta: beta, aggregation: .perSequence), learningRate: 1e-5)
        grpoConfig.gradientCheckpointing = gradientCheckpointing
        grpoConfig.optimizerState = optimizerState
        let rewards = WeightedRewards([(ExactAnswerReward(extraction: .lastNumber, field: "answer"), 1)])
        let trainer = GRPOTrainer(policy: model, tokenizer: tok, prompts: prompts, rewards: rewards, config: grpoConfig, seed: 0)
        var perStep: [[String: Double]] = []
        try trainer.train { event in
            if case .step(let report) = event { perStep.append(Dictionary(report.metrics.named, uniquingKeysWith: { a, _ in a })) }
        }
        let timed = Array(perStep.dropFirst())
        func med(_ key: String) -> Double { median(timed.map { $0[key] ?? .nan }) }
        let total = timed.reduce(0) { $0 + ($1["time/step"] ?? 0) }
        return [sftRecord, ["bench": "grove_grpo_step", "model": shape.rawValue, "params": model.parameterCount, "timed_steps": timed.count,
              "median_step_s": round4(med("time/step")), "median_generate_s": round4(med("time/generate")),
              "median_score_s": round4(med("time/score")), "median_train_s": round4(med("time/train")),
              "generation_fraction": round4(timed.reduce(0) { $0 + ($1["time/generate"] ?? 0) } / total),
              "completion_mean_length": round1(med("completions/mean_length")), "reward": round4(med("reward")),
              "completions_per_step": 64, "max_completion_length": 16, "beta": beta,
              "lora_r": loraR, "gradient_checkpointing": gradientCheckpointing, "optimizer_state": optimizerState.rawValue]]
    }

    /// The reference's tokenizer when it is there; otherwise a byte-level BPE trained here.
    func loadOrTrainTokenizer() throws -> Tokenizer {
        let dir = URL(fileURLWithPath: tokenizer)
        if FileManager.default.fileExists(atPath: dir.appendingPathComponent("tokenizer.json").path) {
            return try Tokenizer(directory: dir)
        }
        let corpus = (0..<2000).map { "<|im_start|>user\nWhat is \($0 % 100)+\($0 / 20)?<|im_end|>\n<|im_start|>assistant\n\($0)<|im_end|>\n" }
        return try BPETrainer.train(corpus: corpus, vocabSize: 1024, specialTokens: ["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    }

    /// Chat rows {"messages": [user "What is a+b?", assistant "a+b"], "answer": "a+b"}, a, b in 0..<100.
    func writeAdditionRows(_ n: Int, seed: UInt64, to url: URL) throws -> JSONLFile {
        var rng = SeededRandom(seed: seed)
        var text = ""
        for _ in 0..<n {
            let a = Int(rng.next() % 100), b = Int(rng.next() % 100)
            let row: [String: Any] = ["messages": [["role": "user", "content": "What is \(a)+\(b)?"],
                                                   ["role": "assistant", "content": "\(a + b)"]], "answer": "\(a + b)"]
            text += String(decoding: try JSONSerialization.data(withJSONObject: row, options: [.sortedKeys]), as: UTF8.self) + "\n"
        }
        try text.write(to: url, atomically: true, encoding: .utf8)
        return try JSONLFile(url: url)
    }

    func emit(_ record: [String: Any]) {
        var record = record
        record["threads"] = BLAS.shared.threads
        record["peak_rss_mb"] = round1(peakResidentMegabytes())
        let data = try! JSONSerialization.data(withJSONObject: record, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
        fflush(stdout)
    }
}

/// The two model shapes of `bench_torch.py` (Qwen2 with tied embeddings and q/k/v biases),
/// SmolLM2-135M's architecture with seeded weights: the size whose memory the 100M–1B work targets,
/// and a DeepSeek-V2 latent-attention model (dense MLPs, to compare attention alone) with a Qwen2
/// GQA model of the same parameter count (its MLP widened by what MLA's projections cost more).
enum BenchShape: String {
    case small, big, smollm2, mla, gqa

    func config(vocabSize: Int? = nil) -> ModelConfig {
        switch self {
        case .small:
            return ModelConfig(vocabSize: vocabSize ?? 2048, hiddenSize: 256, intermediateSize: 688, numHiddenLayers: 4,
                               numAttentionHeads: 8, numKeyValueHeads: 4, maxPositionEmbeddings: 1024)
        case .big:
            return ModelConfig(vocabSize: vocabSize ?? 8192, hiddenSize: 512, intermediateSize: 1376, numHiddenLayers: 8,
                               numAttentionHeads: 8, numKeyValueHeads: 4, maxPositionEmbeddings: 1024)
        case .smollm2:
            // Its own vocabulary even with the GRPO part's smaller tokenizer, whose ids all fit
            // (a sampled id beyond the tokenizer's decodes to nothing): the embedding is a fifth of the model.
            return ModelConfig(modelType: .llama, vocabSize: max(vocabSize ?? 0, 49152), hiddenSize: 576, intermediateSize: 1536,
                               numHiddenLayers: 30, numAttentionHeads: 9, numKeyValueHeads: 3, headDim: 64, rmsNormEps: 1e-5,
                               ropeTheta: 100_000, maxPositionEmbeddings: 8192)
        case .mla:
            let latent = LatentAttentionConfig(qLoraRank: nil, kvLoraRank: 128, qkNopeHeadDim: 64, qkRopeHeadDim: 32, vHeadDim: 64)
            let dense = MixtureOfExpertsConfig(firstKDenseReplace: 8, moeIntermediateSize: 256, nSharedExperts: 1, nRoutedExperts: 8, numExpertsPerTok: 2)
            return ModelConfig(modelType: .deepseekV2, vocabSize: vocabSize ?? 8192, hiddenSize: 512, intermediateSize: 1376, numHiddenLayers: 8,
                               numAttentionHeads: 8, maxPositionEmbeddings: 1024, tieWordEmbeddings: false,
                               attention: .latent(latent), feedForward: .mixtureOfExperts(dense))
        case .gqa:
            // 8 heads of 64, 2 KV heads; the MLP takes up the parameters MLA has beyond that attention.
            let mla = BenchShape.mla.config(vocabSize: vocabSize)
            var gqa = ModelConfig(vocabSize: mla.vocabSize, hiddenSize: 512, intermediateSize: mla.intermediateSize, numHiddenLayers: 8,
                                  numAttentionHeads: 8, numKeyValueHeads: 2, maxPositionEmbeddings: 1024, tieWordEmbeddings: false)
            gqa.intermediateSize += (mla.parameterCount() - gqa.parameterCount()) / (3 * 512 * 8)
            return gqa
        }
    }
}

/// What `grove bench` measures.
enum BenchPart: String {
    case train, forward, generate, grpo
}

/// Peak resident set size of this process so far, in MiB (Linux reports ru_maxrss in KiB).
func peakResidentMegabytes() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024
}

func seconds() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s.isEmpty ? .nan : s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}
func round1(_ x: Double) -> Double { (x * 10).rounded() / 10 }
func round4(_ x: Double) -> Double { (x * 10000).rounded() / 10000 }
