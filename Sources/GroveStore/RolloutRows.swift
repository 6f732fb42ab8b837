import Foundation

/// One rollout row as stored (plain values: the store knows nothing of trainers).
public struct StoredRollout {
    public var promptId: Int
    public var prompt: String
    /// The dataset row the prompt came from, as JSON (rescoring needs its reference fields).
    public var row: String?
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
    /// Dynamic sampling set this group aside (all rewards equal): stored, not trained on.
    public var dropped: Bool

    public init(promptId: Int, prompt: String, row: String?, group: Int, sample: Int, completion: String, completionIds: [Int32],
                finishReason: String, reward: Double?, rewards: [(name: String, value: Double?)], advantage: Double,
                groupMean: Double, groupStd: Double, logprobSum: Double, dropped: Bool = false) {
        self.promptId = promptId; self.prompt = prompt; self.row = row; self.group = group; self.sample = sample; self.completion = completion
        self.completionIds = completionIds; self.finishReason = finishReason; self.reward = reward; self.rewards = rewards
        self.advantage = advantage; self.groupMean = groupMean; self.groupStd = groupStd; self.logprobSum = logprobSum
        self.dropped = dropped
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
                    INSERT INTO rollouts (run_id, stage, step, prompt_id, prompt, row, group_index, sample_index, completion, completion_ids,
                                          finish_reason, length, reward, advantage, group_mean, group_std, logprob_sum, dropped)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """, [.int(run), .text(stage), .int(Int64(step)), .int(Int64(r.promptId)), .text(r.prompt),
                          r.row.map { .text($0) } ?? .null, .int(Int64(r.group)),
                          .int(Int64(r.sample)), .text(r.completion), .text("[" + r.completionIds.map(String.init).joined(separator: ",") + "]"),
                          .text(r.finishReason), .int(Int64(r.completionIds.count)), r.reward.map { .double($0) } ?? .null,
                          .double(r.advantage), .double(r.groupMean), .double(r.groupStd), .double(r.logprobSum),
                          .int(r.dropped ? 1 : 0)])
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

/// A stored rollout read back for inspection.
public struct RolloutView {
    public let id: Int64
    public let step: Int
    public let promptId: Int
    public let prompt: String
    public let row: String?
    public let group: Int
    public let sample: Int
    public let completion: String
    public let completionIds: [Int32]
    public let finishReason: String
    public let length: Int
    public let reward: Double?
    public let advantage: Double
    public let rewards: [String: Double?]
    /// A group dynamic sampling set aside.
    public let dropped: Bool
}

extension RunStore {
    /// Rollouts matching a filter, in (step, group, sample) order.
    public func rollouts(run: Int64, step: Int? = nil, promptId: Int? = nil) throws -> [RolloutView] {
        var sql = """
            SELECT id, step, prompt_id, prompt, row, group_index, sample_index, completion, finish_reason, length, reward, advantage,
                   dropped, completion_ids
            FROM rollouts WHERE run_id = ?
            """
        var args: [SQLiteDatabase.Value] = [.int(run)]
        if let step { sql += " AND step = ?"; args.append(.int(Int64(step))) }
        if let promptId { sql += " AND prompt_id = ?"; args.append(.int(Int64(promptId))) }
        sql += " ORDER BY step, group_index, sample_index"
        let rows = try database.query(sql, args)
        var rewards: [Int64: [String: Double?]] = [:]
        for r in try database.query("""
            SELECT rr.rollout_id, rr.name, rr.value FROM rollout_rewards rr JOIN rollouts ro ON ro.id = rr.rollout_id WHERE ro.run_id = ?
            """, [.int(run)]) {
            rewards[r.int(0) ?? 0, default: [:]][r.text(1) ?? ""] = r.double(2)
        }
        return rows.map { r in
            let id = r.int(0) ?? 0
            return RolloutView(id: id, step: Int(r.int(1) ?? 0), promptId: Int(r.int(2) ?? 0), prompt: r.text(3) ?? "", row: r.text(4),
                               group: Int(r.int(5) ?? 0), sample: Int(r.int(6) ?? 0), completion: r.text(7) ?? "",
                               completionIds: (r.text(13) ?? "").split { "[], ".contains($0) }.compactMap { Int32($0) },
                               finishReason: r.text(8) ?? "", length: Int(r.int(9) ?? 0), reward: r.double(10),
                               advantage: r.double(11) ?? 0, rewards: rewards[id] ?? [:], dropped: r.int(12) == 1)
        }
    }

    /// Per step: number of rollouts, mean reward, fraction of groups with equal rewards.
    public func rolloutSteps(run: Int64) throws -> [(step: Int, rollouts: Int, meanReward: Double, zeroStdGroups: Double)] {
        try database.query("""
            SELECT step, count(*), avg(reward),
                   avg(CASE WHEN group_std = 0 THEN 1.0 ELSE 0.0 END)
            FROM rollouts WHERE run_id = ? GROUP BY step ORDER BY step
            """, [.int(run)]).map { (Int($0.int(0) ?? 0), Int($0.int(1) ?? 0), $0.double(2) ?? .nan, $0.double(3) ?? .nan) }
    }
}
