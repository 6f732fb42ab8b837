import Foundation

/// One rollout row as stored (plain values: the store knows nothing of trainers).
public struct StoredRollout {
    public var promptId: Int
    public var prompt: String
    public var group: Int
    public var sample: Int
    public var completion: String
    public var completionIds: [Int32]
    public var finishReason: String
    public var reward: Double?
    public var rewards: [(name: String, value: Double?)]
    public var advantage: Double
    public var groupMean: Double
    public var groupStd: Double
    public var logprobSum: Double

    public init(promptId: Int, prompt: String, group: Int, sample: Int, completion: String, completionIds: [Int32],
                finishReason: String, reward: Double?, rewards: [(name: String, value: Double?)], advantage: Double,
                groupMean: Double, groupStd: Double, logprobSum: Double) {
        self.promptId = promptId; self.prompt = prompt; self.group = group; self.sample = sample; self.completion = completion
        self.completionIds = completionIds; self.finishReason = finishReason; self.reward = reward; self.rewards = rewards
        self.advantage = advantage; self.groupMean = groupMean; self.groupStd = groupStd; self.logprobSum = logprobSum
    }
}

extension RunStore {
    /// Writes a step's rollouts and its metrics in one transaction (a kill loses at most this step).
    /// A step's rollouts written again (a resumed run) replace its earlier ones; metrics alone touch no rollouts.
    public func logStep(run: Int64, stage: String, step: Int, rollouts: [StoredRollout], metrics: [(String, Double)], wallTime: Double) throws {
        try database.transaction {
            if !rollouts.isEmpty {
                try database.run("DELETE FROM rollouts WHERE run_id = ? AND stage = ? AND step = ?", [.int(run), .text(stage), .int(Int64(step))])
            }
            for r in rollouts {
                try database.run("""
                    INSERT INTO rollouts (run_id, stage, step, prompt_id, prompt, group_index, sample_index, completion, completion_ids,
                                          finish_reason, length, reward, advantage, group_mean, group_std, logprob_sum)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """, [.int(run), .text(stage), .int(Int64(step)), .int(Int64(r.promptId)), .text(r.prompt), .int(Int64(r.group)),
                          .int(Int64(r.sample)), .text(r.completion), .text("[" + r.completionIds.map(String.init).joined(separator: ",") + "]"),
                          .text(r.finishReason), .int(Int64(r.completionIds.count)), r.reward.map { .double($0) } ?? .null,
                          .double(r.advantage), .double(r.groupMean), .double(r.groupStd), .double(r.logprobSum)])
                let id = database.lastInsertID
                for (name, value) in r.rewards {
                    try database.run("INSERT INTO rollout_rewards (rollout_id, name, value) VALUES (?, ?, ?)",
                                     [.int(id), .text(name), value.map { .double($0) } ?? .null])
                }
            }
            for (name, value) in metrics {
                try database.run("INSERT OR REPLACE INTO metrics (run_id, stage, step, name, value, wall_time) VALUES (?, ?, ?, ?, ?, ?)",
                                 [.int(run), .text(stage), .int(Int64(step)), .text(name), .double(value), .double(wallTime)])
            }
        }
    }
}
